//! The fast paths against the reference ones, bit for bit: sparse `linear`/`nearest`
//! against the generic dense passes, and vector kernels against scalar ones, over every
//! pixel format, output layout, colour order, fit and a spread of sizes (odd widths,
//! widths that are not a multiple of the vector width, upscales, a region of interest).

use super::*;
use crate::frame::PixelFormat;

fn frame(format: PixelFormat, w: u32, h: u32) -> (FrameLayout, Vec<u8>) {
    let layout = FrameLayout {
        stride: format.min_stride(w) + 24,
        ..FrameLayout::packed(w, h, format)
    };
    // Pseudo-random bytes: every YUV corner case (clamping, luma below 16) shows up.
    let mut state = 0x2545_f491_u32 ^ w ^ (h << 16);
    let bytes = (0..layout.frame_len())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    (layout, bytes)
}

fn spec(
    interpolation: Interpolation,
    color: ColorOrder,
    layout: Layout,
    fit: Fit,
) -> PreprocessSpec {
    PreprocessSpec {
        roi: None,
        fit,
        crop_fraction: 0.875,
        pad_value: 114,
        interpolation,
        color,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        layout,
        width: 0,
        height: 0,
    }
}

fn run(
    s: &PreprocessSpec,
    dense: bool,
    simd: bool,
    layout: &FrameLayout,
    bytes: &[u8],
) -> Vec<u32> {
    let mut pre = Preprocessor::new(s.clone());
    pre.dense_only = dense;
    pre.use_simd(simd);
    let mut out = vec![f32::NAN; s.width * s.height * s.color.channels()];
    // Twice: the second run reuses the plan and scratch of the first.
    pre.run(bytes, layout, &mut out).unwrap();
    out.fill(f32::NAN);
    pre.run(bytes, layout, &mut out).unwrap();
    out.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn sparse_and_vector_paths_equal_the_reference_bit_for_bit() {
    let sizes = [
        (1280, 720, 224, 224),
        (64, 48, 37, 29),
        (30, 20, 71, 45),
        (40, 40, 40, 40),      // 1:1 (the copy path) but for the centre crop
        (1280, 720, 256, 256), // a 1:1 tile of a region (below)
    ];
    let mut compared = 0;
    for format in PixelFormat::ALL {
        for (fw, fh, w, h) in sizes {
            let (layout, bytes) = frame(format, fw, fh);
            for interpolation in [
                Interpolation::Linear,
                Interpolation::Nearest,
                Interpolation::Bilinear,
                Interpolation::LinearExact,
            ] {
                for color in [ColorOrder::Rgb, ColorOrder::Bgr, ColorOrder::Gray] {
                    for lay in [Layout::Nchw, Layout::Nhwc] {
                        for fit in [Fit::Stretch, Fit::Letterbox, Fit::CenterCrop] {
                            let mut s = spec(interpolation, color, lay, fit);
                            (s.width, s.height) = (w, h);
                            if fw > 100 {
                                let (width, height) =
                                    if w == 256 { (256, 256) } else { (1001, 600) };
                                s.roi = Some(Rect {
                                    x: 6,
                                    y: 3,
                                    width,
                                    height,
                                });
                            }
                            let want = run(&s, true, false, &layout, &bytes);
                            let label = format!("{format} {fw}x{fh}->{w}x{h} {s:?}");
                            assert_eq!(
                                run(&s, false, false, &layout, &bytes),
                                want,
                                "scalar {label}"
                            );
                            assert_eq!(run(&s, false, true, &layout, &bytes), want, "simd {label}");
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(compared, 7 * 5 * 4 * 3 * 2 * 3);
}

#[test]
fn a_new_frame_is_not_served_from_the_previous_frames_rows() {
    let s = PreprocessSpec {
        width: 50,
        height: 30,
        ..spec(
            Interpolation::Linear,
            ColorOrder::Rgb,
            Layout::Nchw,
            Fit::Stretch,
        )
    };
    let (layout, a) = frame(PixelFormat::Yuyv, 100, 60);
    let (_, b) = frame(PixelFormat::Yuyv, 100, 62);
    let b = &b[..a.len()];
    let mut pre = Preprocessor::new(s.clone());
    let mut out = vec![0f32; 3 * 50 * 30];
    pre.run(&a, &layout, &mut out).unwrap();
    pre.run(b, &layout, &mut out).unwrap();
    let fresh = run(&s, false, true, &layout, b);
    assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), fresh);
}
