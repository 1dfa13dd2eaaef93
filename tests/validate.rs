//! `lineside validate` names file:line for each problem and exits 1; a good file exits 0.

mod common;

use std::process::Command;

fn validate(files: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .current_dir(common::root())
        .arg("validate")
        .args(files)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn bundled_scenarios_are_valid() {
    let (code, text) = validate(&["scenarios"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok: scenarios/demo.toml"), "{text}");
}

#[test]
fn unknown_key_and_wrong_type_are_both_reported_with_lines() {
    let f = "tests/fixtures/invalid/unknown_key_and_wrong_type.toml";
    let (code, text) = validate(&[f]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "{f}:6: `source.pth`: unknown field `pth`, valid keys here are `kind`, `path`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{f}:12: `preprocess.mean`: must be a number or a list of numbers"
        )),
        "{text}"
    );
}

#[test]
fn missing_model_is_reported_at_the_path_key() {
    let f = "tests/fixtures/invalid/missing_model.toml";
    let (code, text) = validate(&[f]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("{f}:9: `model.path`: model file")),
        "{text}"
    );
    assert!(text.contains("no-such-model.onnx does not exist"), "{text}");
}

#[test]
fn a_model_whose_input_does_not_fit_names_what_would() {
    let f = "tests/fixtures/invalid/input_does_not_fit.toml";
    let (code, text) = validate(&[f]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("{f}:12: `preprocess.color`")),
        "{text}"
    );
    assert!(text.contains("set color to \"rgb\" or \"bgr\""), "{text}");
    assert!(
        text.contains(&format!("{f}:13: `preprocess.size`: is [320, 320]")),
        "{text}"
    );
    assert!(text.contains("set it to [224, 224]"), "{text}");
}

#[test]
fn a_head_that_does_not_fit_the_model_is_caught() {
    let f = "tests/fixtures/invalid/wrong_head.toml";
    let (code, text) = validate(&[f]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "{f}:13: `head.kind`: the model's metadata says it is a `classify` export"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{f}:16: `rules.ok_classes`: applies to head kinds \"classify\" and \"examples\" only"
        )),
        "{text}"
    );
}

#[test]
fn all_files_are_checked_even_when_one_fails() {
    let (code, text) = validate(&[
        "tests/fixtures/invalid/missing_model.toml",
        "scenarios/demo.toml",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("ok: scenarios/demo.toml"), "{text}");
    assert!(
        text.contains("1 of 2 scenario file(s) have errors"),
        "{text}"
    );
}
