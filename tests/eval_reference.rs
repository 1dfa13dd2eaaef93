//! `lineside eval` for every head (issue 13): the catalogue scenarios 3, 10, 26 and 29 on
//! their sample frames, checked against independent references on the same predictions:
//! pycocotools' COCOeval for detection AP per class, a plain edit distance for OCR.

mod common;

use std::process::Command;

use serde_json::Value;

/// Runs `lineside eval SCENARIO --json` and the reference on its report.
fn eval_and_reference(scenario: &str) -> (Value, Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["eval", "--no-progress", "--threads", "1", "--json"])
        .arg(&json)
        .arg(common::root().join("scenarios").join(scenario))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let reference = Command::new(common::python())
        .arg(common::root().join("tools/reference/coco_ref.py"))
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    (report, serde_json::from_slice(&reference.stdout).unwrap())
}

/// Per-class AP50 and AP50-95 agree with pycocotools to 1e-3 (class names map to the
/// reference's class indices through the scenario's labels).
fn check_detection(scenario: &str, min_classes: usize) -> Value {
    let (report, reference) = eval_and_reference(scenario);
    let plan = lineside::scenario::check(&common::root().join("scenarios").join(scenario))
        .unwrap_or_else(|d| panic!("{d:?}"));
    let per_class = report["detection"]["per_class"].as_object().unwrap();
    let theirs = reference["detection"].as_object().unwrap();
    assert!(per_class.len() >= min_classes, "{per_class:?}");
    assert_eq!(per_class.len(), theirs.len(), "{per_class:?} vs {theirs:?}");
    let mut worst = 0f64;
    for (name, ours) in per_class {
        let index = plan.labels.iter().position(|l| l == name).unwrap();
        let t = &theirs[&index.to_string()];
        for key in ["ap50", "ap50_95"] {
            let (a, b) = (ours[key].as_f64().unwrap(), t[key].as_f64().unwrap());
            worst = worst.max((a - b).abs());
            assert!((a - b).abs() <= 1e-3, "{scenario} {name} {key}: {a} vs {b}");
        }
    }
    eprintln!("{scenario}: largest difference from pycocotools {worst:e}");
    report
}

#[test]
fn detection_ap_matches_pycocotools_on_screw_locking() {
    let r = check_detection("catalogue/10-screw-locking.toml", 2);
    assert_eq!(r["images"], 8);
    assert_eq!(r["detection"]["per_class"]["screw"]["instances"], 25);
}

#[test]
fn instance_segmentation_ap_and_verdicts_on_kit_completeness() {
    let r = check_detection("catalogue/26-kit-completeness.toml", 4);
    // truth.json's verdicts: all eight are decided as expected.
    assert_eq!(r["verdicts"]["accuracy"], 1.0, "{}", r["verdicts"]);
}

#[test]
fn class_map_regions_are_scored_like_boxes_on_cover_glass() {
    let r = check_detection("catalogue/03-cover-glass.toml", 2);
    assert_eq!(r["verdicts"]["accuracy"], 1.0, "{}", r["verdicts"]);
    // Scratches break into several regions: precision is honest about it.
    let scratch = &r["detection"]["per_class"]["scratch"];
    assert!(
        scratch["detections"].as_u64() > scratch["instances"].as_u64(),
        "{scratch}"
    );
}

#[test]
fn ocr_character_accuracy_matches_a_plain_edit_distance_on_food_labels() {
    let (report, reference) = eval_and_reference("catalogue/29-food-label.toml");
    let (ours, theirs) = (&report["text"], &reference["text"]);
    assert_eq!(ours["chars"], theirs["chars"]);
    assert_eq!(ours["char_errors"], theirs["char_errors"]);
    assert!(ours["chars"].as_u64().unwrap() > 300, "{ours}");
    assert_eq!(ours["lines"], 32);
    // The date-code rules decide every label as its renderer meant (two already past).
    let v = &report["verdicts"];
    assert_eq!(v["accuracy"], 1.0, "{v}");
    assert_eq!(v["confusion"]["tp"], 2, "{v}");
}

#[test]
fn verdict_confusion_for_classify_and_count_rules() {
    // The demo station (classify): its verdicts against what each photo shows.
    let (report, _) = eval_and_reference("demo.toml");
    let v = &report["verdicts"];
    assert_eq!(v["accuracy"], 1.0, "{v}");
    assert_eq!(v["confusion"]["tn"], 2, "{v}");
    // Screw plates: truth.json gives the verdicts, the YOLO labels the boxes.
    let r = check_detection("catalogue/10-screw-locking.toml", 2);
    assert_eq!(r["verdicts"]["accuracy"], 1.0, "{}", r["verdicts"]);
}

#[test]
fn eval_says_what_to_do_without_truth() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::root().join("scenarios/samples/photos/coffee.png"),
        dir.path().join("coffee.png"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["eval", "--no-progress", "--data"])
        .arg(dir.path())
        .arg(common::root().join("scenarios/demo.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("truth.json") && text.contains("YOLO labels"),
        "{text}"
    );
}
