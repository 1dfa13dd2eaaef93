//! The vector and sparse preprocessing paths on the real hot path: no allocation per frame
//! with the vector kernels or the scalar ones, `LINESIDE_SIMD=off` selects the scalar
//! kernels, and both give the same tensor bits for a real photo in every format.
//! (The exhaustive bit-for-bit comparison over formats, layouts and sizes is the unit test
//! `preprocess::equivalence_tests`.)

mod common;

use common::counting::allocations_during;
use lineside::frame::PixelFormat;
use lineside::preprocess::{
    ColorOrder, Fit, Interpolation, Layout, PreprocessSpec, Preprocessor, SimdLevel,
};

#[global_allocator]
static GLOBAL: common::counting::Counting = common::counting::Counting;

fn spec(interpolation: Interpolation) -> PreprocessSpec {
    PreprocessSpec {
        roi: None,
        fit: Fit::Stretch,
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

const INTERPOLATIONS: [Interpolation; 4] = [
    Interpolation::Linear,
    Interpolation::Nearest,
    Interpolation::Bilinear,
    Interpolation::LinearExact,
];

// One test function: it sets an environment variable, which must not race other tests.
#[test]
fn vector_and_scalar_paths_allocate_nothing_and_agree() {
    // The only test in this binary, so no other thread reads the environment meanwhile.
    std::env::set_var("LINESIDE_SIMD", "off");
    assert_eq!(
        Preprocessor::new(spec(Interpolation::Linear)).simd(),
        SimdLevel::Scalar,
        "LINESIDE_SIMD=off selects the scalar kernels"
    );
    std::env::remove_var("LINESIDE_SIMD");
    eprintln!("this CPU: {:?}", SimdLevel::best());

    let (w, h) = (1280u32, 720u32);
    let rgb = common::photo_rgb("chelsea.png", w, h);
    for format in PixelFormat::ALL {
        let (layout, bytes) = common::encode_frame(&rgb, w, h, format, 64);
        for interpolation in INTERPOLATIONS {
            let mut tensors = Vec::new();
            for simd in [true, false] {
                let mut pre = Preprocessor::new(spec(interpolation));
                pre.use_simd(simd);
                let mut out = vec![0f32; 3 * 224 * 224];
                pre.run(&bytes, &layout, &mut out).unwrap(); // sizes the scratch
                let n = allocations_during(|| {
                    for _ in 0..3 {
                        pre.run(&bytes, &layout, &mut out).unwrap();
                    }
                });
                let label = format!("{format} {interpolation:?} {:?}", pre.simd());
                assert_eq!(n, 0, "{label}: {n} allocations in 3 frames");
                // A real picture, not a constant: the tensor spans many values.
                let (lo, hi) = out
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                assert!(hi - lo > 2.0, "{label}: tensor range {lo}..{hi}");
                tensors.push(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            assert!(
                tensors[0] == tensors[1],
                "{format} {interpolation:?}: vector and scalar tensors differ"
            );
        }
    }
}
