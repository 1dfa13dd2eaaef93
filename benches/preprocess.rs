//! Preprocessing cost per pixel format: a 1280x720 frame (72-byte row padding) to a
//! 224x224 normalised NCHW tensor, Pillow-style bilinear, ImageNet-style centre crop off.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lineside::frame::{FrameLayout, PixelFormat};
use lineside::preprocess::{ColorOrder, Fit, Interpolation, Layout, PreprocessSpec, Preprocessor};

fn frame(format: PixelFormat) -> (FrameLayout, Vec<u8>) {
    let (w, h) = (1280u32, 720u32);
    let layout = FrameLayout {
        stride: format.min_stride(w) + 72,
        ..FrameLayout::packed(w, h, format)
    };
    let mut bytes = vec![0u8; layout.frame_len()];
    lineside::source::encode(&layout, &mut bytes, |x, y| {
        [(x ^ y) as u8, (x / 5) as u8, (y / 3) as u8]
    });
    (layout, bytes)
}

fn spec(interpolation: Interpolation, fit: Fit) -> PreprocessSpec {
    PreprocessSpec {
        roi: None,
        fit,
        crop_fraction: 1.0,
        pad_value: 114,
        interpolation,
        color: ColorOrder::Rgb,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        layout: Layout::Nchw,
        width: 224,
        height: 224,
    }
}

fn formats(c: &mut Criterion) {
    let mut g = c.benchmark_group("preprocess_1280x720_to_224");
    g.throughput(Throughput::Elements(1));
    for format in PixelFormat::ALL {
        let (layout, bytes) = frame(format);
        let mut pre = Preprocessor::new(spec(Interpolation::Bilinear, Fit::Stretch));
        let mut out = vec![0f32; 3 * 224 * 224];
        g.bench_with_input(BenchmarkId::new("bilinear", format), &format, |b, _| {
            b.iter(|| pre.run(&bytes, &layout, &mut out).map(|_| ()))
        });
    }
    let (layout, bytes) = frame(PixelFormat::Yuyv);
    for (name, interp, fit) in [
        ("linear", Interpolation::Linear, Fit::Stretch),
        ("nearest", Interpolation::Nearest, Fit::Stretch),
        ("letterbox_linear", Interpolation::Linear, Fit::Letterbox),
    ] {
        let mut pre = Preprocessor::new(spec(interp, fit));
        let mut out = vec![0f32; 3 * 224 * 224];
        g.bench_function(BenchmarkId::new(name, "YUYV"), |b| {
            b.iter(|| pre.run(&bytes, &layout, &mut out).map(|_| ()))
        });
    }
    g.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);
