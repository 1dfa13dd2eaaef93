//! One frame through a worker (preprocess → ONNX Runtime → head) for the detection and
//! segmentation heads, one intra-op thread: what a line gets per core. Frames are the
//! scenarios' sample images, decoded once. Needs scripts/setup.sh (ONNX Runtime library).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use lineside::frame::{FrameLayout, PixelFormat};
use lineside::heads::DetectConfig;
use lineside::patchcore::TileSpec;
use lineside::pipeline::Worker;
use lineside::scenario;

fn rgb(root: &Path, rel: &str) -> (Vec<u8>, FrameLayout) {
    let img = image::open(root.join(rel)).expect("sample image").to_rgb8();
    let (w, h) = img.dimensions();
    (
        img.into_raw(),
        FrameLayout::packed(w, h, PixelFormat::Rgb24),
    )
}

fn bench_worker(
    c: &mut Criterion,
    name: &str,
    plan: &scenario::ScenarioPlan,
    frame: &(Vec<u8>, FrameLayout),
) {
    let mut worker = Worker::new(plan, 1).expect("worker");
    let mut ins = worker.new_inspection();
    c.bench_function(name, |b| {
        b.iter(|| {
            worker
                .process(&frame.0, &frame.1, &mut ins)
                .expect("inspect");
        })
    });
}

fn heads(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let plan = |s: &str| scenario::check(&root.join("scenarios").join(s)).expect("valid scenario");

    let screws = plan("catalogue/10-screw-locking.toml");
    let render = rgb(&root, "tests/fixtures/yolo/render_0.png");
    bench_worker(c, "detect_yolov8n_320x320_frame", &screws, &render);

    // the same detector over a 1280x960 frame in 320 px tiles (5x4 with 80 px overlap)
    let mut tiled = screws.clone();
    if let Some(cfg) = tiled.head_config_mut::<DetectConfig>() {
        cfg.tile = Some(TileSpec {
            width: 320,
            height: 320,
            overlap: 80,
        });
    }
    let (w, h) = (1280usize, 960usize);
    let mut big = vec![0u8; w * h * 3];
    for (y, row) in big.chunks_exact_mut(w * 3).enumerate() {
        for x in 0..w {
            let src = ((y % 320) * 320 + x % 320) * 3;
            row[x * 3..x * 3 + 3].copy_from_slice(&render.0[src..src + 3]);
        }
    }
    let big = (
        big,
        FrameLayout::packed(w as u32, h as u32, PixelFormat::Rgb24),
    );
    bench_worker(
        c,
        "detect_yolov8n_1280x960_frame_in_320_tiles",
        &tiled,
        &big,
    );

    let glass = plan("catalogue/03-cover-glass.toml");
    let frame = rgb(&root, "scenarios/samples/glass/glass_7.png");
    bench_worker(c, "segment_class_map_unet_512x512_frame", &glass, &frame);

    let kits = plan("catalogue/26-kit-completeness.toml");
    let frame = rgb(&root, "scenarios/samples/kits/kit_0.png");
    bench_worker(c, "segment_yolov8n_seg_640x480_frame", &kits, &frame);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = heads
}
criterion_main!(benches);
