//! Scenario 29 (food-label date code) through the whole pipeline, and `lineside validate`
//! on bad OCR scenario files: a model of the wrong kind for either stage, bad rules.

mod common;

use serde_json::Value;

#[test]
fn food_label_demo_rejects_the_stale_dates_and_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::root().join("scenarios/catalogue/29-food-label.toml");
    let plan = lineside::scenario::check(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let records = common::run_to_log(&plan, &dir.path().join("out"));
    // The renders' ground truth: best-before dates counted from 2026-03-01.
    let truth_file: Value = serde_json::from_slice(
        &std::fs::read(common::root().join("scenarios/samples/labels/truth.json")).unwrap(),
    )
    .unwrap();
    let truth = &truth_file["images"];
    assert_eq!(records.len(), truth.as_object().unwrap().len());
    for r in &records {
        let item = r["item"].as_str().unwrap();
        let date = truth[item]["texts"][1]
            .as_str()
            .unwrap()
            .trim_start_matches("BEST BEFORE ");
        let stale = date < "2026-03-15";
        // The renderer's own verdict (a date already past) agrees with the rule's window.
        assert_eq!(truth[item]["verdict"] == "NG", stale, "{item}");
        let failed: Vec<&str> = r["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["detail"].as_str().unwrap())
            .collect();
        eprintln!("{item} {date} {} {failed:?}", r["verdict"]);
        if stale {
            assert_eq!(r["verdict"], "NG", "{item}");
            assert_eq!(failed.len(), 1, "{item}: {failed:?}");
            assert!(failed[0].starts_with("a date"), "{item}: {failed:?}");
            assert_eq!(r["failed"][0]["rule_kind"], "text");
            assert_eq!(r["failed"][0]["rule_name"], "best-before");
        } else {
            assert_eq!(r["verdict"], "OK", "{item}: {failed:?}");
        }
        let texts: Vec<&str> = r["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["text"].as_str().unwrap())
            .collect();
        assert!(texts.iter().any(|t| t.contains(date)), "{item}: {texts:?}");
    }
}

/// `lineside validate` on scenario 29 edited by `edit`; it must fail.
fn validate_edited(edit: impl Fn(String) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    let src = root.join("scenarios/catalogue/29-food-label.toml");
    let models = format!("{}/models/", root.display());
    let f = common::scenario_copy(&src, dir.path(), |t| {
        edit(t.replace("../../models/", &models))
    });
    let (code, text) = common::validate_file(&f);
    assert_eq!(code, Some(1), "{text}");
    text
}

#[test]
fn validate_catches_wrong_models_and_bad_rules() {
    let text = validate_edited(|t| {
        t.replace(
            "pp-ocrv4/ch_PP-OCRv4_det_infer.onnx",
            "efficientnet-lite0/efficientnet_lite0.onnx",
        )
    });
    // the classifier says what it is in its `task` metadata
    assert!(
        text.contains("`head.kind`: the model's metadata says it is a `classify` export"),
        "{text}"
    );
    let text = validate_edited(|t| {
        t.replace(
            "pp-ocrv4/ch_PP-OCRv4_rec_infer.onnx",
            "pp-ocrv4/ch_PP-OCRv4_det_infer.onnx",
        )
    });
    assert!(
        text.contains("`head.recognizer`: its outputs are")
            && text.contains("needs a PP-OCR recognition model"),
        "{text}"
    );
    let text = validate_edited(|t| {
        t.replace("^LOTL24", "^LOT(L24")
            .replace("%Y-%m-%d", "%Y-%m-%H")
            .replace("[960, 480]", "[1000, 480]")
            .replace("today = \"2026-03-01\"", "today = \"2026-3-1\"")
    });
    for want in [
        "`rules.text[1].pattern`: is not a valid regular expression",
        "`rules.text[0].date_format`: `%Y-%m-%H`: `%H` is not supported",
        "`preprocess.size`: is 1000x480; a PP-OCR detector needs both sides to be multiples of 32 (e.g. [992, 480])",
        "`rules.today`: `2026-3-1` is not a date",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let text = validate_edited(|t| t.replace("recognizer = ", "# recognizer = "));
    assert!(text.contains("`head.recognizer`: missing"), "{text}");
}
