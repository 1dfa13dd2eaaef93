//! The generic two-pass resampler (Pillow's `bilinear`, OpenCV's `linear_exact`, and the
//! reference for the sparse paths): each source row the vertical weights read is converted
//! and resampled horizontally into planar f32 rows; the vertical pass writes normalised
//! floats into the tensor.
//!
//! The passes are written once and compiled twice: plain, and inside an AVX2
//! `#[target_feature]` function that runs when the CPU has it. Rust never reassociates or
//! fuses float operations, so both builds give the same bits; AVX2 only widens the vectors.

use super::simd::{Kernels, SimdLevel};
use super::{convert_row, Axis, ColorOrder, Layout, Plan, PreprocessSpec};
use crate::frame::FrameLayout;

/// What the dense passes read and the scratch they write.
pub(super) struct Dense<'a> {
    pub spec: &'a PreprocessSpec,
    pub lut: &'a [[f32; 256]],
    pub plan: &'a Plan,
    pub row: &'a mut [u8],
    pub horizontal: &'a mut [f32],
    pub acc: &'a mut [f32],
    pub planes: &'a mut [Vec<f32>; 3],
}

pub(super) fn run(d: Dense, bytes: &[u8], layout: &FrameLayout, out: &mut [f32], level: SimdLevel) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Avx2` is only chosen after `is_x86_feature_detected!("avx2")`.
        SimdLevel::Avx2 => unsafe { passes_avx2(d, bytes, layout, out, level) },
        _ => passes(d, bytes, layout, out, level),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn passes_avx2(d: Dense, bytes: &[u8], layout: &FrameLayout, out: &mut [f32], level: SimdLevel) {
    passes(d, bytes, layout, out, level)
}

#[inline(always)]
fn passes(d: Dense, bytes: &[u8], layout: &FrameLayout, out: &mut [f32], level: SimdLevel) {
    let kernels = Kernels { level };
    let plan = d.plan;
    let ch = d.spec.color.channels();
    let dst_w = plan.dst.width as usize;
    let (x_lo, x_hi) = plan.src_x;
    let (y_lo, y_hi) = plan.src_y;
    let row = &mut d.row[..(x_hi - x_lo) * ch];
    let round = plan.x.round_between_passes;

    // Pass 1: convert each source row the vertical weights read and resample it
    // horizontally into a planar row (one run of `dst_w` floats per channel).
    for sy in y_lo..y_hi {
        if !plan.rows_needed[sy - y_lo] {
            continue;
        }
        let h_row = &mut d.horizontal[(sy - y_lo) * dst_w * ch..][..dst_w * ch];
        if ch == 3 && plan.x.taps >= 8 {
            if !kernels.planes_yuv(bytes, layout, sy, x_lo, x_hi - x_lo, d.planes) {
                convert_row(bytes, layout, sy, x_lo, ch, row);
                deinterleave(row, d.planes);
            }
            horizontal_planar(kernels, &plan.x, d.planes, x_lo, round, h_row);
        } else if ch == 3 {
            convert_row(bytes, layout, sy, x_lo, ch, row);
            horizontal_rgb(&plan.x, row, x_lo, round, h_row);
        } else {
            convert_row(bytes, layout, sy, x_lo, ch, row);
            horizontal_grey(&plan.x, row, x_lo, round, h_row);
        }
    }

    // Pass 2: vertical resampling (an axpy per tap over a whole row), then 8-bit
    // rounding, normalisation and layout in one write.
    let (w_in, h_in) = (d.spec.width, d.spec.height);
    let swap = d.spec.color == ColorOrder::Bgr;
    let acc = &mut d.acc[..dst_w];
    for dy in 0..plan.dst.height as usize {
        let (start, w) = plan.y.taps_of(dy);
        let ty = plan.dst.y as usize + dy;
        for c in 0..ch {
            acc.fill(0.0);
            if plan.y.opencv_fixed_point {
                // OpenCV's vectorised INTER_LINEAR: horizontal sums S in units of 1/2048,
                // each row term ((S >> 4) * beta) >> 16, then (t + 2) >> 2. Summed here in
                // integers, kept in `acc` as the final 8-bit value.
                for (k, &wk) in w.iter().enumerate() {
                    let src = &d.horizontal[((start - y_lo + k) * ch + c) * dst_w..][..dst_w];
                    let beta = (wk * 2048.0) as i32;
                    for (a, &v) in acc.iter_mut().zip(src) {
                        let s = (v * 2048.0) as i32;
                        *a += (((s >> 4) * beta) >> 16) as f32;
                    }
                }
                for a in acc.iter_mut() {
                    *a = (((*a as i32) + 2) >> 2) as f32;
                }
            } else {
                for (k, &wk) in w.iter().enumerate() {
                    let src = &d.horizontal[((start - y_lo + k) * ch + c) * dst_w..][..dst_w];
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a += wk * v;
                    }
                }
            }
            let oc = if swap { 2 - c } else { c };
            let lut = &d.lut[c];
            match d.spec.layout {
                Layout::Nchw => {
                    let base = (oc * h_in + ty) * w_in + plan.dst.x as usize;
                    for (o, &a) in out[base..base + dst_w].iter_mut().zip(acc.iter()) {
                        *o = lut[to_u8(a)];
                    }
                }
                Layout::Nhwc => {
                    for (dx, &a) in acc.iter().enumerate() {
                        let idx = (ty * w_in + plan.dst.x as usize + dx) * ch + oc;
                        out[idx] = lut[to_u8(a)];
                    }
                }
            }
        }
    }
}

/// Round half up into 0..=255: a float-to-u8 `as` saturates (below 0 is 0, above 255 is
/// 255) and truncates, which is floor for what is left; cheaper than `clamp` plus a cast.
#[inline(always)]
fn to_u8(v: f32) -> usize {
    usize::from((v + 0.5) as u8)
}

#[inline(always)]
fn finish_tap(acc: f32, round: bool) -> f32 {
    if round {
        // As `to_u8` (no libm `floor()`, which baseline x86-64 would call).
        f32::from((acc + 0.5) as u8)
    } else {
        acc
    }
}

/// Horizontal pass over one interleaved RGB row into a planar `[r.. g.. b..]` row.
#[inline(always)]
fn horizontal_rgb(x: &Axis, row: &[u8], x_lo: usize, round: bool, out: &mut [f32]) {
    let dst_w = out.len() / 3;
    let (r_out, rest) = out.split_at_mut(dst_w);
    let (g_out, b_out) = rest.split_at_mut(dst_w);
    for dx in 0..dst_w {
        let (start, w) = x.taps_of(dx);
        let src = &row[(start - x_lo) * 3..(start - x_lo + w.len()) * 3];
        let (mut r, mut g, mut b) = (0f32, 0f32, 0f32);
        for (p, &wk) in src.chunks_exact(3).zip(w) {
            r += wk * f32::from(p[0]);
            g += wk * f32::from(p[1]);
            b += wk * f32::from(p[2]);
        }
        r_out[dx] = finish_tap(r, round);
        g_out[dx] = finish_tap(g, round);
        b_out[dx] = finish_tap(b, round);
    }
}

/// Splits an interleaved RGB row into the first `len` floats of three planes.
#[inline(always)]
fn deinterleave(row: &[u8], planes: &mut [Vec<f32>; 3]) {
    let [r, g, b] = planes;
    for (((p, r), g), b) in row
        .chunks_exact(3)
        .zip(r.iter_mut())
        .zip(g.iter_mut())
        .zip(b.iter_mut())
    {
        *r = f32::from(p[0]);
        *g = f32::from(p[1]);
        *b = f32::from(p[2]);
    }
}

/// Dot product over whole chunks of 8 (`w.len()` is a multiple of 8).
#[inline(always)]
fn dot8(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (wc, xc) in w.chunks_exact(8).zip(x.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += wc[i] * xc[i];
        }
    }
    // Left to right: `avx2::horizontal_planar` transposes eight outputs' accumulators
    // and adds them in this same order, so both give the same bits.
    acc.iter().sum()
}

/// Horizontal pass for wide kernels (large downscales): every output reads `taps`
/// consecutive floats of each plane; zero weights and zero padding cover the tail.
#[inline(always)]
fn horizontal_planar(
    kernels: Kernels,
    x: &Axis,
    planes: &[Vec<f32>; 3],
    x_lo: usize,
    round: bool,
    out: &mut [f32],
) {
    let dst_w = out.len() / 3;
    let taps = x.taps;
    for (c, plane) in planes.iter().enumerate() {
        let o = &mut out[c * dst_w..(c + 1) * dst_w];
        let done = kernels.horizontal_planar(x, plane, x_lo, round, o);
        for (dx, v) in o.iter_mut().enumerate().skip(done) {
            let start = x.start[dx] - x_lo;
            let w = &x.weights[dx * taps..(dx + 1) * taps];
            *v = finish_tap(dot8(w, &plane[start..start + taps]), round);
        }
    }
}

#[inline(always)]
fn horizontal_grey(x: &Axis, row: &[u8], x_lo: usize, round: bool, out: &mut [f32]) {
    for (dx, o) in out.iter_mut().enumerate() {
        let (start, w) = x.taps_of(dx);
        let src = &row[start - x_lo..start - x_lo + w.len()];
        let acc: f32 = src.iter().zip(w).map(|(&p, &wk)| wk * f32::from(p)).sum();
        *o = finish_tap(acc, round);
    }
}
