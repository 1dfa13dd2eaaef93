//! Runtime choice between the scalar kernels and vector ones, made once per
//! [`Preprocessor`](super::Preprocessor): AVX2 on x86-64 CPUs that have it (detected at run
//! time, so one binary runs everywhere), scalar otherwise. `LINESIDE_SIMD=off` forces the
//! scalar kernels, and tests switch per preprocessor to compare the two bit for bit.
//!
//! Each method returns how much it did (a count of outputs or whether the row was done);
//! the caller finishes the rest with the scalar code, so a kernel may decline any input.

// Without x86-64 kernels every method is `_ => 0`/`false` and leaves its inputs unread.
#![cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]

use super::resample::Axis;
use super::sparse::PackedTaps;
use super::taps::FixedTaps;
use crate::frame::FrameLayout;

/// Which vector instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdLevel {
    Scalar,
    Avx2,
}

impl SimdLevel {
    /// The best level this CPU runs, unless `LINESIDE_SIMD=off` asks for scalar.
    pub fn detect() -> SimdLevel {
        if std::env::var("LINESIDE_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
            return SimdLevel::Scalar;
        }
        SimdLevel::best()
    }

    /// The best level this CPU runs.
    pub fn best() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return SimdLevel::Avx2;
        }
        SimdLevel::Scalar
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Kernels {
    pub level: SimdLevel,
}

impl Kernels {
    /// OpenCV's vertical fixed-point step for `out.len()` outputs, normalised through
    /// `lut`; returns how many leading outputs it wrote.
    #[inline]
    pub fn vertical_fixed(
        self,
        h0: &[i32],
        h1: &[i32],
        b0: i32,
        b1: i32,
        lut: &[f32; 256],
        out: &mut [f32],
    ) -> usize {
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
            SimdLevel::Avx2 => unsafe { super::avx2::vertical_fixed(h0, h1, b0, b1, lut, out) },
            _ => 0,
        }
    }

    /// Horizontal fixed-point sums of YUYV/UYVY row `row` into three planar runs of
    /// `x.i0.len()` sums; whether it did the row.
    #[inline]
    pub fn horizontal_fixed_422(
        self,
        bytes: &[u8],
        layout: &FrameLayout,
        row: usize,
        x: &FixedTaps,
        packed: &PackedTaps,
        sums: &mut [i32],
    ) -> bool {
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
            SimdLevel::Avx2 => unsafe {
                super::avx2::horizontal_fixed_422(bytes, layout, row, x, packed, sums)
            },
            _ => false,
        }
    }

    /// Nearest-neighbour YUYV/UYVY row `row` into three NCHW output runs starting at
    /// `starts`; returns how many leading outputs of each run it wrote.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn nearest_422(
        self,
        bytes: &[u8],
        layout: &FrameLayout,
        row: usize,
        packed: &PackedTaps,
        lut: &[[f32; 256]],
        out: &mut [f32],
        starts: [usize; 3],
        len: usize,
    ) -> usize {
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
            SimdLevel::Avx2 => unsafe {
                super::avx2::nearest_422(bytes, layout, row, packed, lut, out, starts, len)
            },
            _ => 0,
        }
    }

    /// Columns `x0..x0 + n` of a row (any format) into three f32 planes; whether it did.
    #[inline(always)]
    pub fn planes_yuv(
        self,
        bytes: &[u8],
        layout: &FrameLayout,
        row: usize,
        x0: usize,
        n: usize,
        planes: &mut [Vec<f32>; 3],
    ) -> bool {
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
            SimdLevel::Avx2 => unsafe {
                super::avx2::planes_yuv(bytes, layout, row, x0, n, planes)
                    || super::avx2::planes_rgb(bytes, layout, row, x0, n, planes)
            },
            _ => false,
        }
    }

    /// Pillow-style horizontal dot products of one plane (`x.taps` a multiple of 8),
    /// rounded to 8 bits when `round`; returns how many leading outputs it wrote.
    #[inline(always)]
    pub fn horizontal_planar(
        self,
        x: &Axis,
        plane: &[f32],
        x_lo: usize,
        round: bool,
        out: &mut [f32],
    ) -> usize {
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
            SimdLevel::Avx2 => unsafe {
                super::avx2::horizontal_planar(x, plane, x_lo, round, out)
            },
            _ => 0,
        }
    }
}
