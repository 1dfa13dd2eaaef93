//! Bad input meets a clear error, never a panic: a missing or wrong ONNX Runtime library,
//! a corrupt model, a corrupt image in a replay.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn lineside(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (i32, String, Output) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lineside"));
    cmd.current_dir(cwd).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap_or(-1), text, out)
}

#[test]
fn missing_onnx_runtime_says_what_to_run() {
    let (code, text, _) = lineside(
        &["run", "--no-progress", "scenarios/demo.toml"],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
        &common::root(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ONNX Runtime library not found"), "{text}");
    assert!(text.contains("scripts/setup.sh"), "{text}");
    assert!(text.contains("ORT_DYLIB_PATH"), "{text}");
}

#[test]
fn a_file_that_is_not_onnx_runtime_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library").unwrap();
    let (code, text, _) = lineside(
        &[
            "models",
            "inspect",
            "models/efficientnet-lite0/efficientnet_lite0.onnx",
        ],
        &[("ORT_DYLIB_PATH", fake.to_str().unwrap())],
        &common::root(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("could not load ONNX Runtime from"), "{text}");
}

#[test]
fn corrupt_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("broken.onnx");
    std::fs::write(&model, b"\x08\x07garbage that is not a protobuf model").unwrap();
    let (code, text, _) = lineside(
        &["models", "inspect", model.to_str().unwrap()],
        &[],
        &common::root(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("could not read model"), "{text}");
    assert!(text.contains("check it is an ONNX file"), "{text}");

    let scenario = common::scenario_copy(
        &common::root().join("scenarios/demo.toml"),
        dir.path(),
        |s| {
            s.replace(
                &common::root()
                    .join("models/efficientnet-lite0/efficientnet_lite0.onnx")
                    .display()
                    .to_string(),
                model.to_str().unwrap(),
            )
        },
    );
    let (code, text, _) = lineside(
        &["validate", scenario.to_str().unwrap()],
        &[],
        &common::root(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("demo.toml:") && text.contains("`model.path`: could not read model"),
        "{text}"
    );
}

#[test]
fn corrupt_image_becomes_an_error_record_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let photos = common::root().join("scenarios/samples/photos");
    std::fs::copy(photos.join("coffee.png"), frames.join("a_coffee.png")).unwrap();
    let good = std::fs::read(photos.join("chelsea.png")).unwrap();
    std::fs::write(frames.join("b_truncated.png"), &good[..good.len() / 3]).unwrap();
    std::fs::copy(photos.join("chelsea.png"), frames.join("c_chelsea.png")).unwrap();
    let out_dir = dir.path().join("out");
    let scenario = common::scenario_copy(
        &common::root().join("scenarios/demo.toml"),
        dir.path(),
        |s| {
            s.replace(&photos.display().to_string(), frames.to_str().unwrap())
                .replace(
                    &common::root().join("out/demo").display().to_string(),
                    out_dir.to_str().unwrap(),
                )
        },
    );
    let (code, text, _) = lineside(
        &["run", "--no-progress", scenario.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{text}");
    let log = std::fs::read_to_string(out_dir.join("defects.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["item"], "b_truncated.png");
    assert_eq!(records[1]["verdict"], "ERROR");
    assert!(
        records[1]["error"]
            .as_str()
            .unwrap()
            .contains("cannot decode image"),
        "{}",
        records[1]
    );
    assert_eq!(records[0]["verdict"], "OK");
    assert_eq!(records[2]["verdict"], "OK");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["errors"], 1);
    assert_eq!(summary["frames"], 3);
}

/// A model whose `.onnx.data` weights are missing: name that file, not "is it ONNX?".
#[test]
fn item_11_missing_external_data_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::copy(
        common::root().join("models/fixtures/anomalib_patchcore/model.onnx"),
        &model,
    )
    .unwrap();
    let (code, text, _) = lineside(
        &["models", "inspect", model.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("model.onnx.data, which does not exist"),
        "{text}"
    );
    assert!(text.contains("beside the model"), "{text}");
    assert!(!text.contains(".pt/.pth"), "{text}");
}

/// `models inspect` takes a path from the command line: no talk of scenario files. A
/// scenario's missing model still says where its relative paths start.
#[test]
fn item_11_missing_model_messages_fit_where_the_path_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text, _) = lineside(&["models", "inspect", "nope.onnx"], &[], dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("model file nope.onnx does not exist"),
        "{text}"
    );
    assert!(!text.contains("scenario"), "{text}");

    let scenario = common::scenario_copy(
        &common::root().join("scenarios/demo.toml"),
        dir.path(),
        |t| {
            t.lines()
                .map(|l| {
                    if l.starts_with("path = ") && l.ends_with(".onnx\"") {
                        "path = \"gone.onnx\"".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let (code, text) = common::validate_file(&scenario);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("relative to the scenario file's folder"),
        "{text}"
    );
}

/// `validate`'s one-line summary names what an anomaly, PatchCore or OCR head decides
/// with, not "0 classes".
#[test]
fn item_11_validate_summary_of_class_free_heads_has_no_class_count() {
    let (code, text, _) = lineside(
        &[
            "validate",
            "tests/fixtures/scenarios/anomalib_patchcore.toml",
        ],
        &[],
        &common::root(),
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("0 classes"), "{text}");
    assert!(text.contains("anomaly export"), "{text}");
    let (code, text, _) = lineside(
        &["validate", "scenarios/catalogue/29-food-label.toml"],
        &[],
        &common::root(),
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("0 classes"), "{text}");
    assert!(text.contains("text read by"), "{text}");
    let (code, text, _) = lineside(&["validate", "scenarios/demo.toml"], &[], &common::root());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1000 classes"), "{text}");
}

/// An output path that is a file: say so (and where), at validate and at run, instead of
/// "File exists (os error 17)".
#[test]
fn item_11_output_dir_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("out-file");
    std::fs::write(&blocker, b"").unwrap();
    let scenario = common::scenario_copy(
        &common::root().join("scenarios/demo.toml"),
        dir.path(),
        |t| {
            t.lines()
                .map(|l| {
                    if l.starts_with("dir = ") {
                        format!("dir = \"{}\"", blocker.display())
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let (code, text) = common::validate_file(&scenario);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is a file, not a folder"), "{text}");
    let (code, text, _) = lineside(
        &["run", "--no-progress", scenario.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("out-file is a file, not a folder"), "{text}");
    assert!(!text.contains("os error 17"), "{text}");
}
