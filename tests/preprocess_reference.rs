//! Preprocessing against OpenCV (BT.601 colour conversion) and Pillow/OpenCV (resize),
//! for every pixel format with padded strides, at 1280x720 → 224x224.

mod common;

use lineside::frame::PixelFormat;
use lineside::preprocess::{
    ColorOrder, Fit, Interpolation, Layout, PreprocessSpec, Preprocessor, Rect,
};
use serde_json::json;

struct Case {
    format: PixelFormat,
    fit: Fit,
    interpolation: Interpolation,
    roi: Option<Rect>,
    size: (usize, usize),
}

fn spec(c: &Case) -> PreprocessSpec {
    PreprocessSpec {
        roi: c.roi,
        fit: c.fit,
        crop_fraction: if c.fit == Fit::CenterCrop { 0.875 } else { 1.0 },
        pad_value: 114,
        interpolation: c.interpolation,
        color: ColorOrder::Rgb,
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
        layout: Layout::Nhwc,
        width: c.size.0,
        height: c.size.1,
    }
}

#[test]
fn every_format_and_resize_matches_opencv_and_pillow() {
    let (w, h) = (1280u32, 720u32);
    let rgb = common::photo_rgb("chelsea.png", w, h);
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for format in PixelFormat::ALL {
        cases.push(Case {
            format,
            fit: Fit::Stretch,
            interpolation: Interpolation::Bilinear,
            roi: None,
            size: (224, 224),
        });
    }
    // Full size, nearest: a pure colour-conversion check, which must be exact.
    for format in [PixelFormat::Uyvy, PixelFormat::Nv12] {
        cases.push(Case {
            format,
            fit: Fit::Stretch,
            interpolation: Interpolation::Nearest,
            roi: None,
            size: (1280, 720),
        });
    }
    for interpolation in [Interpolation::Linear, Interpolation::Nearest] {
        cases.push(Case {
            format: PixelFormat::Yuyv,
            fit: Fit::Stretch,
            interpolation,
            roi: None,
            size: (224, 224),
        });
    }
    let roi = Some(Rect {
        x: 100,
        y: 50,
        width: 900,
        height: 600,
    });
    cases.push(Case {
        format: PixelFormat::Nv12,
        fit: Fit::CenterCrop,
        interpolation: Interpolation::Bilinear,
        roi,
        size: (224, 224),
    });
    cases.push(Case {
        format: PixelFormat::Bgr24,
        fit: Fit::Letterbox,
        interpolation: Interpolation::Linear,
        roi: None,
        size: (320, 320),
    });
    cases.push(Case {
        format: PixelFormat::Rgb24,
        fit: Fit::Stretch,
        interpolation: Interpolation::Bilinear,
        roi: None,
        size: (300, 200),
    });
    // Issue 10 item 9: a region whose letterboxed height is an exact half (303 * 320/384 =
    // 252.5); Ultralytics (Python's round) makes it 252 rows.
    cases.push(Case {
        format: PixelFormat::Rgb24,
        fit: Fit::Letterbox,
        interpolation: Interpolation::Linear,
        roi: Some(Rect {
            x: 10,
            y: 20,
            width: 384,
            height: 303,
        }),
        size: (320, 320),
    });
    cases.push(Case {
        format: PixelFormat::Yuyv,
        fit: Fit::Stretch,
        interpolation: Interpolation::LinearExact,
        roi: None,
        size: (224, 224),
    });

    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let (layout, bytes) = common::encode_frame(&rgb, w, h, c.format, 64);
        let raw = dir.path().join(format!("case{i}.raw"));
        std::fs::write(&raw, &bytes).unwrap();
        let mut out = vec![0f32; c.size.0 * c.size.1 * 3];
        Preprocessor::new(spec(c))
            .run(&bytes, &layout, &mut out)
            .unwrap();
        ours.push(out);
        jobs.push(json!({
            "raw": raw, "width": w, "height": h, "fourcc": c.format.to_string(),
            "stride": layout.stride,
            "roi": c.roi.map(|r| [r.x, r.y, r.width, r.height]),
            "fit": match c.fit { Fit::Stretch => "stretch", Fit::CenterCrop => "center_crop", Fit::Letterbox => "letterbox" },
            "crop_fraction": 0.875, "out_w": c.size.0, "out_h": c.size.1,
            "interpolation": match c.interpolation {
                Interpolation::Bilinear => "bilinear",
                Interpolation::Linear => "linear",
                Interpolation::LinearExact => "linear_exact",
                Interpolation::Nearest => "nearest",
            },
            "pad": 114, "out": dir.path().join(format!("case{i}.ref")),
        }));
    }
    let cases_json = dir.path().join("cases.json");
    std::fs::write(&cases_json, serde_json::to_vec(&jobs).unwrap()).unwrap();
    common::run_python("preprocess_ref.py", &[&cases_json]);

    for (i, (c, out)) in cases.iter().zip(&ours).enumerate() {
        let reference = std::fs::read(dir.path().join(format!("case{i}.ref"))).unwrap();
        assert_eq!(reference.len(), out.len());
        let diffs: Vec<f32> = out
            .iter()
            .zip(&reference)
            .map(|(a, &b)| (a - f32::from(b)).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let label = format!(
            "case {i}: {} {:?} {:?} -> {:?}",
            c.format, c.fit, c.interpolation, c.size
        );
        // OpenCV's nearest and linear resizes (and its colour conversion) are reproduced
        // bit for bit; Pillow's bilinear and OpenCV's INTER_LINEAR_EXACT use other
        // fixed-point weights, so a rare pixel is one level off.
        if matches!(
            c.interpolation,
            Interpolation::Nearest | Interpolation::Linear
        ) {
            assert_eq!(max, 0.0, "{label}: must match OpenCV exactly");
        }
        assert!(max <= 1.0, "{label}: max difference {max} levels");
        assert!(mean < 0.01, "{label}: mean difference {mean} levels");
        eprintln!("{label}: max {max}, mean {mean:.4}");
    }
}
