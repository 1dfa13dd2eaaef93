//! AVX2 kernels for x86-64 (chosen at run time by [`super::simd`]). Each one gives the
//! same bits as its scalar twin: integer steps are the same integers, and normalising
//! reads the same lookup table.

use std::arch::x86_64::*;

use super::color::{CUB, CUG, CVG, CVR, CY, HALF, SHIFT};
use super::sparse::PackedTaps;
use super::taps::FixedTaps;
use crate::frame::{FrameLayout, PixelFormat};

/// See [`super::simd::Kernels::vertical_fixed`].
#[target_feature(enable = "avx2")]
pub(super) fn vertical_fixed(
    h0: &[i32],
    h1: &[i32],
    b0: i32,
    b1: i32,
    lut: &[f32; 256],
    out: &mut [f32],
) -> usize {
    let n = out.len().min(h0.len()).min(h1.len());
    let (vb0, vb1) = (_mm256_set1_epi32(b0), _mm256_set1_epi32(b1));
    let (two, zero, max) = (
        _mm256_set1_epi32(2),
        _mm256_setzero_si256(),
        _mm256_set1_epi32(255),
    );
    let mut dx = 0;
    while dx + 8 <= n {
        // SAFETY: dx + 8 <= n bounds all three slices; unaligned loads and stores; the
        // gather indices are clamped to 0..=255, inside the 256-entry table.
        unsafe {
            let a = _mm256_loadu_si256(h0.as_ptr().add(dx).cast());
            let b = _mm256_loadu_si256(h1.as_ptr().add(dx).cast());
            let ta = _mm256_srai_epi32::<16>(_mm256_mullo_epi32(_mm256_srai_epi32::<4>(a), vb0));
            let tb = _mm256_srai_epi32::<16>(_mm256_mullo_epi32(_mm256_srai_epi32::<4>(b), vb1));
            let v = _mm256_srai_epi32::<2>(_mm256_add_epi32(_mm256_add_epi32(ta, tb), two));
            let v = _mm256_min_epi32(_mm256_max_epi32(v, zero), max);
            let f = _mm256_i32gather_ps::<4>(lut.as_ptr(), v);
            _mm256_storeu_ps(out.as_mut_ptr().add(dx), f);
        }
        dx += 8;
    }
    dx
}

/// Byte positions of U and V and the extra luma shift in a 4-byte pair, in bits.
fn pair_shifts(format: PixelFormat) -> (i32, i32, i32) {
    if format == PixelFormat::Uyvy {
        (0, 16, 8)
    } else {
        (8, 24, 0)
    }
}

/// The row's bytes, if every pair the taps read lies inside it.
fn checked_row<'a>(
    bytes: &'a [u8],
    layout: &FrameLayout,
    row: usize,
    p: &PackedTaps,
) -> Option<&'a [u8]> {
    let start = row.checked_mul(layout.stride)?;
    let row = bytes.get(start..start.checked_add(layout.format.min_stride(layout.width))?)?;
    // Offsets are non-negative by construction (`PackedTaps::new` converts from usize).
    (p.span <= row.len()).then_some(row)
}

/// Eight 4:2:2 pixels from gathered pairs `d` (luma at bit `shift`), as R, G, B lanes
/// 0..=255 with OpenCV's BT.601 fixed point (the scalar `yuv_to_rgb`).
#[target_feature(enable = "avx2")]
fn yuv_lanes(d: __m256i, shift: __m256i, us: __m256i, vs: __m256i) -> [__m256i; 3] {
    let byte = _mm256_set1_epi32(0xFF);
    let y = _mm256_and_si256(_mm256_srlv_epi32(d, shift), byte);
    let u = _mm256_sub_epi32(
        _mm256_and_si256(_mm256_srlv_epi32(d, us), byte),
        _mm256_set1_epi32(128),
    );
    let v = _mm256_sub_epi32(
        _mm256_and_si256(_mm256_srlv_epi32(d, vs), byte),
        _mm256_set1_epi32(128),
    );
    let zero = _mm256_setzero_si256();
    let yy = _mm256_mullo_epi32(
        _mm256_max_epi32(_mm256_sub_epi32(y, _mm256_set1_epi32(16)), zero),
        _mm256_set1_epi32(CY),
    );
    let base = _mm256_add_epi32(yy, _mm256_set1_epi32(HALF));
    let r = _mm256_add_epi32(base, _mm256_mullo_epi32(v, _mm256_set1_epi32(CVR)));
    let g = _mm256_add_epi32(
        _mm256_add_epi32(base, _mm256_mullo_epi32(v, _mm256_set1_epi32(CVG))),
        _mm256_mullo_epi32(u, _mm256_set1_epi32(CUG)),
    );
    let b = _mm256_add_epi32(base, _mm256_mullo_epi32(u, _mm256_set1_epi32(CUB)));
    let max = _mm256_set1_epi32(255);
    let clamp =
        |c: __m256i| _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32::<SHIFT>(c), zero), max);
    [clamp(r), clamp(g), clamp(b)]
}

/// See [`super::simd::Kernels::horizontal_fixed_422`].
#[target_feature(enable = "avx2")]
pub(super) fn horizontal_fixed_422(
    bytes: &[u8],
    layout: &FrameLayout,
    row: usize,
    x: &FixedTaps,
    packed: &PackedTaps,
    sums: &mut [i32],
) -> bool {
    let n = x.i0.len();
    let tables_fit = [&packed.off0, &packed.shift0, &packed.off1, &packed.shift1]
        .iter()
        .all(|t| t.len() == n)
        && x.w0.len() == n
        && x.w1.len() == n;
    if !n.is_multiple_of(8) || !tables_fit || sums.len() < 3 * n {
        return false;
    }
    let Some(src) = checked_row(bytes, layout, row, packed) else {
        return false;
    };
    let (us, vs, extra) = pair_shifts(layout.format);
    let (us, vs, extra) = (
        _mm256_set1_epi32(us),
        _mm256_set1_epi32(vs),
        _mm256_set1_epi32(extra),
    );
    let base = src.as_ptr().cast::<i32>();
    let mut i = 0;
    while i < n {
        // SAFETY: i + 8 <= n and every table holds n entries, `sums` 3n; `checked_row` proved
        // each offset + 4 bytes lies inside the row, so the 4-byte gathers stay inside `src`.
        unsafe {
            let ld = |t: &Vec<i32>| _mm256_loadu_si256(t.as_ptr().add(i).cast());
            let d0 = _mm256_i32gather_epi32::<1>(base, ld(&packed.off0));
            let d1 = _mm256_i32gather_epi32::<1>(base, ld(&packed.off1));
            let p = yuv_lanes(d0, _mm256_add_epi32(ld(&packed.shift0), extra), us, vs);
            let q = yuv_lanes(d1, _mm256_add_epi32(ld(&packed.shift1), extra), us, vs);
            let (w0, w1) = (ld(&x.w0), ld(&x.w1));
            for c in 0..3 {
                let s =
                    _mm256_add_epi32(_mm256_mullo_epi32(p[c], w0), _mm256_mullo_epi32(q[c], w1));
                _mm256_storeu_si256(sums.as_mut_ptr().add(c * n + i).cast(), s);
            }
        }
        i += 8;
    }
    true
}

/// See [`super::simd::Kernels::nearest_422`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
pub(super) fn nearest_422(
    bytes: &[u8],
    layout: &FrameLayout,
    row: usize,
    packed: &PackedTaps,
    lut: &[[f32; 256]],
    out: &mut [f32],
    starts: [usize; 3],
    len: usize,
) -> usize {
    let fits = starts
        .iter()
        .all(|&s| s.checked_add(len).is_some_and(|e| e <= out.len()));
    if !fits || lut.len() < 3 || packed.off0.len() < len || packed.shift0.len() < len {
        return 0;
    }
    let Some(src) = checked_row(bytes, layout, row, packed) else {
        return 0;
    };
    let (us, vs, extra) = pair_shifts(layout.format);
    let (us, vs, extra) = (
        _mm256_set1_epi32(us),
        _mm256_set1_epi32(vs),
        _mm256_set1_epi32(extra),
    );
    let base = src.as_ptr().cast::<i32>();
    let mut i = 0;
    while i + 8 <= len {
        // SAFETY: i + 8 <= len bounds the tables and, with `fits`, each output run;
        // `checked_row` keeps the gathers inside `src`; colour values are 0..=255, inside
        // each 256-entry table.
        unsafe {
            let off = _mm256_loadu_si256(packed.off0.as_ptr().add(i).cast());
            let shift = _mm256_loadu_si256(packed.shift0.as_ptr().add(i).cast());
            let d = _mm256_i32gather_epi32::<1>(base, off);
            let p = yuv_lanes(d, _mm256_add_epi32(shift, extra), us, vs);
            for c in 0..3 {
                let f = _mm256_i32gather_ps::<4>(lut[c].as_ptr(), p[c]);
                _mm256_storeu_ps(out.as_mut_ptr().add(starts[c] + i), f);
            }
        }
        i += 8;
    }
    i
}
