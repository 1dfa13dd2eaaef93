//! AVX2 kernels for x86-64 (chosen at run time by [`super::simd`]). Each one gives the
//! same bits as its scalar twin: integer steps are the same integers, and normalising
//! reads the same lookup table.

use std::arch::x86_64::*;

use super::color::{CUB, CUG, CVG, CVR, CY, HALF, SHIFT};
use super::resample::Axis;
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
    let u = _mm256_and_si256(_mm256_srlv_epi32(d, us), byte);
    let v = _mm256_and_si256(_mm256_srlv_epi32(d, vs), byte);
    rgb_lanes(y, u, v)
}

/// R, G, B lanes (0..=255) of eight Y, U, V lanes (0..=255), as the scalar `yuv_to_rgb`.
#[target_feature(enable = "avx2")]
fn rgb_lanes(y: __m256i, u: __m256i, v: __m256i) -> [__m256i; 3] {
    let u = _mm256_sub_epi32(u, _mm256_set1_epi32(128));
    let v = _mm256_sub_epi32(v, _mm256_set1_epi32(128));
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

/// Columns `x0..x0 + n` of a YUYV, UYVY, NV12, GREY or Y16 row straight into three f32
/// planes (the scalar path converts to interleaved 8-bit RGB, then splits); whether it did
/// the row.
#[target_feature(enable = "avx2")]
pub(super) fn planes_yuv(
    bytes: &[u8],
    layout: &FrameLayout,
    row: usize,
    x0: usize,
    n: usize,
    planes: &mut [Vec<f32>; 3],
) -> bool {
    // Byte picks for eight pixels: Y, then U and V repeated for each pixel of a pair.
    let (ys, us, vs): ([i8; 8], [i8; 8], [i8; 8]) = match layout.format {
        PixelFormat::Yuyv => (
            [0, 2, 4, 6, 8, 10, 12, 14],
            [1, 1, 5, 5, 9, 9, 13, 13],
            [3, 3, 7, 7, 11, 11, 15, 15],
        ),
        PixelFormat::Uyvy => (
            [1, 3, 5, 7, 9, 11, 13, 15],
            [0, 0, 4, 4, 8, 8, 12, 12],
            [2, 2, 6, 6, 10, 10, 14, 14],
        ),
        // NV12: luma comes from its own row; the picks index the interleaved UV row.
        PixelFormat::Nv12 => ([0; 8], [0, 0, 2, 2, 4, 4, 6, 6], [1, 1, 3, 3, 5, 5, 7, 7]),
        // Grey formats: every plane gets the 8-bit value (Y16: the high byte).
        PixelFormat::Grey => ([0, 1, 2, 3, 4, 5, 6, 7], [0; 8], [0; 8]),
        PixelFormat::Y16 => ([1, 3, 5, 7, 9, 11, 13, 15], [0; 8], [0; 8]),
        _ => return false,
    };
    let nv12 = layout.format == PixelFormat::Nv12;
    let grey = matches!(layout.format, PixelFormat::Grey | PixelFormat::Y16);
    let bpp = if matches!(layout.format, PixelFormat::Nv12 | PixelFormat::Grey) {
        1
    } else {
        2
    };
    let Some(start) = row
        .checked_mul(layout.stride)
        .and_then(|s| s.checked_add(x0 * bpp))
    else {
        return false;
    };
    let Some(src) = bytes.get(start..).and_then(|b| b.get(..n * bpp)) else {
        return false;
    };
    let uv: &[u8] = if nv12 {
        let at =
            (layout.stride * layout.height as usize).checked_add((row / 2) * layout.stride + x0);
        match at.and_then(|a| bytes.get(a..)).and_then(|b| b.get(..n)) {
            Some(uv) => uv,
            None => return false,
        }
    } else {
        &[]
    };
    let [r, g, b] = planes;
    if (!grey && !x0.is_multiple_of(2)) || r.len() < n || g.len() < n || b.len() < n {
        return false;
    }
    let pick = |p: [i8; 8]| {
        _mm_setr_epi8(
            p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], -1, -1, -1, -1, -1, -1, -1, -1,
        )
    };
    let (ys, us, vs) = (pick(ys), pick(us), pick(vs));
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n: the 16-byte (2 bytes a pixel) or 8-byte (1 byte a pixel, NV12
        // UV) loads lie inside `src`/`uv`, which hold n * bpp and n bytes; each plane holds
        // at least n.
        unsafe {
            if grey {
                let p = if bpp == 1 {
                    _mm_loadl_epi64(src.as_ptr().add(i).cast())
                } else {
                    _mm_loadu_si128(src.as_ptr().add(i * 2).cast())
                };
                let v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(p, ys)));
                _mm256_storeu_ps(r.as_mut_ptr().add(i), v);
                _mm256_storeu_ps(g.as_mut_ptr().add(i), v);
                _mm256_storeu_ps(b.as_mut_ptr().add(i), v);
                i += 8;
                continue;
            }
            let (y, chroma) = if nv12 {
                let y = _mm_loadl_epi64(src.as_ptr().add(i).cast());
                (y, _mm_loadl_epi64(uv.as_ptr().add(i).cast()))
            } else {
                let p = _mm_loadu_si128(src.as_ptr().add(i * 2).cast());
                (_mm_shuffle_epi8(p, ys), p)
            };
            let y = _mm256_cvtepu8_epi32(y);
            let u = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(chroma, us));
            let v = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(chroma, vs));
            let [cr, cg, cb] = rgb_lanes(y, u, v);
            _mm256_storeu_ps(r.as_mut_ptr().add(i), _mm256_cvtepi32_ps(cr));
            _mm256_storeu_ps(g.as_mut_ptr().add(i), _mm256_cvtepi32_ps(cg));
            _mm256_storeu_ps(b.as_mut_ptr().add(i), _mm256_cvtepi32_ps(cb));
        }
        i += 8;
    }
    // The last n % 8 pixels one at a time.
    let src_row = super::pixel::SourceRow::new(bytes, layout, row);
    for k in i..n {
        let [pr, pg, pb] = src_row.rgb(x0 + k);
        r[k] = f32::from(pr);
        g[k] = f32::from(pg);
        b[k] = f32::from(pb);
    }
    true
}

/// See [`super::simd::Kernels::horizontal_planar`]. Eight outputs at a time: each
/// output's taps multiply-add into its own register (separate multiply and add, as the
/// scalar code), then a transpose lets all eight reduce at once in the scalar `dot8`'s
/// left-to-right order, and the rounded sums go out in one store.
#[target_feature(enable = "avx2")]
pub(super) fn horizontal_planar(
    x: &Axis,
    plane: &[f32],
    x_lo: usize,
    round: bool,
    out: &mut [f32],
) -> usize {
    let taps = x.taps;
    if taps == 0 || !taps.is_multiple_of(8) {
        return 0;
    }
    let mut dx = 0;
    while dx + 8 <= out.len() {
        let mut acc = [_mm256_setzero_ps(); 8];
        for (j, a) in acc.iter_mut().enumerate() {
            let i = dx + j;
            let start = x.start.get(i).and_then(|s| s.checked_sub(x_lo));
            let src = start.and_then(|s| plane.get(s..s + taps));
            let w = x.weights.get(i * taps..(i + 1) * taps);
            let (Some(src), Some(w)) = (src, w) else {
                return dx;
            };
            for k in (0..taps).step_by(8) {
                // SAFETY: k + 8 <= taps == src.len() == w.len().
                unsafe {
                    let p = _mm256_mul_ps(
                        _mm256_loadu_ps(w.as_ptr().add(k)),
                        _mm256_loadu_ps(src.as_ptr().add(k)),
                    );
                    *a = _mm256_add_ps(*a, p);
                }
            }
        }
        // Transpose: column k holds lane k of all eight accumulators, so adding the
        // columns in order is the scalar `dot8`'s left-to-right sum, eight at once.
        let [r0, r1, r2, r3, r4, r5, r6, r7] = acc;
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        let (u0, u1) = (
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
        );
        let (u2, u3) = (
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        );
        let (u4, u5) = (
            _mm256_shuffle_ps::<0x44>(t4, t6),
            _mm256_shuffle_ps::<0xEE>(t4, t6),
        );
        let (u6, u7) = (
            _mm256_shuffle_ps::<0x44>(t5, t7),
            _mm256_shuffle_ps::<0xEE>(t5, t7),
        );
        let columns = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        // `Iterator::sum` for f32 starts from -0.0, which adds nothing.
        let mut v = _mm256_set1_ps(-0.0);
        for c in columns {
            v = _mm256_add_ps(v, c);
        }
        if round {
            let r = _mm256_add_ps(v, _mm256_set1_ps(0.5));
            let r = _mm256_min_ps(_mm256_max_ps(r, _mm256_setzero_ps()), _mm256_set1_ps(255.0));
            v = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(r));
        }
        // SAFETY: dx + 8 <= out.len().
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(dx), v) };
        dx += 8;
    }
    dx
}

/// Columns `x0..x0 + n` of an RGB24/BGR24 row split into three f32 planes; whether it did.
#[target_feature(enable = "avx2")]
pub(super) fn planes_rgb(
    bytes: &[u8],
    layout: &FrameLayout,
    row: usize,
    x0: usize,
    n: usize,
    planes: &mut [Vec<f32>; 3],
) -> bool {
    let bgr = match layout.format {
        PixelFormat::Rgb24 => false,
        PixelFormat::Bgr24 => true,
        _ => return false,
    };
    let Some(start) = row
        .checked_mul(layout.stride)
        .and_then(|s| s.checked_add(x0 * 3))
    else {
        return false;
    };
    let Some(src) = bytes.get(start..).and_then(|b| b.get(..n * 3)) else {
        return false;
    };
    let [r, g, b] = planes;
    if r.len() < n || g.len() < n || b.len() < n {
        return false;
    }
    // Eight pixels are 24 bytes: 16 in `lo`, 8 in `hi`; each channel picks from both.
    let m = |p: [i8; 16]| {
        _mm_setr_epi8(
            p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13],
            p[14], p[15],
        )
    };
    const X: i8 = -1;
    let first = [
        (
            m([0, 3, 6, 9, 12, 15, X, X, X, X, X, X, X, X, X, X]),
            m([X, X, X, X, X, X, 2, 5, X, X, X, X, X, X, X, X]),
        ),
        (
            m([1, 4, 7, 10, 13, X, X, X, X, X, X, X, X, X, X, X]),
            m([X, X, X, X, X, 0, 3, 6, X, X, X, X, X, X, X, X]),
        ),
        (
            m([2, 5, 8, 11, 14, X, X, X, X, X, X, X, X, X, X, X]),
            m([X, X, X, X, X, 1, 4, 7, X, X, X, X, X, X, X, X]),
        ),
    ];
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n: bytes 3i..3i+24 lie inside `src` (3n bytes); each plane holds
        // at least n floats.
        unsafe {
            let lo = _mm_loadu_si128(src.as_ptr().add(i * 3).cast());
            let hi = _mm_loadl_epi64(src.as_ptr().add(i * 3 + 16).cast());
            let ch = first.map(|(a, c)| {
                let v = _mm_or_si128(_mm_shuffle_epi8(lo, a), _mm_shuffle_epi8(hi, c));
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
            });
            let (cr, cb) = if bgr { (ch[2], ch[0]) } else { (ch[0], ch[2]) };
            _mm256_storeu_ps(r.as_mut_ptr().add(i), cr);
            _mm256_storeu_ps(g.as_mut_ptr().add(i), ch[1]);
            _mm256_storeu_ps(b.as_mut_ptr().add(i), cb);
        }
        i += 8;
    }
    let src_row = super::pixel::SourceRow::new(bytes, layout, row);
    for k in i..n {
        let [pr, pg, pb] = src_row.rgb(x0 + k);
        r[k] = f32::from(pr);
        g[k] = f32::from(pg);
        b[k] = f32::from(pb);
    }
    true
}
