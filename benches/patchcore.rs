//! PatchCore costs: the nearest-neighbour search alone (blocked sgemm vs brute force), and
//! one whole fitted-model inference (preprocess → backbone → kNN → map → verdict) through
//! the same worker `lineside run` uses.
//!
//! The whole-inference bench needs a fitted demo: `scripts/make-fitted-demos.sh brick`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use lineside::frame::{FrameLayout, PixelFormat};
use lineside::patchcore::{MemoryBank, NnScratch, SplitMix64};
use lineside::pipeline::Worker;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.normal() as f32).collect()
}

fn nn_search(c: &mut Criterion) {
    // A 256x256 frame: 32x32 patches of 152 dims against a 10% coreset of 80 images.
    let (rows, dim, queries) = (8192, 152, 1024);
    let bank = MemoryBank::new(random(rows * dim, 1), dim);
    let q = random(queries * dim, 2);
    let mut out = vec![0.0; queries];
    let mut scratch = NnScratch::default();
    c.bench_function("patchcore_knn_1024q_x_8192x152", |b| {
        b.iter(|| bank.nearest(&q, &mut out, &mut scratch))
    });
    // The same search with the old fixed 32-query blocks, for comparison in one run.
    c.bench_function("patchcore_knn_1024q_x_8192x152_qb32", |b| {
        b.iter(|| bank.nearest_with_block(&q, &mut out, &mut scratch, 32))
    });
    let mut g = c.benchmark_group("patchcore_knn_brute_force");
    g.sample_size(10);
    g.bench_function("1024q_x_8192x152", |b| {
        b.iter(|| bank.nearest_brute_force(&q, &mut out))
    });
    g.finish();
}

fn fitted_inference(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = root.join("scenarios/fitted/brick.toml");
    let image = root.join("data/anomaly/brick/test/crack/000.png");
    let plan = match lineside::scenario::check(&scenario) {
        Ok(p) if image.is_file() => p,
        _ => {
            eprintln!(
                "skipping fitted inference bench: run scripts/make-fitted-demos.sh brick first"
            );
            return;
        }
    };
    let Ok(img) = image::open(&image) else { return };
    let rgb = img.to_rgb8();
    let layout = FrameLayout::packed(rgb.width(), rgb.height(), PixelFormat::Rgb24);
    let Ok(mut worker) = Worker::new(&plan, 2) else {
        return;
    };
    let mut out = worker.new_inspection();
    let mut g = c.benchmark_group("patchcore_fitted");
    g.sample_size(20);
    g.bench_function("brick_256x256_whole_inference", |b| {
        b.iter(|| worker.process(rgb.as_raw(), &layout, &mut out).map(|_| ()))
    });
    g.finish();
}

criterion_group!(benches, nn_search, fitted_inference);
criterion_main!(benches);
