//! A fitted PatchCore scenario in steady state allocates nothing per frame on the calling
//! thread: preprocess → ONNX Runtime (backbone) → patch features → kNN → map → regions,
//! untiled and tiled. Counted like tests/zero_alloc.rs (this thread's allocations; rayon's
//! workers and ONNX Runtime's C++ arena are outside the count).
//!
//! One exception, outside lineside: each kNN hands its query blocks to rayon from a
//! non-rayon thread, and rayon-core's global injector (`crossbeam_deque::Injector::push`)
//! allocates one 63-slot block every 63 such hand-overs. So the budget is
//! `ceil(kNN calls / 63)` allocations, amortised and independent of frame size.
mod common;

use std::path::{Path, PathBuf};

use lineside::fit::{fit, FitOptions};
use lineside::frame::{FrameLayout, PixelFormat};
use lineside::pipeline::Worker;
use lineside::scenario;

#[global_allocator]
static GLOBAL: common::counting::Counting = common::counting::Counting;

use common::counting::allocations_during;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Stripes with per-image phase and a little noise; `blob` paints a dark disc.
fn texture(seed: u32, w: u32, h: u32, blob: bool) -> image::RgbImage {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s % 1000) as f32 / 1000.0
    };
    let p = rnd() * 8.0;
    image::RgbImage::from_fn(w, h, |x, y| {
        let mut g = 0.5
            + 0.2 * ((x as f32 + y as f32 + p) / 8.0 * std::f32::consts::TAU).cos()
            + 0.04 * (rnd() - 0.5);
        let (dx, dy) = (x as f32 - 40.0, y as f32 - 40.0);
        if blob && dx * dx + dy * dy < 100.0 {
            g = 0.02;
        }
        let b = (g.clamp(0.0, 1.0) * 255.0) as u8;
        image::Rgb([b, b, b / 2])
    })
}

fn scenario(dir: &Path, name: &str, head_extra: &str) -> PathBuf {
    let backbone = root().join("models/efficientnet-lite0/efficientnet_lite0_features.onnx");
    let text = format!(
        "[scenario]\nid = \"alloc\"\n[source]\nkind = \"images\"\npath = \"good\"\n\
         [model]\npath = \"{}\"\n[preprocess]\nsize = [96, 96]\nscale = 0.00392156862745098\n\
         mean = 0.498\nstd = 0.502\n[head]\nkind = \"patchcore\"\nartifact = \"part.lspc\"\n{head_extra}\n\
         [fit]\ntrain = \"good\"\nholdout = 0.25\ncoreset_ratio = 0.25\nprojection_dim = 32\n\
         [rules]\nmin_defect_area_px = 4\n[output]\ndir = \"out\"\n",
        backbone.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// rayon-core's injector: one block allocation per 63 jobs injected from outside rayon.
fn injector_budget(knn_calls: u64) -> u64 {
    knn_calls.div_ceil(63)
}

fn steady_state(worker: &mut Worker, frames: &[(image::RgbImage, bool)], rounds: usize) -> u64 {
    let mut out = worker.new_inspection();
    let mut run = |worker: &mut Worker, img: &image::RgbImage| {
        let layout = FrameLayout::packed(img.width(), img.height(), PixelFormat::Rgb24);
        worker.process(img.as_raw(), &layout, &mut out).unwrap();
        out.score.unwrap_or(0.0)
    };
    // Warm-up: scratch buffers, tile plans and ONNX Runtime's arena.
    for (img, _) in frames.iter().chain(frames) {
        run(worker, img);
    }
    let mut scores = Vec::with_capacity(rounds * frames.len());
    let n = allocations_during(|| {
        for _ in 0..rounds {
            for (img, _) in frames {
                scores.push(run(worker, img));
            }
        }
    });
    // The frames really were inspected: the defective one scores above every good one.
    let (mut good, mut bad) = (f32::NEG_INFINITY, f32::INFINITY);
    for (s, (_, defective)) in scores.iter().zip(frames.iter().cycle()) {
        if *defective {
            bad = bad.min(*s);
        } else {
            good = good.max(*s);
        }
    }
    assert!(bad > good, "{scores:?}");
    n
}

#[test]
fn fitted_head_allocates_nothing_per_frame() {
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("good")).unwrap();
    for i in 0..12 {
        texture(i, 96, 96, false)
            .save(dir.join(format!("good/{i:03}.png")))
            .unwrap();
    }
    let plain = scenario(dir, "plain.toml", "");
    let plan = lineside::fit::fit_plan(&plain).unwrap_or_else(|d| panic!("{d:?}"));
    fit(
        &plan,
        &FitOptions {
            progress: false,
            threads: 1,
        },
    )
    .unwrap();

    let plan = scenario::check(&plain).unwrap_or_else(|d| panic!("{d:?}"));
    let mut worker = Worker::new(&plan, 1).unwrap();
    let frames = [
        (texture(100, 96, 96, false), false),
        (texture(101, 96, 96, true), true),
        (texture(102, 96, 96, false), false),
    ];
    // 150 frames, one kNN each.
    let n = steady_state(&mut worker, &frames, 50);
    let budget = injector_budget(150);
    assert!(n <= budget, "{n} heap allocations in 150 steady-state fitted frames (rayon's injector accounts for {budget})");

    // Tiled: a 416x336 frame as 96x96 tiles 80 px apart (a multiple of the stripes'
    // 8 px period, so every tile sees the pattern as fitted).
    let tiled = scenario(dir, "tiled.toml", "tile = [96, 96]\ntile_overlap = 16");
    let plan = scenario::check(&tiled).unwrap_or_else(|d| panic!("{d:?}"));
    let mut worker = Worker::new(&plan, 1).unwrap();
    let frames = [
        (texture(200, 416, 336, false), false),
        (texture(201, 416, 336, true), true),
    ];
    // 8 frames of 5x4 tiles: 160 kNN calls.
    let n = steady_state(&mut worker, &frames, 4);
    let budget = injector_budget(160);
    assert!(n <= budget, "{n} heap allocations in 8 steady-state tiled frames (rayon's injector accounts for {budget})");
}

#[test]
fn the_pruned_search_of_a_large_bank_allocates_nothing_per_call() {
    use lineside::patchcore::{MemoryBank, NnScratch, SplitMix64};
    // Rows around a few hundred points, like patch features: big enough to be clustered.
    let (rows, dim, nq) = (4096, 152, 1024);
    let mut rng = SplitMix64::new(5);
    let modes: Vec<f32> = (0..200 * dim).map(|_| 4.0 * rng.normal() as f32).collect();
    let near = |rng: &mut SplitMix64| -> Vec<f32> {
        let m = rng.below(200);
        (0..dim)
            .map(|j| modes[m * dim + j] + 0.5 * rng.normal() as f32)
            .collect()
    };
    let data: Vec<f32> = (0..rows).flat_map(|_| near(&mut rng)).collect();
    let queries: Vec<f32> = (0..nq).flat_map(|_| near(&mut rng)).collect();
    let bank = MemoryBank::new(data, dim);
    assert!(bank.is_clustered(), "a bank this size is searched pruned");
    let mut scratch = NnScratch::default();
    scratch.ensure(&bank, nq);
    let mut out = vec![0.0; nq];
    bank.nearest(&queries, &mut out, &mut scratch);
    let n = allocations_during(|| {
        for _ in 0..20 {
            bank.nearest(&queries, &mut out, &mut scratch);
        }
    });
    assert!(
        n <= injector_budget(20),
        "{n} heap allocations in 20 pruned searches"
    );
    assert!(out.iter().all(|d| d.is_finite()));
}
