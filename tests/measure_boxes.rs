//! `[[rules.measure]]` on a detect head's boxes and a segment head's regions, through the
//! real models (ONNX Runtime): YOLOv8n on the rendered screw plates and YOLOv8n-seg on the
//! rendered kit trays, whose render labels give every part's true box. Sizes, distances
//! and angles come within the detector's accuracy of the truth, millimetres are exactly
//! pixels times the pixel size, limits are enforced with the rule named in the defect
//! log, a missing box is NG saying which, and bad rules are refused at their line.

mod common;

use std::collections::HashMap;
use std::path::Path;

use lineside::scenario;
use serde_json::Value;

const MM_PER_PX: f32 = 0.1;
/// How far a detector's box size may be from the render's, where it found the part: YOLO
/// boxes on these renders (mAP50-95 0.81) land within about a pixel; two edges make a size.
const BOX_PX: f32 = 3.0;
/// The span rule's lower limit in pixels.
const SPAN_MIN: f32 = 150.0;

const SCREW_RULES: &str = r#"
[[rules.measure]]
name = "left screw"
what = "width"
class = "screw"
pick = "leftmost"
min_score = 0.5

[[rules.measure]]
name = "right screw"
what = "height"
class = "screw"
pick = "rightmost"
min_score = 0.5
min = 5

[[rules.measure]]
name = "right screw mm"
what = "height"
class = "screw"
pick = "rightmost"
min_score = 0.5
unit = "mm"
min = 0.5

[[rules.measure]]
name = "span"
what = "distance"
from = "left screw"
to = "right screw"
min = 150

[[rules.measure]]
name = "span mm"
what = "distance"
from = "left screw"
to = "right screw"
unit = "mm"
max = 1000

[[rules.measure]]
name = "hex bolt"
what = "width"
class = "hex"
max = 1000
"#;

/// Boxes `[class, cx, cy, w, h]` in frame pixels from a YOLO label file.
fn yolo_labels(path: &Path, size: f32) -> Vec<[f32; 5]> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<f32> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            [v[0], v[1] * size, v[2] * size, v[3] * size, v[4] * size]
        })
        .collect()
}

fn measurements(record: &Value) -> HashMap<String, Value> {
    record["measurements"]
        .as_array()
        .unwrap_or_else(|| panic!("measurements in {record}"))
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
        .collect()
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap_or(f64::NAN) as f32
}

/// Equal up to the defect log's 4 decimals.
fn assert_close(a: f32, b: f32, item: &str) {
    assert!(
        (a - b).abs() <= 2e-4 * b.abs().max(1.0),
        "{item}: {a} vs {b}"
    );
}

/// A box from the defect log: class name, score, [x, y, w, h] (rounded to 0.1 px).
struct Logged {
    class: String,
    score: f32,
    bbox: [f32; 4],
}

fn logged_boxes(record: &Value) -> Vec<Logged> {
    record["defects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let b: Vec<f32> = d["box"].as_array().unwrap().iter().map(f).collect();
                    Logged {
                        class: d["class"].as_str().unwrap().to_string(),
                        score: f(&d["score"]),
                        bbox: [b[0], b[1], b[2], b[3]],
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn screw_boxes_are_measured_as_the_rules_say() {
    let root = common::root();
    let samples = root.join("scenarios/samples/screws");
    let dir = tempfile::tempdir().unwrap();
    let file = common::scenario_copy(
        &root.join("scenarios/catalogue/10-screw-locking.toml"),
        dir.path(),
        |t| t.replace("[rules]\n", &format!("[rules]\nmm_per_px = {MM_PER_PX}\n")) + SCREW_RULES,
    );
    let plan = scenario::check(&file).unwrap_or_else(|e| panic!("{e:?}"));
    let records = common::run_to_log(&plan, &dir.path().join("out"));
    assert_eq!(records.len(), 8);
    let (mut worst, mut worst_label, mut matched, mut below, mut above) = (0.0f32, 0.0f32, 0, 0, 0);
    for r in &records {
        let item = r["item"].as_str().unwrap();
        let m = measurements(r);
        assert_eq!(m.len(), 6, "{item}: one entry per rule");
        // The rules' picks, taken independently from the boxes the defect log lists.
        let boxes = logged_boxes(r);
        let screws: Vec<&Logged> = boxes
            .iter()
            .filter(|b| b.class == "screw" && b.score >= 0.5)
            .collect();
        let cx = |b: &Logged| b.bbox[0] + b.bbox[2] / 2.0;
        let cy = |b: &Logged| b.bbox[1] + b.bbox[3] / 2.0;
        let left = screws.iter().min_by(|a, b| cx(a).total_cmp(&cx(b)));
        let right = screws.iter().max_by(|a, b| cx(a).total_cmp(&cx(b)));
        let (Some(left), Some(right)) = (left, right) else {
            assert!(m["span"]["value"].is_null(), "{item}: no screw, no span");
            continue;
        };
        let width = f(&m["left screw"]["value"]);
        let height = f(&m["right screw"]["value"]);
        let span = f(&m["span"]["value"]);
        let expected_span = (cx(right) - cx(left)).hypot(cy(right) - cy(left));
        for (got, want) in [
            (width, left.bbox[2]),
            (height, right.bbox[3]),
            (span, expected_span),
        ] {
            worst = worst.max((got - want).abs());
        }
        // Millimetres are the pixel value times the pixel size (the log rounds to 4
        // decimals; the unit tests check the product bit for bit).
        let height_mm = &m["right screw mm"];
        assert_eq!(height_mm["unit"], "mm");
        assert_close(f(&height_mm["value"]), height * MM_PER_PX, item);
        assert_close(f(&m["span mm"]["value"]), span * MM_PER_PX, item);

        // The limit is enforced on what the detector found, and the log names the rule.
        let failed: Vec<&str> = r["failed"]
            .as_array()
            .map(|a| a.iter().map(|x| x["rule_name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(m["span"]["ok"], span >= SPAN_MIN, "{item}");
        assert_eq!(
            failed.contains(&"span"),
            span < SPAN_MIN,
            "{item}: {failed:?}"
        );
        if span >= SPAN_MIN {
            above += 1;
        } else {
            below += 1;
        }

        // Against the render: the leftmost screw's label, where the detector found it.
        let labels = yolo_labels(&samples.join(item.replace(".png", ".txt")), 320.0);
        if let Some(l) = labels
            .iter()
            .find(|l| l[0] == 0.0 && (l[1] - cx(left)).hypot(l[2] - cy(left)) < 3.0)
        {
            matched += 1;
            worst_label = worst_label.max((width - l[3]).abs());
        }

        // No hex bolt on the plate: the rule found nothing to measure, which is NG.
        let has_hex = r["defects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["class"] == "hex");
        let hex = &m["hex bolt"];
        assert_eq!(hex["value"].is_null(), !has_hex, "{item}: {hex}");
        if !has_hex {
            assert_eq!(hex["ok"], false);
            let detail = r["failed"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["rule_name"] == "hex bolt")
                .unwrap_or_else(|| panic!("{item}: hex bolt failed"))["detail"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(detail, "width: no `hex` box (pick best)");
        }
    }
    println!(
        "screw rules vs the logged boxes: worst {worst:.3} px; leftmost screw width vs its render label: worst {worst_label:.2} px over {matched} plates; span OK on {above}, NG on {below}"
    );
    // The log rounds boxes to 0.1 px.
    assert!(
        worst <= 0.1,
        "rule values differ from the boxes by {worst} px"
    );
    assert!(
        matched >= 4 && worst_label <= BOX_PX,
        "{matched} {worst_label}"
    );
    assert!(
        above > 0 && below > 0,
        "the span limit must split the plates"
    );
}

const KIT_RULES: &str = r#"
[[rules.measure]]
name = "label width"
what = "width"
class = "label"
min_score = 0.5
nominal = 104
tolerance = 6

[[rules.measure]]
name = "label height"
what = "height"
class = "label"
min_score = 0.5
unit = "mm"
nominal = 18.25
tolerance = 1.5

[[rules.measure]]
name = "first screw px"
what = "area"
class = "screw"
zone = [48, 60, 140, 172]
min = 100

[[rules.measure]]
name = "first screw"
what = "area"
class = "screw"
zone = [48, 60, 140, 172]
unit = "mm2"
min = 100

[[rules.measure]]
name = "second screw"
what = "area"
class = "screw"
zone = [188, 60, 140, 172]
min = 1000

[[rules.measure]]
name = "screw pitch"
what = "distance"
from = "first screw"
to = "second screw"
axis = "x"
min = 0

[[rules.measure]]
name = "screw line"
what = "angle"
from = "first screw"
to = "second screw"
min = -60
max = 60
"#;

#[test]
fn kit_regions_are_measured_as_the_rules_say() {
    let root = common::root();
    let samples = root.join("scenarios/samples/kits");
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(samples.join("truth.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = common::scenario_copy(
        &root.join("scenarios/catalogue/26-kit-completeness.toml"),
        dir.path(),
        |t| t + KIT_RULES,
    );
    let plan = scenario::check(&file).unwrap_or_else(|e| panic!("{e:?}"));
    let records = common::run_to_log(&plan, &dir.path().join("out"));
    let (mut worst, mut worst_pitch, mut worst_angle, mut n) = (0.0f32, 0.0f32, 0.0f32, 0);
    for r in &records {
        let item = r["item"].as_str().unwrap();
        let m = measurements(r);
        // The rules' picks, taken independently from the regions the defect log lists:
        // the best-scoring region of the class with its centre in the zone.
        let regions: Vec<(Logged, f32)> = r["defects"]
            .as_array()
            .unwrap()
            .iter()
            .zip(logged_boxes(r))
            .map(|(d, b)| (b, f(&d["area_px"])))
            .collect();
        let pick = |class: &str, zone: Option<[f32; 4]>| {
            regions
                .iter()
                .filter(|(b, _)| b.class == class && b.score >= 0.5)
                .filter(|(b, _)| {
                    zone.is_none_or(|[x, y, w, h]| {
                        let (cx, cy) = (b.bbox[0] + b.bbox[2] / 2.0, b.bbox[1] + b.bbox[3] / 2.0);
                        cx >= x && cx <= x + w && cy >= y && cy <= y + h
                    })
                })
                .max_by(|a, b| a.0.score.total_cmp(&b.0.score))
        };
        match pick("label", None) {
            Some((label, _)) => {
                worst = worst.max((f(&m["label width"]["value"]) - label.bbox[2]).abs());
                let height_mm = f(&m["label height"]["value"]);
                worst = worst.max((height_mm / 0.25 - label.bbox[3]).abs());
            }
            None => {
                // No label on the tray: its rules found nothing, and the part is NG.
                assert!(m["label width"]["value"].is_null(), "{item}");
                assert_eq!(r["verdict"], "NG");
            }
        }
        let first = pick("screw", Some([48.0, 60.0, 140.0, 172.0]));
        let second = pick("screw", Some([188.0, 60.0, 140.0, 172.0]));
        let (Some((a, area_a)), Some((b, _))) = (first, second) else {
            // A screw is missing: the rules that need it found nothing.
            assert!(m["screw pitch"]["value"].is_null(), "{item}");
            assert_eq!(m["screw pitch"]["ok"], false);
            continue;
        };
        // Areas are the mask's pixels; mm² is px² times the pixel size squared.
        assert_eq!(f(&m["first screw px"]["value"]), *area_a, "{item}");
        assert_eq!(m["first screw px"]["unit"], "px2");
        assert_eq!(m["first screw"]["unit"], "mm2");
        assert_close(
            f(&m["first screw"]["value"]),
            area_a * (0.25f32 * 0.25f32),
            item,
        );
        let centre = |l: &Logged| [l.bbox[0] + l.bbox[2] / 2.0, l.bbox[1] + l.bbox[3] / 2.0];
        let (ca, cb) = (centre(a), centre(b));
        let pitch = f(&m["screw pitch"]["value"]);
        worst = worst.max((pitch - (cb[0] - ca[0])).abs());
        let angle = f(&m["screw line"]["value"]);
        assert_eq!(m["screw line"]["unit"], "deg");
        let logged_angle = (cb[1] - ca[1]).atan2(cb[0] - ca[0]).to_degrees();
        assert!(
            (angle - logged_angle).abs() < 0.1,
            "{item}: {angle} vs {logged_angle}"
        );

        // Against the render: the two screws' true centres.
        let objects = truth["images"][item]["objects"].as_array().unwrap();
        let true_centre = |zone: &str| {
            objects
                .iter()
                .find(|o| o["zone"] == zone && o["class"] == "screw")
                .map(|o| {
                    let v: Vec<f32> = o["box_xyxy"].as_array().unwrap().iter().map(f).collect();
                    [(v[0] + v[2]) / 2.0, (v[1] + v[3]) / 2.0]
                })
        };
        if let (Some(ta), Some(tb)) = (true_centre("top-left"), true_centre("top-middle")) {
            worst_pitch = worst_pitch.max((pitch - (tb[0] - ta[0])).abs());
            let true_angle = (tb[1] - ta[1]).atan2(tb[0] - ta[0]).to_degrees();
            worst_angle = worst_angle.max((angle - true_angle).abs());
            n += 1;
        }
    }
    println!(
        "kit rules vs the logged regions: worst {worst:.3} px; screw pitch vs the render: worst {worst_pitch:.2} px, screw line {worst_angle:.2} deg over {n} trays"
    );
    // The log rounds boxes to 0.1 px.
    assert!(
        worst <= 0.1,
        "rule values differ from the regions by {worst} px"
    );
    assert!(n >= 4, "too few trays with both screws: {n}");
    assert!(worst_pitch <= BOX_PX, "pitch error {worst_pitch} px");
    assert!(worst_angle <= 2.0, "angle error {worst_angle} deg");
}

#[test]
fn bad_box_rules_are_refused_at_their_line() {
    let root = common::root();
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "[[rules.measure]]\nname = \"w\"\nwhat = \"width\"\nclass = \"bolt\"\nmax = 3\n",
            "`bolt` is not a class of this model",
        ),
        (
            "[[rules.measure]]\nname = \"w\"\nwhat = \"width\"\nclass = \"screw\"\nunit = \"mm\"\nmax = 3\n",
            "millimetres need the pixel size",
        ),
        (
            "[[rules.measure]]\nname = \"w\"\nwhat = \"area\"\nclass = \"screw\"\nunit = \"mm\"\nmax = 3\n",
            "unit `mm` does not fit an area; use \"px2\" or \"mm2\"",
        ),
        (
            "[[rules.measure]]\nname = \"w\"\nwhat = \"width\"\nclass = \"screw\"\n",
            "a measurement without limits can never fail",
        ),
        (
            "[[rules.measure]]\nname = \"d\"\nwhat = \"distance\"\nfrom = \"a\"\nto = \"b\"\nmax = 3\n",
            "no measurement is named `a`",
        ),
        (
            "[[rules.measure]]\nname = \"w\"\nwhat = \"width\"\nclass = \"screw\"\npick = \"biggest\"\nmax = 3\n",
            "unknown pick `biggest`",
        ),
        (
            "[[rules.measure]]\nname = \"w\"\nwhat = \"width\"\nclass = \"screw\"\nprobe = [0, 0, 9, 9]\nmax = 3\n",
            "probe",
        ),
    ];
    for (rules, expected) in cases {
        let file = common::scenario_copy(
            &root.join("scenarios/catalogue/10-screw-locking.toml"),
            dir.path(),
            |t| t + rules,
        );
        let (code, text) = common::validate_file(&file);
        assert_ne!(code, Some(0), "{rules} was accepted");
        assert!(
            text.contains(expected),
            "{rules}: expected `{expected}` in\n{text}"
        );
        assert!(
            text.contains("rules.measure[0]"),
            "{rules}: no location in\n{text}"
        );
    }
}
