//! The detect head against the post-processing of the project each model comes from:
//!
//! - the real YOLOv8n export in models/yolo-parts (`[1, 4+nc, N]`) against Ultralytics'
//!   `ultralytics.utils.nms.non_max_suppression` + `ops.scale_boxes` on Ultralytics' LetterBox
//!   (fixture tests/fixtures/yolo/reference.json, made by tools/reference/yolo_ref.py);
//! - the real YOLOv5n export in models/yolov5-parts (`[1, N, 5+nc]`, objectness × class score)
//!   against YOLOv5's own `utils.general.non_max_suppression` + `scale_boxes` on its `letterbox`,
//!   with detect.py's defaults (fixture tests/fixtures/yolov5/reference.json, made by
//!   tools/reference/yolov5_ref.py).
//!
//! Each model goes through lineside end to end (letterbox → ONNX Runtime → NMS → frame
//! coordinates) and must give the reference's boxes. The references need torch, so they are
//! committed fixtures tied to the model's sha256.

mod common;

use lineside::frame::{BufferPool, PixelBuf};
use lineside::heads::DetectConfig;
use lineside::heads::DetectLayout;
use lineside::pipeline::Worker;
use lineside::pool::Pool;
use lineside::scenario::{self, ScenarioPlan};
use lineside::source::{ImageFolder, Next, Source};
use serde_json::Value;

/// Scenario 10 with its head thresholds and model swapped, for another export of the parts model.
fn scenario10_with(dir: &std::path::Path, edit: impl Fn(String) -> String) -> ScenarioPlan {
    let src = common::root().join("scenarios/catalogue/10-screw-locking.toml");
    let f = common::scenario_copy(&src, dir, edit);
    scenario::check(&f).unwrap_or_else(|d| panic!("{d:?}"))
}

/// Scenario 10 (the YOLOv8n export) with the interpolation of the reference `variant`.
fn yolov8_plan(variant: &str) -> ScenarioPlan {
    let mut plan =
        scenario::check(&common::root().join("scenarios/catalogue/10-screw-locking.toml"))
            .unwrap_or_else(|d| panic!("{d:?}"));
    // The reference was letterboxed with cv2.INTER_LINEAR ("linear", what `predict` does)
    // or cv2.INTER_LINEAR_EXACT ("linear_exact"); lineside resamples the same way.
    plan.preprocess.interpolation = match variant {
        "linear_exact" => lineside::preprocess::Interpolation::LinearExact,
        _ => lineside::preprocess::Interpolation::Linear,
    };
    plan
}

/// Matches lineside's boxes to the reference `variant` of `fixture` (images in
/// tests/fixtures/yolo); returns (boxes, max px diff, max score diff).
fn compare(
    fixture: &str,
    plan: &ScenarioPlan,
    variant: &str,
    px_tol: f64,
    score_tol: f64,
) -> (usize, f64, f64) {
    let root = common::root();
    let fixture_path = root.join(fixture);
    let fixture: Value = serde_json::from_slice(&std::fs::read(&fixture_path).unwrap()).unwrap();
    assert_eq!(
        fixture["model_sha256"].as_str().unwrap(),
        plan.model.sha256,
        "{} was made for another model file: rerun its tools/reference script",
        fixture_path.display()
    );
    assert_eq!(&*plan.labels, ["screw", "hex"]);
    let mut worker = Worker::new(plan, 1).unwrap();
    let (mut max_px, mut max_score, mut boxes) = (0.0f64, 0.0f64, 0);
    for case in fixture["cases"].as_array().unwrap() {
        let image = case["image"].as_str().unwrap();
        let mut source = ImageFolder::open(&root.join("tests/fixtures/yolo").join(image), 1)
            .unwrap_or_else(|e| panic!("{image}: {e}"));
        let pool: BufferPool = Pool::new(1, || PixelBuf::with_capacity(source.max_frame_bytes()));
        let Next::Frame(frame) = source.next(0, &pool) else {
            panic!("{image}: no frame")
        };
        assert_eq!(frame.layout.width as u64, case["width"].as_u64().unwrap());
        let mut ins = worker.new_inspection();
        worker
            .process(frame.bytes(), &frame.layout, &mut ins)
            .unwrap();
        let refs = case[variant].as_array().unwrap();
        let conf = fixture["conf"].as_f64().unwrap();
        // A reference box within 1e-3 of the threshold may fall on either side of it.
        let marginal = |s: f64| (s - conf).abs() < score_tol;
        let mut used = vec![false; ins.defects.len()];
        for r in refs {
            let xyxy: Vec<f64> = r["xyxy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let class = r["class"].as_u64().unwrap() as usize;
            let score = r["score"].as_f64().unwrap();
            let best = ins
                .defects
                .iter()
                .enumerate()
                .filter(|(i, d)| !used[*i] && d.class == Some(class))
                .map(|(i, d)| {
                    let ours = [
                        d.bbox[0] as f64,
                        d.bbox[1] as f64,
                        (d.bbox[0] + d.bbox[2]) as f64,
                        (d.bbox[1] + d.bbox[3]) as f64,
                    ];
                    let px = ours
                        .iter()
                        .zip(&xyxy)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    (i, px, (d.score as f64 - score).abs())
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, px, ds)) if px <= px_tol && ds <= score_tol => {
                    used[i] = true;
                    max_px = max_px.max(px);
                    max_score = max_score.max(ds);
                    boxes += 1;
                }
                _ if marginal(score) => {}
                other => panic!(
                    "{variant} {image}: reference box {xyxy:?} class {class} score {score:.4} has no match within {px_tol} px / {score_tol} (closest: {other:?}); ours: {:?}",
                    ins.defects
                ),
            }
        }
        for (d, u) in ins.defects.iter().zip(&used) {
            assert!(
                *u || marginal(d.score as f64),
                "{image}: lineside found {d:?}, the reference did not"
            );
        }
        eprintln!(
            "{variant} {image}: {} boxes (reference {})",
            ins.defects.len(),
            refs.len()
        );
    }
    eprintln!("{variant}: {boxes} boxes matched; max |coord diff| {max_px:.1e} px, max |score diff| {max_score:.2e}");
    assert!(boxes >= 10, "too few boxes to say anything: {boxes}");
    (boxes, max_px, max_score)
}

const YOLOV8_FIXTURE: &str = "tests/fixtures/yolo/reference.json";

/// Against `model.predict` end to end: Ultralytics' LetterBox (cv2.INTER_LINEAR, which
/// lineside's `linear` reproduces bit for bit), NMS and scale_boxes: 1 px and 1e-3.
#[test]
fn yolo_export_matches_ultralytics_predict_end_to_end() {
    compare(YOLOV8_FIXTURE, &yolov8_plan("linear"), "linear", 1.0, 1e-3);
}

/// With `interpolation = "linear_exact"` (cv2.INTER_LINEAR_EXACT on the Python side) the
/// inputs differ by a level here and there; boxes and scores still agree to 1 px and 1e-3.
#[test]
fn yolo_export_matches_ultralytics_with_linear_exact() {
    compare(
        YOLOV8_FIXTURE,
        &yolov8_plan("linear_exact"),
        "linear_exact",
        1.0,
        1e-3,
    );
}

/// The real YOLOv5n export (`[1, 4032, 7]`: box, objectness, 2 class scores) against YOLOv5's
/// detect.py path: its letterbox (cv2.INTER_LINEAR, auto=False for a fixed-size export),
/// `non_max_suppression` (obj > conf, then obj × cls > conf, best class, class-aware NMS) and
/// `scale_boxes`, with detect.py's defaults conf 0.25, IoU 0.45, 1000 detections. The layout
/// is left to `auto`, which must find YOLOv5 from the shape. 1 px and 1e-3, as for YOLOv8.
#[test]
fn yolov5_export_matches_yolov5_detect_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let plan = scenario10_with(dir.path(), |t| {
        t.replace(
            "yolo-parts/yolo_parts.onnx",
            "yolov5-parts/yolov5n_parts.onnx",
        )
        .replace("iou_threshold = 0.7", "iou_threshold = 0.45")
        .replace("max_detections = 300", "max_detections = 1000")
        .replace("kind = \"detect\"", "kind = \"detect\"\nlayout = \"auto\"")
    });
    let Some(d) = plan.head_config::<DetectConfig>() else {
        panic!("not a detect plan: {:?}", plan.head)
    };
    assert_eq!(
        d.layout,
        DetectLayout::Yolov5,
        "layout auto must infer YOLOv5"
    );
    assert_eq!((d.classes, d.anchors), (2, 4032));
    assert_eq!(
        (d.conf_threshold, d.iou_threshold, d.max_detections),
        (0.25, 0.45, 1000)
    );
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(common::root().join("tests/fixtures/yolov5/reference.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&fixture["conf"], &fixture["iou"], &fixture["max_det"]),
        (&Value::from(0.25), &Value::from(0.45), &Value::from(1000))
    );
    compare(
        "tests/fixtures/yolov5/reference.json",
        &plan,
        "linear",
        1.0,
        1e-3,
    );
}

/// The held-out renders' ground truth (YOLO txt) against what the scenario decides.
#[test]
fn screw_demo_counts_the_screws_and_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::root().join("scenarios/catalogue/10-screw-locking.toml");
    let plan = scenario::check(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let records = common::run_to_log(&plan, &dir.path().join("out"));
    let samples = common::root().join("scenarios/samples/screws");
    let (mut ng, mut agree, mut n) = (0, 0, 0);
    for r in &records {
        let item = r["item"].as_str().unwrap();
        let truth = std::fs::read_to_string(samples.join(item).with_extension("txt")).unwrap();
        let count = |c: &str| truth.lines().filter(|l| l.starts_with(c)).count();
        let good = count("0 ") >= 3 && count("1 ") == 0;
        let failed: Vec<(&str, &str, &str)> = r["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule_kind"].as_str().unwrap(),
                    f["rule_name"].as_str().unwrap(),
                    f["detail"].as_str().unwrap(),
                )
            })
            .collect();
        let found = r["defects"].as_array().unwrap().len();
        eprintln!(
            "{item}: truth {} screws {} hex, found {found}, {} {failed:?}",
            count("0 "),
            count("1 "),
            r["verdict"]
        );
        if r["verdict"] == "NG" {
            ng += 1;
            assert!(!failed.is_empty(), "{item}");
            for (rule, name, detail) in &failed {
                assert_eq!(*rule, "count", "{item}");
                assert!(
                    (*name == "screws" && detail.starts_with("at least 3 `screw`"))
                        || (*name == "forbidden_classes[hex]"
                            && detail.starts_with("at most 0 `hex`")),
                    "{item}: {name} {detail}"
                );
            }
        }
        agree += usize::from((r["verdict"] == "OK") == good);
        n += 1;
    }
    assert!(n >= 8, "{n} records");
    assert!(
        ng > 0 && ng < n,
        "the demo should have both verdicts: {ng} NG of {n}"
    );
    assert!(
        agree >= n - 1,
        "verdict agrees with the renders' truth on {agree} of {n}"
    );
}

/// `lineside validate` on scenario 10 edited by `edit`; it must fail with a message.
fn validate_edited(edit: impl Fn(String) -> String, extra: Option<(&str, &str)>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    let src = root.join("scenarios/catalogue/10-screw-locking.toml");
    let models = format!("{}/models/", root.display());
    if let Some((name, text)) = extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let d = dir.path().display().to_string();
    let f = common::scenario_copy(&src, dir.path(), |t| {
        edit(t.replace("../../models/", &models)).replace("@DIR@", &d)
    });
    let (code, text) = common::validate_file(&f);
    assert_eq!(code, Some(1), "{text}");
    text
}

#[test]
fn validate_catches_bad_model_head_pairs() {
    // a classifier given to the detect head
    let text = validate_edited(
        |t| {
            t.replace(
                "yolo-parts/yolo_parts.onnx",
                "efficientnet-lite0/efficientnet_lite0.onnx",
            )
        },
        None,
    );
    assert!(
        text.contains("`head.kind`: the model's metadata says it is a `classify` export (task = \"classify\"); use head kind \"classify\""),
        "{text}"
    );
    // an OCR text detector given to the detect head
    let text = validate_edited(
        |t| {
            t.replace(
                "yolo-parts/yolo_parts.onnx",
                "pp-ocrv4/ch_PP-OCRv4_det_infer.onnx",
            )
        },
        None,
    );
    assert!(
        text.contains("it looks like a text detector (PP-OCR DB): use head kind \"ocr\""),
        "{text}"
    );
    // a labels file of the wrong length
    let text = validate_edited(
        |t| {
            t.replace(
                "yolo_parts.onnx\"",
                "yolo_parts.onnx\"\nlabels = \"@DIR@/labels.txt\"",
            )
        },
        Some(("labels.txt", "screw\nhex\nwasher\n")),
    );
    assert!(
        text.contains("`model.labels`: the labels file lists 3 class names but output `output0` [1, 6, 1344] scores 2 classes"),
        "{text}"
    );
    // bad rules
    let text = validate_edited(
        |t| {
            t.replace("class = \"screw\"", "class = \"srew\"")
                .replace("[\"hex\"]", "[\"bolt\"]")
                .replace("iou_threshold = 0.7", "iou_threshold = 7")
        },
        None,
    );
    for want in [
        "`rules.count[0].class`: `srew` is not a class of this model; its classes are [\"screw\", \"hex\"]",
        "`rules.forbidden_classes`: `bolt` is not a class",
        "`head.iou_threshold`: must be a number in [0, 1]",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

/// A YOLO export given to the ocr head names the head it belongs to: from Ultralytics'
/// `task` metadata, or from the output shape where there is none (YOLOv5).
#[test]
fn yolo_file_given_to_the_ocr_head_is_caught() {
    let root = common::root();
    let src = root.join("scenarios/catalogue/29-food-label.toml");
    let models = format!("{}/models/", root.display());
    for (model, want) in [
        (
            "yolo-parts/yolo_parts.onnx",
            "`head.kind`: the model's metadata says it is a `detect` export (task = \"detect\"); use head kind \"detect\"",
        ),
        (
            "yolov5-parts/yolov5n_parts.onnx",
            "it looks like an object detector (YOLO): use head kind \"detect\"",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = common::scenario_copy(&src, dir.path(), |t| {
            t.replace("../../models/", &models)
                .replace("pp-ocrv4/ch_PP-OCRv4_det_infer.onnx", model)
        });
        let (code, text) = common::validate_file(&f);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains(want), "{model}: missing {want:?} in\n{text}");
    }
}
