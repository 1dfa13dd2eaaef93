//! The whole pipeline on replayed frames: raw YUYV 1280x720 frames → preprocess →
//! EfficientNet-Lite0 on ONNX Runtime → classify head → ordered defect log, with the
//! workers the cores allow. Needs scripts/setup.sh (ONNX Runtime library).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lineside::frame::{FrameLayout, PixelFormat};
use lineside::runner::{run_scenarios, RunOptions};
use lineside::scenario;
use lineside::source::RawSidecar;
use lineside::source::SourceKind;

const FRAMES: u64 = 32;

fn replay_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let (w, h) = (1280u32, 720u32);
    let layout = FrameLayout::packed(w, h, PixelFormat::Yuyv);
    let mut all = Vec::new();
    for i in 0..FRAMES {
        let mut f = vec![0u8; layout.frame_len()];
        lineside::source::encode(&layout, &mut f, |x, y| {
            [(x + i as u32) as u8, y as u8, (x ^ y) as u8]
        });
        all.extend_from_slice(&f);
    }
    let raw = dir.path().join("line.yuyv");
    std::fs::write(&raw, all).expect("write frames");
    let sidecar = RawSidecar {
        width: w,
        height: h,
        fourcc: "YUYV".into(),
        stride: None,
        frame_bytes: None,
    };
    std::fs::write(
        RawSidecar::sidecar_path(&raw),
        serde_json::to_vec(&sidecar).expect("json"),
    )
    .expect("write sidecar");
    dir
}

fn pipeline(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let frames = replay_dir();
    let mut plan =
        scenario::check(&root.join("scenarios/demo.toml")).expect("demo scenario is valid");
    plan.source.kind = SourceKind::Raw;
    plan.source.path = Some(frames.path().to_path_buf());
    plan.output_dir = frames.path().join("out");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = RunOptions::unattended(cores);
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(FRAMES));
    g.bench_function("raw_yuyv_1280x720_efficientnet_lite0_32_frames", |b| {
        b.iter(|| {
            for r in run_scenarios(std::slice::from_ref(&plan), &opts) {
                r.expect("run");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
