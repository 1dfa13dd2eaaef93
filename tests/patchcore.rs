//! PatchCore fitted on the box, end to end with the real backbone and ONNX Runtime:
//! fit → run through the same anomaly head as an anomalib export → same defect-log schema;
//! and the quality metrics against scikit-learn / anomalib reference values.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use lineside::eval::metrics::{aupro, auroc, label_regions};
use lineside::fit::{fit, FitError, FitOptions};
use lineside::runner::{run_scenarios, RunOptions};
use lineside::scenario;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A woven-looking good texture with per-image jitter; `defect` paints a dark blob.
fn texture(seed: u32, defect: bool) -> image::RgbImage {
    texture_sized(seed, 96, 96, defect.then_some((48.0, 40.0)))
}

/// The same texture at any size, with an optional dark blob (radius 10) at `blob`.
fn texture_sized(seed: u32, w: u32, h: u32, blob: Option<(f32, f32)>) -> image::RgbImage {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s % 1000) as f32 / 1000.0
    };
    let (px, py) = (rnd() * 8.0, rnd() * 8.0);
    image::RgbImage::from_fn(w, h, |x, y| {
        let u = ((x as f32 + px) / 8.0 * std::f32::consts::TAU).cos();
        let v = ((y as f32 + py) / 8.0 * std::f32::consts::TAU).cos();
        let mut g = 0.5 + 0.2 * u * v + 0.05 * (rnd() - 0.5);
        if let Some((bx, by)) = blob {
            let (dx, dy) = (x as f32 - bx, y as f32 - by);
            if dx * dx + dy * dy < 100.0 {
                g = 0.02;
            }
        }
        let b = (g.clamp(0.0, 1.0) * 255.0) as u8;
        image::Rgb([b / 2, b, b])
    })
}

fn write_dir(dir: &Path, n: u32, defect: bool, offset: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        texture(i + offset, defect)
            .save(dir.join(format!("{i:03}.png")))
            .unwrap();
    }
}

fn fitted_scenario(dir: &Path, min_images: usize) -> PathBuf {
    fitted_scenario_with(dir, "scenario.toml", min_images, "")
}

/// `head_extra` goes at the end of `[head]`.
fn fitted_scenario_with(dir: &Path, name: &str, min_images: usize, head_extra: &str) -> PathBuf {
    let backbone = root().join("models/efficientnet-lite0/efficientnet_lite0_features.onnx");
    let text = format!(
        r#"
[scenario]
id = "fitted-test"
[source]
kind = "images"
path = "parts"
[model]
path = "{}"
[preprocess]
size = [96, 96]
scale = 0.00392156862745098
mean = 0.498
std = 0.502
[head]
kind = "patchcore"
artifact = "fitted/part.lspc"
{head_extra}
[fit]
train = "good"
holdout = 0.25
coreset_ratio = 0.25
projection_dim = 32
min_images = {min_images}
[rules]
mm_per_px = 0.5
[output]
dir = "out"
"#,
        backbone.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn log_keys(path: &Path) -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut rec, mut def, mut n_def) = (BTreeSet::new(), BTreeSet::new(), 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        rec.extend(v.as_object().unwrap().keys().cloned());
        for d in v["defects"].as_array().unwrap() {
            n_def += 1;
            def.extend(d.as_object().unwrap().keys().cloned());
        }
    }
    (rec, def, n_def)
}

#[test]
fn fitted_and_anomalib_models_share_the_head_and_the_defect_log_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dir(&dir.join("good"), 12, false, 0);
    write_dir(&dir.join("parts"), 2, false, 100);
    image::RgbImage::from(texture(200, true))
        .save(dir.join("parts/bad.png"))
        .unwrap();
    let scenario = fitted_scenario(dir, 10);
    let plan = lineside::fit::fit_plan(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let report = fit(
        &plan,
        &FitOptions {
            progress: false,
            threads: 2,
        },
    )
    .unwrap();
    assert_eq!((report.train_images, report.holdout_images), (9, 3));
    assert_eq!(report.patches, 9 * 12 * 12);
    assert_eq!(
        report.bank_rows,
        (report.patches as f64 * 0.25).round() as usize
    );

    // The anomalib fixture, as a scenario, next to the fitted one.
    let fixture = root().join("models/fixtures/anomalib_patchcore");
    let anomalib = dir.join("anomalib.toml");
    std::fs::write(
        &anomalib,
        format!(
            "[scenario]\nid = \"anomalib-test\"\n[source]\nkind = \"images\"\npath = \"{}\"\n\
             [model]\npath = \"{}\"\n[head]\nkind = \"anomaly\"\n[rules]\nmm_per_px = 0.5\n[output]\ndir = \"out-anomalib\"\n",
            fixture.join("samples").display(),
            fixture.join("model.onnx").display()
        ),
    )
    .unwrap();
    let plans = vec![
        scenario::check(&scenario).unwrap_or_else(|d| panic!("{d:?}")),
        scenario::check(&anomalib).unwrap_or_else(|d| panic!("{d:?}")),
    ];
    for p in &plans {
        assert!(
            p.head_config::<lineside::heads::AnomalyConfig>().is_some(),
            "both kinds run through the anomaly head"
        );
    }
    let results = run_scenarios(
        &plans,
        &RunOptions {
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            abort: Arc::new(AtomicBool::new(false)),
            cores: 2,
            station: Default::default(),
        },
    );
    let mut logs = Vec::new();
    for r in results {
        let s = r.unwrap();
        logs.push(PathBuf::from(s.defect_log));
    }
    let fitted_log = std::fs::read_to_string(&logs[0]).unwrap();
    let records: Vec<serde_json::Value> = fitted_log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bad = records
        .iter()
        .find(|r| r["item"].as_str().is_some_and(|i| i.contains("bad")))
        .unwrap();
    assert_eq!(bad["verdict"], "NG", "the dark blob is found: {bad}");
    assert_eq!(bad["model"]["id"], "part", "logs name the fitted artifact");
    let d = &bad["defects"][0];
    let area = d["area_px"].as_f64().unwrap();
    assert!(
        (d["area_mm2"].as_f64().unwrap() - area * 0.25).abs() < 0.02 * area,
        "{d}"
    );
    // Same record and defect keys for both kinds of model.
    let (rec_a, def_a, n_a) = log_keys(&logs[0]);
    let (rec_b, def_b, n_b) = log_keys(&logs[1]);
    assert_eq!(rec_a, rec_b);
    assert!(n_a > 0 && n_b > 0, "both logs list defects");
    assert_eq!(def_a, def_b);
}

#[test]
fn fit_says_when_there_are_too_few_images() {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&tmp.path().join("good"), 3, false, 0);
    let plan = lineside::fit::fit_plan(&fitted_scenario(tmp.path(), 10)).unwrap();
    let err = fit(
        &plan,
        &FitOptions {
            progress: false,
            threads: 1,
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        FitError::TooFewImages {
            found: 3,
            need: 10,
            ..
        }
    ));
    assert!(err.to_string().contains("Fix:"));
}

#[test]
fn a_patchcore_scenario_without_its_artifact_says_how_to_make_it() {
    let tmp = tempfile::tempdir().unwrap();
    write_dir(&tmp.path().join("parts"), 1, false, 0);
    let diags = scenario::check(&fitted_scenario(tmp.path(), 10)).unwrap_err();
    let text = format!("{diags:?}");
    assert!(text.contains("lineside fit"), "{text}");
}

#[test]
fn metrics_match_sklearn_and_anomalib_reference_values() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/metrics_reference.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let f32s = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let scores = f32s(&r["image"]["scores"]);
    let labels: Vec<bool> = r["image"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect();
    let a = auroc(&scores, &labels).unwrap();
    assert!((a - r["image"]["sklearn_roc_auc"].as_f64().unwrap()).abs() < 1e-9);

    let maps = f32s(&r["pixel"]["maps"]);
    let masks: Vec<bool> = r["pixel"]["masks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap() != 0)
        .collect();
    let a = auroc(&maps, &masks).unwrap();
    assert!((a - r["pixel"]["sklearn_roc_auc"].as_f64().unwrap()).abs() < 1e-9);

    let shape: Vec<usize> = r["pixel"]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let (b, h, w) = (shape[0], shape[1], shape[2]);
    let mut regions = vec![0u32; b * h * w];
    let mut next = 1;
    for i in 0..b {
        next = label_regions(
            &masks[i * h * w..(i + 1) * h * w],
            w,
            h,
            next,
            &mut regions[i * h * w..(i + 1) * h * w],
        );
    }
    for (limit, expected) in r["aupro"].as_object().unwrap() {
        let limit: f64 = limit.parse().unwrap();
        let got = aupro(&maps, &regions, limit).unwrap();
        // anomalib computes in float32.
        assert!(
            (got - expected.as_f64().unwrap()).abs() < 1e-5,
            "AUPRO@{limit}: {got} vs anomalib {expected}"
        );
    }
}

#[test]
fn tiled_frames_find_a_small_defect_in_a_large_frame_and_match_untiled_on_one_tile() {
    use lineside::frame::{FrameLayout, PixelFormat};
    use lineside::pipeline::Worker;
    use lineside::verdict::Verdict;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dir(&dir.join("good"), 12, false, 0);
    std::fs::create_dir_all(dir.join("parts")).unwrap();
    let plain = fitted_scenario(dir, 10);
    let plan = lineside::fit::fit_plan(&plain).unwrap_or_else(|d| panic!("{d:?}"));
    let opts = FitOptions {
        progress: false,
        threads: 2,
    };
    fit(&plan, &opts).unwrap();
    let tiled = fitted_scenario_with(dir, "tiled.toml", 10, "tile = [96, 96]\ntile_overlap = 16");
    let plain = scenario::check(&plain).unwrap_or_else(|d| panic!("{d:?}"));
    let tiled = scenario::check(&tiled).unwrap_or_else(|d| panic!("{d:?}"));
    let mut w_plain = Worker::new(&plain, 2).unwrap();
    let mut w_tiled = Worker::new(&tiled, 2).unwrap();

    // A frame the size of one tile: the tiled path gives the untiled result.
    for (seed, blob) in [(300, None), (301, Some((30.0, 60.0)))] {
        let img = texture_sized(seed, 96, 96, blob);
        let layout = FrameLayout::packed(96, 96, PixelFormat::Rgb24);
        let (mut a, mut b) = (w_plain.new_inspection(), w_tiled.new_inspection());
        w_plain.process(img.as_raw(), &layout, &mut a).unwrap();
        let (sa, ma) = {
            let e = w_plain.anomaly_evidence().unwrap();
            (e.score, e.map.to_vec())
        };
        w_tiled.process(img.as_raw(), &layout, &mut b).unwrap();
        let e = w_tiled.anomaly_evidence().unwrap();
        assert_eq!((e.width, e.height), (96, 96));
        assert!((e.score - sa).abs() < 1e-6, "{} vs {sa}", e.score);
        let worst = ma
            .iter()
            .zip(e.map)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "maps differ by {worst}");
        assert_eq!(a.verdict, b.verdict);
        assert_eq!(a.defects.len(), b.defects.len());
        for (da, db) in a.defects.iter().zip(&b.defects) {
            assert_eq!(da.bbox, db.bbox);
        }
    }

    // A 2016x1536 (3 MP) frame, one 20 px blob: found at the right place, in frame pixels.
    // (The texture has an 8 px period and the 9 fitted images show only a few phases of
    // it; 2016 and 1536 put every 96 px tile 80 px from the last, a multiple of 8, so each
    // tile sees the pattern as fitted. At 2048 the step is 78 px and every other tile
    // meets phases the model never saw: a real, correct "anomaly" of this toy data.)
    let (fw, fh, bx, by) = (2016u32, 1536u32, 1500.0f32, 1000.0f32);
    let img = texture_sized(400, fw, fh, Some((bx, by)));
    let layout = FrameLayout::packed(fw, fh, PixelFormat::Rgb24);
    let mut out = w_tiled.new_inspection();
    w_tiled.process(img.as_raw(), &layout, &mut out).unwrap();
    let e = w_tiled.anomaly_evidence().unwrap();
    assert_eq!((e.width, e.height), (2016, 1536), "full-detail map");
    assert_eq!(out.verdict, Verdict::Ng);
    let best = out
        .defects
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .expect("a defect region");
    let [x, y, w, h] = best.bbox;
    assert!(
        x <= bx && bx <= x + w && y <= by && by <= y + h && w < 120.0 && h < 120.0,
        "defect box {:?} should hold ({bx}, {by}); all: {:?}",
        best.bbox,
        out.defects
    );
    for d in &out.defects {
        let (cx, cy) = (d.bbox[0] + d.bbox[2] / 2.0, d.bbox[1] + d.bbox[3] / 2.0);
        assert!(
            (cx - bx).abs() < 150.0 && (cy - by).abs() < 150.0,
            "spurious region {:?} far from the blob",
            d.bbox
        );
    }
    // The same frame without the blob is OK.
    let clean = texture_sized(400, fw, fh, None);
    w_tiled.process(clean.as_raw(), &layout, &mut out).unwrap();
    assert_eq!(out.verdict, Verdict::Ok, "defects: {:?}", out.defects);
}

#[test]
fn tile_keys_are_checked_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = fitted_scenario_with(
        tmp.path(),
        "s.toml",
        10,
        "tile = [96, 96]\ntile_overlap = 60",
    );
    let errs = scenario::check(&path).unwrap_err();
    let text = errs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("tile_overlap"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!("s.toml:{line}: `head.tile_overlap`"))
            && text.contains("less than half"),
        "{text}"
    );
}

/// `[preprocess]` without mean/std: the backbone's `preprocess` metadata (0.498/0.502)
/// applies, not a silent /255-only input.
#[test]
fn item_12_patchcore_without_mean_std_uses_the_backbone_normalisation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dir(&dir.join("good"), 2, false, 0);
    let path = fitted_scenario(dir, 2);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("mean = 0.498\n", "")
        .replace("std = 0.502\n", "");
    std::fs::write(&path, text).unwrap();
    let plan = lineside::fit::fit_plan(&path).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(plan.preprocess.mean, [0.498; 3]);
    assert_eq!(plan.preprocess.std, [0.502; 3]);
}
