//! The segment head against the references:
//! - class maps: models/glass-seg (a small U-Net, per-pixel logits) through lineside vs
//!   tools/reference/seg_ref.py (onnxruntime + numpy softmax + OpenCV connected components),
//!   run live in the reference environment;
//! - Ultralytics segmentation exports: models/yolo-kit-seg (YOLOv8n-seg) vs Ultralytics'
//!   own `non_max_suppression` + `process_mask` + `scale_boxes`, a committed fixture
//!   (tools/reference/yolo_seg_ref.py; Ultralytics needs torch) tied to the model's sha256.

mod common;

use lineside::frame::{FrameLayout, PixelFormat};
use lineside::heads::SegmentConfig;
use lineside::pipeline::Worker;
use lineside::scenario::{self, ScenarioPlan};
use lineside::verdict::Inspection;
use serde_json::Value;

fn plan(scenario: &str) -> ScenarioPlan {
    scenario::check(&common::root().join("scenarios").join(scenario))
        .unwrap_or_else(|d| panic!("{d:?}"))
}

fn inspect(worker: &mut Worker, png: &std::path::Path) -> (Inspection, u32, u32) {
    let img = image::open(png).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
    let mut ins = worker.new_inspection();
    worker.process(img.as_raw(), &layout, &mut ins).unwrap();
    (ins, w, h)
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn class_map_regions_match_the_python_reference() {
    let root = common::root();
    let mut plan = plan("catalogue/03-cover-glass.toml");
    let Some(cfg) = plan.head_config_mut::<SegmentConfig>() else {
        panic!("scenario 3 is a segment scenario")
    };
    cfg.min_area_px = 0.0; // the reference lists every region
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference.json");
    let fixtures = root.join("scenarios/samples/glass");
    let mut frames: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    frames.sort();
    assert!(frames.len() >= 8);
    let model = root.join("models/glass-seg/glass_seg.onnx");
    let mut args = vec![model.as_path(), out.as_path()];
    args.extend(frames.iter().map(|p| p.as_path()));
    common::run_python("seg_ref.py", &args);
    let reference: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        reference["model_sha256"].as_str().unwrap(),
        plan.model.sha256
    );

    let mut worker = Worker::new(&plan, 1).unwrap();
    let (mut regions, mut max_box, mut max_score) = (0, 0.0f64, 0.0f64);
    for (case, frame) in reference["cases"].as_array().unwrap().iter().zip(&frames) {
        let (ins, w, h) = inspect(&mut worker, frame);
        let refs = case["regions"].as_array().unwrap();
        let name = frame.file_name().unwrap().to_string_lossy();
        assert_eq!(ins.defects.len(), refs.len(), "{name}: {:?}", ins.defects);
        let (sx, sy) = (w as f64 / 256.0, h as f64 / 256.0);
        for (d, r) in ins.defects.iter().zip(refs) {
            assert_eq!(
                d.class,
                Some(r["class"].as_u64().unwrap() as usize),
                "{name}"
            );
            let b = f64s(&r["box_frame"]);
            for (ours, theirs) in d.bbox.iter().zip(&b) {
                max_box = max_box.max((*ours as f64 - theirs).abs());
            }
            let area = r["area"].as_f64().unwrap() * sx * sy;
            assert!(
                (d.area_px as f64 - area).abs() < 1e-3,
                "{name}: area {} vs {area}",
                d.area_px
            );
            max_score = max_score.max((d.score as f64 - r["score"].as_f64().unwrap()).abs());
            regions += 1;
        }
    }
    eprintln!(
        "class map: {regions} regions on {} frames, identical classes and areas; max box difference {max_box:.2e} px, max score difference {max_score:.2e}",
        frames.len()
    );
    assert!(regions > 0, "the fixture frames hold defects");
    assert!(max_box < 1e-3 && max_score < 1e-4);
}

#[test]
fn yolo_seg_export_matches_ultralytics_masks() {
    let root = common::root();
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/fixtures/yolo-seg/reference.json")).unwrap(),
    )
    .unwrap();
    let mut plan = plan("catalogue/26-kit-completeness.toml");
    assert_eq!(
        fixture["model_sha256"].as_str().unwrap(),
        plan.model.sha256,
        "reference.json was made for another model file: rerun tools/reference/yolo_seg_ref.py"
    );
    let Some(cfg) = plan.head_config_mut::<SegmentConfig>() else {
        panic!("scenario 26 is a segment scenario")
    };
    cfg.min_area_px = 0.0;
    let input = fixture["input"][3].as_f64().unwrap();
    let mut worker = Worker::new(&plan, 1).unwrap();
    let (mut n, mut max_px, mut max_score, mut max_mask) = (0, 0.0f64, 0.0f64, 0.0f64);
    for case in fixture["cases"].as_array().unwrap() {
        let image = case["image"].as_str().unwrap();
        let (ins, w, h) = inspect(
            &mut worker,
            &root.join("tests/fixtures/yolo-seg").join(image),
        );
        let refs = case["detections"].as_array().unwrap();
        assert_eq!(ins.defects.len(), refs.len(), "{image}: {:?}", ins.defects);
        // frame pixels per input pixel (letterbox: one scale)
        let gain = (w as f64 / input).max(h as f64 / input);
        for r in refs {
            let xyxy = f64s(&r["xyxy_frame"]);
            let class = r["class"].as_u64().unwrap() as usize;
            let d = ins
                .defects
                .iter()
                .filter(|d| d.class == Some(class))
                .min_by(|a, b| {
                    let dist = |d: &&lineside::verdict::Defect| {
                        (d.bbox[0] as f64 - xyxy[0]).abs() + (d.bbox[1] as f64 - xyxy[1]).abs()
                    };
                    dist(a).total_cmp(&dist(b))
                })
                .unwrap_or_else(|| panic!("{image}: no {class} for {r}"));
            let ours = [
                d.bbox[0] as f64,
                d.bbox[1] as f64,
                (d.bbox[0] + d.bbox[2]) as f64,
                (d.bbox[1] + d.bbox[3]) as f64,
            ];
            for k in 0..4 {
                max_px = max_px.max((ours[k] - xyxy[k]).abs());
            }
            max_score = max_score.max((d.score as f64 - r["score"].as_f64().unwrap()).abs());
            let pixels = d.area_px as f64 / (gain * gain);
            let want = r["mask_pixels"].as_f64().unwrap();
            max_mask = max_mask.max((pixels - want).abs() / want);
            n += 1;
        }
    }
    eprintln!(
        "yolo-seg: {n} masks; max box difference {max_px:.2e} px, max score difference {max_score:.2e}, max mask area difference {:.3}%",
        max_mask * 100.0
    );
    assert!(n > 0);
    assert!(
        max_px < 1.0 && max_score < 1e-3,
        "boxes {max_px} px, scores {max_score}"
    );
    assert!(
        max_mask < 0.005,
        "mask areas differ by {:.3}%",
        max_mask * 100.0
    );
}

/// One defect-log record: item, verdict, and the failed rules as (rule, detail).
type Record = (String, String, Vec<(String, String)>);

/// Runs a scenario through `lineside run`'s runner and reads back its defect log.
fn run_demo(scenario: &str) -> Vec<Record> {
    let dir = tempfile::tempdir().unwrap();
    common::run_to_log(&plan(scenario), &dir.path().join("out"))
        .into_iter()
        .map(|r| {
            let failed = r["failed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap().to_string();
                    // As schema 1 wrote it: the rule's name leading the detail.
                    (
                        s("rule_kind"),
                        format!("`{}`: {}", s("rule_name"), s("detail")),
                    )
                })
                .collect();
            (
                r["item"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
                failed,
            )
        })
        .collect()
}

#[test]
fn kit_demo_finds_every_incomplete_kit_and_names_the_rule() {
    let truth: Value = serde_json::from_slice(
        &std::fs::read(common::root().join("scenarios/samples/kits/truth.json")).unwrap(),
    )
    .unwrap();
    let records = run_demo("catalogue/26-kit-completeness.toml");
    assert_eq!(records.len(), truth["images"].as_object().unwrap().len());
    for (item, verdict, failed) in &records {
        let t = &truth["images"][item.as_str()];
        eprintln!(
            "{item}: {verdict} (truth {}: {}) {failed:?}",
            t["verdict"], t["faults"]
        );
        assert_eq!(
            verdict.to_lowercase(),
            t["verdict"].as_str().unwrap(),
            "{item}: {failed:?}"
        );
        for (rule, detail) in failed {
            assert_eq!(rule, "count");
            // the detail names the compartment rule: "`top-left: screw`: exactly 1 `screw` ..."
            assert!(
                detail.starts_with('`') && detail.contains("`: "),
                "{detail}"
            );
        }
        // each fault's compartment ("bottom-middle: empty compartment, ...") has a failed rule
        for fault in t["faults"].as_array().unwrap() {
            let zone = fault.as_str().unwrap().split(':').next().unwrap();
            let zone = if zone.starts_with("label") {
                "label"
            } else {
                zone
            };
            assert!(
                failed
                    .iter()
                    .any(|(_, d)| d.starts_with(&format!("`{zone}"))),
                "{item}: no failed rule names {zone}: {failed:?}"
            );
        }
        if verdict == "NG" {
            assert!(!failed.is_empty());
        }
    }
}

#[test]
fn glass_demo_rejects_every_scratched_or_dirty_frame_and_names_the_rule() {
    let truth: Value = serde_json::from_slice(
        &std::fs::read(common::root().join("scenarios/samples/glass/truth.json")).unwrap(),
    )
    .unwrap();
    let records = run_demo("catalogue/03-cover-glass.toml");
    assert_eq!(records.len(), truth["frames"].as_object().unwrap().len());
    for (item, verdict, failed) in &records {
        let t = &truth["frames"][item.as_str()];
        eprintln!("{item}: {verdict} (truth {}) {failed:?}", t["verdict"]);
        assert_eq!(
            verdict,
            t["verdict"].as_str().unwrap(),
            "{item}: {failed:?}"
        );
        // every defect class in the frame has its rule in the record, and nothing else
        let mut want: Vec<String> = t["defects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("`no {}`", d["name"].as_str().unwrap()))
            .collect();
        want.sort();
        want.dedup();
        let mut got: Vec<String> = failed
            .iter()
            .map(|(rule, d)| {
                assert_eq!(rule, "count");
                d.split(':').next().unwrap().to_string()
            })
            .collect();
        got.sort();
        assert_eq!(got, want, "{item}");
    }
}

/// `lineside validate` on a scenario edited by `edit` must fail and say `wants`.
fn validate_says(scenario: &str, edit: impl Fn(String) -> String, wants: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("labels.txt"), "background\nscratch\n").unwrap();
    let src = common::root().join("scenarios").join(scenario);
    let file = common::scenario_copy(&src, dir.path(), |t| {
        edit(t).replace("@DIR@", &dir.path().display().to_string())
    });
    let (code, text) = common::validate_file(&file);
    assert_eq!(code, Some(1), "{text}");
    for want in wants {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn validate_catches_bad_segment_model_head_pairs() {
    // a segmentation export on the detect head, and detectors on the segment head: by
    // Ultralytics' `task` metadata, or by the output shapes where there is none (YOLOv5)
    validate_says(
        "catalogue/26-kit-completeness.toml",
        |t| t.replace("kind = \"segment\"", "kind = \"detect\""),
        &["`head.kind`: the model's metadata says it is a `segment` export (task = \"segment\"); use head kind \"segment\""],
    );
    let other_model =
        |to: &'static str| move |t: String| t.replace("yolo-kit-seg/yolo_kit_seg.onnx", to);
    validate_says(
        "catalogue/26-kit-completeness.toml",
        other_model("yolo-parts/yolo_parts.onnx"),
        &["it is a `detect` export (task = \"detect\"); use head kind \"detect\""],
    );
    validate_says(
        "catalogue/26-kit-completeness.toml",
        other_model("yolov5-parts/yolov5n_parts.onnx"),
        &[
            "the segment head needs a per-pixel class map",
            "it looks like a detector: use head kind \"detect\"",
        ],
    );
    validate_says(
        "catalogue/26-kit-completeness.toml",
        other_model("efficientnet-lite0/efficientnet_lite0.onnx"),
        &["it is a `classify` export (task = \"classify\"); use head kind \"classify\""],
    );
    // a class list of the wrong length, and settings that do not fit a class map
    validate_says(
        "catalogue/03-cover-glass.toml",
        |t| {
            t.replace(
                "glass_seg.onnx\"",
                "glass_seg.onnx\"\nlabels = \"@DIR@/labels.txt\"",
            )
        },
        &["`model.labels`: the labels file lists 2 class names but output `logits` [1, 3, 256, 256] has 3 class channels"],
    );
    validate_says(
        "catalogue/03-cover-glass.toml",
        |t| {
            t.replace("background = \"background\"", "background = \"bg\"\nconf_threshold = 0.3\nmask_threshold = 0.4")
                .replace("class = \"dirt\"", "class = \"dust\"")
        },
        &[
            "`head.background`: `bg` is not a class of this model; its classes are [\"background\", \"scratch\", \"dirt\"]",
            "`head.conf_threshold`: applies to Ultralytics segmentation exports",
            "`head.mask_threshold`: applies to one-channel maps",
            "`rules.count[1].class`: `dust` is not a class",
        ],
    );
}

/// A 2x2 mosaic of glass frames inspected as tiles finds each frame's regions (moved to its
/// quadrant) and nothing at the seams.
#[test]
fn tiled_class_map_finds_each_frames_regions() {
    let root = common::root();
    let plan = plan("catalogue/03-cover-glass.toml");
    let mut tiled = plan.clone();
    let Some(cfg) = tiled.head_config_mut::<SegmentConfig>() else {
        panic!("scenario 3 is a segment scenario")
    };
    cfg.tile = Some(lineside::patchcore::TileSpec {
        width: 512,
        height: 512,
        overlap: 64,
    });
    let mut whole = Worker::new(&plan, 1).unwrap();
    let mut tiler = Worker::new(&tiled, 1).unwrap();
    let frames = [1, 3, 5, 7];
    let mut mosaic = vec![0u8; 1024 * 1024 * 3];
    let mut expected = Vec::new();
    for (q, i) in frames.iter().enumerate() {
        let path = root.join(format!("scenarios/samples/glass/glass_{i}.png"));
        let rgb = image::open(&path).unwrap().to_rgb8().into_raw();
        let (ox, oy) = ((q % 2) * 512, (q / 2) * 512);
        for y in 0..512 {
            let dst = ((oy + y) * 1024 + ox) * 3;
            mosaic[dst..dst + 512 * 3].copy_from_slice(&rgb[y * 512 * 3..(y + 1) * 512 * 3]);
        }
        for mut d in inspect(&mut whole, &path).0.defects {
            d.bbox[0] += ox as f32;
            d.bbox[1] += oy as f32;
            expected.push(d);
        }
    }
    let layout = FrameLayout::packed(1024, 1024, PixelFormat::Rgb24);
    let mut got = tiler.new_inspection();
    tiler.process(&mosaic, &layout, &mut got).unwrap();
    eprintln!(
        "tiled class map: {} regions expected, {} found",
        expected.len(),
        got.defects.len()
    );
    assert!(expected.len() >= 4);
    let mut unmatched: Vec<_> = got.defects.iter().collect();
    for e in &expected {
        let at = unmatched
            .iter()
            .position(|g| {
                g.class == e.class && (0..4).all(|k| (g.bbox[k] - e.bbox[k]).abs() <= 2.0)
            })
            .unwrap_or_else(|| panic!("{e:?} not found in the tiled mosaic: {:?}", got.defects));
        unmatched.remove(at);
    }
    assert!(unmatched.is_empty(), "regions at the seams: {unmatched:?}");
}
