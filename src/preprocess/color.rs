//! Pixel-format rows to 8-bit RGB or grey, one row at a time, honouring stride and a
//! horizontal window. YUV follows BT.601 limited range with OpenCV's fixed-point
//! coefficients, so results match `cv2.cvtColor(..., COLOR_YUV2RGB_*)` bit for bit.

use crate::frame::{FrameLayout, PixelFormat};

// OpenCV's ITU-R BT.601 coefficients, scaled by 2^20 (imgproc/src/color_yuv.simd.hpp).
pub(super) const SHIFT: i32 = 20;
pub(super) const HALF: i32 = 1 << (SHIFT - 1);
pub(super) const CY: i32 = 1_220_542;
pub(super) const CUB: i32 = 2_116_026;
pub(super) const CUG: i32 = -409_993;
pub(super) const CVG: i32 = -852_492;
pub(super) const CVR: i32 = 1_673_527;

#[inline(always)]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Chroma terms shared by the two pixels of a 4:2:x pair.
#[inline(always)]
fn chroma(u: u8, v: u8) -> (i32, i32, i32) {
    let uu = i32::from(u) - 128;
    let vv = i32::from(v) - 128;
    (HALF + CVR * vv, HALF + CVG * vv + CUG * uu, HALF + CUB * uu)
}

#[inline(always)]
fn luma_rgb(y: u8, (ruv, guv, buv): (i32, i32, i32), out: &mut [u8]) {
    let yy = (i32::from(y) - 16).max(0) * CY;
    out[0] = clamp_u8((yy + ruv) >> SHIFT);
    out[1] = clamp_u8((yy + guv) >> SHIFT);
    out[2] = clamp_u8((yy + buv) >> SHIFT);
}

#[inline(always)]
pub(super) fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let yy = (i32::from(y) - 16).max(0) * CY;
    let uu = i32::from(u) - 128;
    let vv = i32::from(v) - 128;
    [
        clamp_u8((yy + HALF + CVR * vv) >> SHIFT),
        clamp_u8((yy + HALF + CVG * vv + CUG * uu) >> SHIFT),
        clamp_u8((yy + HALF + CUB * uu) >> SHIFT),
    ]
}

/// OpenCV's RGB→grey weights (0.299, 0.587, 0.114) in 14-bit fixed point.
#[inline(always)]
pub(super) fn rgb_to_grey(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 4899 + u32::from(g) * 9617 + u32::from(b) * 1868 + (1 << 13)) >> 14) as u8
}

/// Converts columns `x0..x0+out.len()/channels` of row `y` of a frame to RGB (3 channels)
/// or grey (1 channel). `bytes` is the whole frame; the caller has checked the layout.
pub fn convert_row(
    bytes: &[u8],
    layout: &FrameLayout,
    y: usize,
    x0: usize,
    channels: usize,
    out: &mut [u8],
) {
    let w = out.len() / channels;
    let row = &bytes[y * layout.stride..];
    match (layout.format, channels) {
        (PixelFormat::Rgb24, 3) => out.copy_from_slice(&row[x0 * 3..(x0 + w) * 3]),
        (PixelFormat::Bgr24, 3) => {
            for (o, p) in out.chunks_exact_mut(3).zip(row[x0 * 3..].chunks_exact(3)) {
                o.copy_from_slice(&[p[2], p[1], p[0]]);
            }
        }
        (PixelFormat::Rgb24, _) => {
            for (o, p) in out.iter_mut().zip(row[x0 * 3..].chunks_exact(3)) {
                *o = rgb_to_grey(p[0], p[1], p[2]);
            }
        }
        (PixelFormat::Bgr24, _) => {
            for (o, p) in out.iter_mut().zip(row[x0 * 3..].chunks_exact(3)) {
                *o = rgb_to_grey(p[2], p[1], p[0]);
            }
        }
        (PixelFormat::Grey, 3) => {
            for (o, &g) in out.chunks_exact_mut(3).zip(&row[x0..x0 + w]) {
                o.fill(g);
            }
        }
        (PixelFormat::Grey, _) => out.copy_from_slice(&row[x0..x0 + w]),
        // Little-endian 16-bit luma: the high byte is the 8-bit value (v >> 8), exact for
        // 16-bit data and for 10/12-bit data that drivers left-align (V4L2 `Y16 ` is MSB-aligned).
        (PixelFormat::Y16, 3) => {
            for (o, p) in out.chunks_exact_mut(3).zip(row[x0 * 2..].chunks_exact(2)) {
                o.fill(p[1]);
            }
        }
        (PixelFormat::Y16, _) => {
            for (o, p) in out.iter_mut().zip(row[x0 * 2..].chunks_exact(2)) {
                *o = p[1];
            }
        }
        // Fast path: whole pixel pairs, chroma computed once per pair.
        (PixelFormat::Yuyv | PixelFormat::Uyvy, 3)
            if x0.is_multiple_of(2) && w.is_multiple_of(2) =>
        {
            let (y0, u, y1, v) = if layout.format == PixelFormat::Yuyv {
                (0, 1, 2, 3)
            } else {
                (1, 0, 3, 2)
            };
            for (pair, o) in row[x0 * 2..(x0 + w) * 2]
                .chunks_exact(4)
                .zip(out.chunks_exact_mut(6))
            {
                let c = chroma(pair[u], pair[v]);
                luma_rgb(pair[y0], c, &mut o[..3]);
                luma_rgb(pair[y1], c, &mut o[3..]);
            }
        }
        (PixelFormat::Nv12, 3) if x0.is_multiple_of(2) && w.is_multiple_of(2) => {
            let uv_plane = layout.stride * layout.height as usize;
            let uv = &bytes[uv_plane + (y / 2) * layout.stride + x0..][..w];
            let luma = &row[x0..x0 + w];
            for ((l, c), o) in luma
                .chunks_exact(2)
                .zip(uv.chunks_exact(2))
                .zip(out.chunks_exact_mut(6))
            {
                let c = chroma(c[0], c[1]);
                luma_rgb(l[0], c, &mut o[..3]);
                luma_rgb(l[1], c, &mut o[3..]);
            }
        }
        (PixelFormat::Yuyv | PixelFormat::Uyvy, _) => {
            // Byte offsets of Y0, U, Y1, V inside each 4-byte pixel pair.
            let (y0, u, y1, v) = if layout.format == PixelFormat::Yuyv {
                (0, 1, 2, 3)
            } else {
                (1, 0, 3, 2)
            };
            for (i, o) in out.chunks_exact_mut(channels).enumerate() {
                let x = x0 + i;
                let pair = &row[(x & !1) * 2..(x & !1) * 2 + 4];
                let luma = if x & 1 == 0 { pair[y0] } else { pair[y1] };
                if channels == 3 {
                    o.copy_from_slice(&yuv_to_rgb(luma, pair[u], pair[v]));
                } else {
                    o[0] = luma;
                }
            }
        }
        (PixelFormat::Nv12, _) => {
            let luma = &row[x0..x0 + w];
            if channels == 1 {
                out.copy_from_slice(luma);
                return;
            }
            let uv_plane = layout.stride * layout.height as usize;
            let uv = &bytes[uv_plane + (y / 2) * layout.stride..];
            for (i, (o, &l)) in out.chunks_exact_mut(3).zip(luma).enumerate() {
                let x = (x0 + i) & !1;
                o.copy_from_slice(&yuv_to_rgb(l, uv[x], uv[x + 1]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_limited_range_endpoints() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range is about Y=81, U=90, V=240.
        let [r, g, b] = yuv_to_rgb(81, 90, 240);
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }

    #[test]
    fn y16_keeps_the_high_byte() {
        let row = [0x34u8, 0x12, 0xff, 0xab];
        let lay = FrameLayout::packed(2, 1, PixelFormat::Y16);
        let mut grey = [0u8; 2];
        convert_row(&row, &lay, 0, 0, 1, &mut grey);
        assert_eq!(grey, [0x12, 0xab]);
        let mut rgb = [0u8; 6];
        convert_row(&row, &lay, 0, 0, 3, &mut rgb);
        assert_eq!(rgb, [0x12, 0x12, 0x12, 0xab, 0xab, 0xab]);
    }

    #[test]
    fn uyvy_and_yuyv_agree_on_the_same_pixels() {
        let yuyv = [50u8, 100, 60, 200];
        let uyvy = [100u8, 50, 200, 60];
        let lay = |f| FrameLayout::packed(2, 1, f);
        let (mut a, mut b) = ([0u8; 6], [0u8; 6]);
        convert_row(&yuyv, &lay(PixelFormat::Yuyv), 0, 0, 3, &mut a);
        convert_row(&uyvy, &lay(PixelFormat::Uyvy), 0, 0, 3, &mut b);
        assert_eq!(a, b);
    }
}
