//! The INT8 models (`tools/models/quantize_int8.py`, ONNX Runtime static QDQ
//! quantization) run through lineside unchanged and decide as their float originals: the
//! screw plates get the same verdicts and boxes, the demo the same verdicts and the same
//! top-1 wherever the float model is decided; each file is the one its card names.
//! Accuracy on the held-out sets and the speed-up: scripts/int8-report.sh (figures in the
//! cards).

mod common;

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

const INT8: [&str; 3] = [
    "models/efficientnet-lite0/efficientnet_lite0_int8.onnx",
    "models/efficientnet-lite0/efficientnet_lite0_features_int8.onnx",
    "models/yolo-parts/yolo_parts_int8.onnx",
];

#[test]
fn every_int8_model_is_the_file_its_card_names() {
    for rel in INT8 {
        let path = common::root().join(rel);
        let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        let card = std::fs::read_to_string(path.parent().unwrap().join("README.md")).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let named: Vec<&str> = card.lines().filter(|l| l.contains(name)).collect();
        assert!(
            named.iter().any(|l| l.contains(&sha)),
            "{rel} is {sha}; its card's lines naming it: {named:#?}"
        );
    }
}

/// Runs `scenario` with its model swapped for `model` (relative to the repo) into `out`.
fn run_with(scenario: &str, from: &str, to: &str, dir: &Path, tag: &str) -> Vec<Value> {
    let sub = dir.join(tag);
    std::fs::create_dir_all(&sub).unwrap();
    let file = common::scenario_copy(&common::root().join(scenario), &sub, |t| {
        t.replace(from, to)
    });
    let plan = lineside::scenario::check(&file).unwrap_or_else(|e| panic!("{e:?}"));
    common::run_to_log(&plan, &sub.join("out"))
}

fn iou(a: &[f64], b: &[f64]) -> f64 {
    let (ax1, ay1, bx1, by1) = (a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]);
    let w = (ax1.min(bx1) - a[0].max(b[0])).max(0.0);
    let h = (ay1.min(by1) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

fn boxes(r: &Value) -> Vec<(String, f64, Vec<f64>)> {
    r["defects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let b = d["box"].as_array().unwrap();
                    (
                        d["class"].as_str().unwrap().to_string(),
                        d["score"].as_f64().unwrap(),
                        b.iter().map(|v| v.as_f64().unwrap()).collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_int8_detector_decides_the_screw_plates_as_the_float_one() {
    let dir = tempfile::tempdir().unwrap();
    let sc = "scenarios/catalogue/10-screw-locking.toml";
    let float = run_with(
        sc,
        "yolo_parts.onnx",
        "yolo_parts.onnx",
        dir.path(),
        "float",
    );
    let int8 = run_with(
        sc,
        "yolo_parts.onnx",
        "yolo_parts_int8.onnx",
        dir.path(),
        "int8",
    );
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("scenarios/samples/screws/truth.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(float.len(), 8);
    assert_eq!(int8.len(), 8);
    let mut worst = 1.0f64;
    for (f, q) in float.iter().zip(&int8) {
        let item = f["item"].as_str().unwrap();
        assert_eq!(q["item"], f["item"]);
        assert_eq!(q["verdict"], f["verdict"], "{item}");
        assert_eq!(q["verdict"], truth["images"][item]["verdict"], "{item}");
        // Every part the float model is sure of (score >= 0.5), INT8 finds in the same
        // place with the same class: a match as AP50 counts one (IoU >= 0.5; INT8 boxes
        // sit a few pixels off, the worst measured 0.71).
        let qb = boxes(q);
        for (class, score, b) in boxes(f).into_iter().filter(|x| x.1 >= 0.5) {
            let best = qb
                .iter()
                .filter(|x| x.0 == class)
                .map(|x| iou(&x.2, &b))
                .fold(0.0, f64::max);
            assert!(
                best >= 0.5,
                "{item}: {class} ({score:.2}) at {b:?}: best INT8 IoU {best:.2}"
            );
            worst = worst.min(best);
        }
    }
    println!("INT8 vs float boxes on the screw plates: worst IoU {worst:.3}");
}

#[test]
fn the_int8_classifier_keeps_the_demo_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let sc = "scenarios/demo.toml";
    let to = "efficientnet_lite0_int8.onnx\"";
    let float = run_with(
        sc,
        "efficientnet_lite0.onnx\"",
        "efficientnet_lite0.onnx\"",
        dir.path(),
        "f",
    );
    let int8 = run_with(sc, "efficientnet_lite0.onnx\"", to, dir.path(), "q");
    assert_eq!(float.len(), 7);
    let mut decided = 0;
    for (f, q) in float.iter().zip(&int8) {
        let item = f["item"].as_str().unwrap();
        assert_eq!(q["verdict"], f["verdict"], "{item}");
        let c = |r: &Value, k: usize, key: &str| r["classes"][k][key].as_f64().unwrap();
        // Where the float model is decided (top-1 leads by 0.1), INT8 picks the same class.
        if c(f, 0, "score") - c(f, 1, "score") >= 0.1 {
            decided += 1;
            assert_eq!(q["classes"][0]["index"], f["classes"][0]["index"], "{item}");
        }
    }
    assert!(decided >= 2, "the demo has decided photos: {decided}");
}
