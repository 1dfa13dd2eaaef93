//! Calipers through the real luma model (ONNX Runtime) on rendered parts of known size:
//! widths within 0.1 px, millimetres exactly px * mm_per_px, tolerances enforced with the
//! measurement named in the defect log, bad rules refused with located messages, and the
//! `lineside calibrate` round trip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lineside::frame::{FrameLayout, PixelFormat};
use lineside::pipeline::Worker;
use lineside::scenario;
use lineside::verdict::Verdict;

const W: u32 = 320;
const H: u32 = 160;
const MM_PER_PX: f32 = 0.05;

/// A light rectangle `[x0, x1) x [y0, y1)` (continuous coordinates, fractional) on a dark
/// ground, each pixel shaded by the exact fraction of it the rectangle covers, as a camera
/// integrates light over a pixel.
fn part(x0: f32, x1: f32, y0: f32, y1: f32) -> Vec<u8> {
    let cover =
        |a: f32, b: f32, i: u32| ((i as f32 + 1.0).min(b) - (i as f32).max(a)).clamp(0.0, 1.0);
    let mut rgb = Vec::with_capacity((W * H * 3) as usize);
    for y in 0..H {
        for x in 0..W {
            let f = cover(x0, x1, x) * cover(y0, y1, y);
            let v = (40.0 + 170.0 * f).round() as u8;
            rgb.extend_from_slice(&[v, v, v]);
        }
    }
    rgb
}

fn save_png(path: &Path, rgb: Vec<u8>) {
    image::RgbImage::from_raw(W, H, rgb)
        .unwrap()
        .save(path)
        .unwrap();
}

/// A measurement scenario over `frames/` in `dir`, with `rules` appended to `[rules]`.
fn scenario(dir: &Path, rules: &str) -> PathBuf {
    let luma = common::root().join("models/luma/luma.onnx");
    let text = format!(
        r#"[scenario]
id = "calipers"

[source]
kind = "images"
path = "frames"

[model]
path = "{}"

[preprocess]
size = [{W}, {H}]
scale = 0.00392156862745098
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]

[head]
kind = "measure"

[rules]
{rules}

[output]
dir = "out"
"#,
        luma.display()
    );
    std::fs::create_dir_all(dir.join("frames")).unwrap();
    let p = dir.join("calipers.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const WIDTH_RULES: &str = r#"mm_per_px = 0.05

[[rules.measure]]
name = "width_px"
what = "width"
probe = [20, 80, 300, 80]
band = 5
nominal = 123.4
tolerance = 0.1

[[rules.measure]]
name = "width_mm"
what = "width"
probe = [20, 80, 300, 80]
band = 5
unit = "mm"
nominal = 6.17
tolerance = 0.05

[[rules.measure]]
name = "height"
what = "width"
probe = [120, 10, 120, 150]
unit = "px"
min = 70
max = 90
"#;

fn process(worker: &mut Worker, rgb: &[u8]) -> lineside::verdict::Inspection {
    let layout = FrameLayout::packed(W, H, PixelFormat::Rgb24);
    let mut ins = worker.new_inspection();
    worker.process(rgb, &layout, &mut ins).unwrap();
    ins
}

#[test]
fn widths_of_rendered_parts_are_within_a_tenth_of_a_pixel_and_mm_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let plan = scenario::check(&scenario(dir.path(), WIDTH_RULES)).unwrap();
    let mut worker = Worker::new(&plan, 1).unwrap();
    let mut worst = 0.0f32;
    // The same 123.4 px part at several sub-pixel positions, and a 80.35 px high one.
    for x0 in [60.0f32, 60.3, 60.55, 60.8, 71.13] {
        let ins = process(&mut worker, &part(x0, x0 + 123.4, 40.1, 120.45));
        let m = &ins.measurements;
        assert_eq!(m.len(), 3);
        let px = m[0].px;
        worst = worst.max((px - 123.4).abs());
        assert!((m[2].px - 80.35).abs() <= 0.1, "height {}", m[2].px);
        // Millimetres are the pixel value times the pixel size, nothing else.
        assert_eq!(m[1].value, m[1].px * MM_PER_PX);
        assert_eq!(m[1].px, px, "both rules run the same probe");
        assert_eq!(ins.verdict, Verdict::Ok, "x0 {x0}: {m:?}");
    }
    println!("worst width error: {worst:.4} px");
    assert!(worst <= 0.1, "worst width error {worst} px");
}

#[test]
fn parts_out_of_tolerance_are_ng_and_the_log_names_the_measure_and_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), WIDTH_RULES);
    let frames = dir.path().join("frames");
    save_png(&frames.join("a_good.png"), part(60.2, 183.6, 40.0, 120.0));
    save_png(&frames.join("b_wide.png"), part(60.2, 186.2, 40.0, 120.0)); // 126.0 px
    save_png(&frames.join("c_short.png"), part(60.2, 183.6, 70.0, 130.0)); // 60 px high
    save_png(&frames.join("d_blank.png"), part(0.0, 0.0, 0.0, 0.0)); // no part at all
    let plan = scenario::check(&file).unwrap();
    let records = common::run_to_log(&plan, &dir.path().join("out"));
    let by_item = |name: &str| {
        records
            .iter()
            .find(|r| r["item"] == name)
            .unwrap_or_else(|| panic!("{name} logged"))
    };
    let good = by_item("a_good.png");
    assert_eq!(good["verdict"], "OK");
    let m = good["measurements"].as_array().unwrap();
    assert_eq!(m[0]["name"], "width_px");
    assert_eq!(m[1]["unit"], "mm");
    assert_eq!(m[1]["nominal"].as_f64().unwrap() as f32, 6.17);
    assert!(
        (m[0]["value"].as_f64().unwrap() - 123.4).abs() <= 0.1,
        "{m:?}"
    );

    let wide = by_item("b_wide.png");
    assert_eq!(wide["verdict"], "NG");
    let failed = wide["failed"].as_array().unwrap();
    let names: Vec<&str> = failed
        .iter()
        .map(|f| f["rule_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["width_px", "width_mm"], "{failed:?}");
    assert!(failed.iter().all(|f| f["rule_kind"] == "measure"));
    let detail = failed[0]["detail"].as_str().unwrap();
    let value: f32 = detail.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        detail.starts_with("width ")
            && (value - 126.0).abs() <= 0.1
            && detail.ends_with("px, nominal 123.40 ± 0.10 px"),
        "{detail}"
    );
    assert!(
        failed[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("width 6.30 mm"),
        "{failed:?}"
    );
    assert_eq!(wide["measurements"][0]["ok"], false);

    let short = by_item("c_short.png");
    assert_eq!(short["verdict"], "NG");
    assert_eq!(short["failed"][0]["rule_name"], "height");
    assert!(short["failed"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("min 70.00 px"));

    // Nothing to measure is a reject that says so, never a silent OK.
    let blank = by_item("d_blank.png");
    assert_eq!(blank["verdict"], "NG");
    assert_eq!(blank["failed"].as_array().unwrap().len(), 3);
    let d = blank["failed"][0]["detail"].as_str().unwrap();
    assert!(d.starts_with("width: fewer than two edges"), "{d}");
    assert!(blank["measurements"][0]["value"].is_null());
}

#[test]
fn an_edge_position_a_distance_and_an_angle_on_a_tilted_part() {
    // A part whose right side leans: its right edge is found by two probes, the line
    // through them has the angle of the side.
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
[[rules.measure]]
name = "left"
what = "edge"
probe = [10, 80, 310, 80]
polarity = "rising"

[[rules.measure]]
name = "right_top"
what = "edge"
probe = [10, 50, 310, 50]
polarity = "falling"

[[rules.measure]]
name = "right_bottom"
what = "edge"
probe = [10, 110, 310, 110]
polarity = "falling"

[[rules.measure]]
name = "span"
what = "distance"
from = "left"
to = "right_top"
axis = "x"
min = 0
max = 400

[[rules.measure]]
name = "lean"
what = "angle"
probes = ["right_top", "right_bottom"]
nominal = 90
tolerance = 10
"#;
    let plan = scenario::check(&scenario(dir.path(), rules)).unwrap();
    let mut worker = Worker::new(&plan, 1).unwrap();
    // Right side from (200, 0) down to (215, 160): x = 200 + y * 15/160, rendered by
    // 16x16 supersampled coverage.
    let mut rgb = Vec::with_capacity((W * H * 3) as usize);
    for y in 0..H {
        for x in 0..W {
            let mut n = 0;
            for sy in 0..16 {
                for sx in 0..16 {
                    let (fx, fy) = (
                        x as f32 + (sx as f32 + 0.5) / 16.0,
                        y as f32 + (sy as f32 + 0.5) / 16.0,
                    );
                    n += u32::from(fx >= 50.5 && fx < 200.0 + fy * 15.0 / 160.0);
                }
            }
            let v = (40.0 + 170.0 * n as f32 / 256.0).round() as u8;
            rgb.extend_from_slice(&[v, v, v]);
        }
    }
    let ins = process(&mut worker, &rgb);
    let px: Vec<f32> = ins.measurements.iter().map(|m| m.px).collect();
    assert!(
        (px[0] - 40.5).abs() < 0.1,
        "left edge 40.5 px along its probe: {px:?}"
    );
    let right_top = 200.0 + 50.0 * 15.0 / 160.0;
    assert!((px[1] - (right_top - 10.0)).abs() < 0.1, "{px:?}");
    assert!((px[3] - (right_top - 50.5)).abs() < 0.1, "{px:?}");
    let truth = (160.0f32).atan2(15.0).to_degrees();
    assert!((px[4] - truth).abs() < 0.2, "angle {} vs {truth}", px[4]);
    assert_eq!(ins.verdict, Verdict::Ok);
}

#[test]
fn bad_rules_are_refused_with_located_messages() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
[[rules.measure]]
name = "outside"
what = "width"
probe = [10, 80, 400, 80]
nominal = 10
tolerance = 1

[[rules.measure]]
name = "no_tolerance"
what = "width"
probe = [10, 80, 300, 80]
nominal = 10

[[rules.measure]]
name = "inches"
what = "width"
probe = [10, 80, 300, 80]
unit = "inch"
min = 1

[[rules.measure]]
name = "mm_without_scale"
what = "width"
probe = [10, 80, 300, 80]
unit = "mm"
min = 1

[[rules.measure]]
name = "gap"
what = "distance"
from = "nowhere"
to = "outside"
min = 1
"#;
    let errs = scenario::check(&scenario(dir.path(), rules)).unwrap_err();
    let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
    let has = |key: &str, words: &str| {
        assert!(
            errs.iter()
                .any(|d| d.key == key && d.message.contains(words) && d.line.is_some()),
            "no `{key}` error saying `{words}` in {text:#?}"
        )
    };
    has("rules.measure[0].probe", "leaves the frame");
    has("rules.measure[1].nominal", "needs a tolerance");
    has("rules.measure[2].unit", "use \"px\" or \"mm\"");
    has("rules.measure[3].unit", "mm_per_px");
    has("rules.measure[4].from", "no measurement is named `nowhere`");
    has("rules.measure[4].to", "is not an `edge` rule");

    // A calibration file that does not exist says how to record it.
    let file = scenario(
        dir.path(),
        "calibration = \"cal.toml\"\n[[rules.measure]]\nname = \"w\"\nwhat = \"width\"\nprobe = [10, 80, 300, 80]\nunit = \"mm\"\nmin = 1\n",
    );
    let errs = scenario::check(&file).unwrap_err();
    assert!(
        errs.iter()
            .any(|d| d.key == "rules.calibration" && d.message.contains("lineside calibrate")),
        "{errs:?}"
    );
}

#[test]
fn calibrate_records_the_pixel_size_and_the_scenario_measures_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"calibration = "cal.toml"

[[rules.measure]]
name = "width"
what = "width"
probe = [20, 80, 300, 80]
band = 5
unit = "mm"
nominal = 20.0
tolerance = 0.05
"#;
    let file = scenario(dir.path(), rules);
    // The target: a 20.000 mm gauge block imaged 160.0 px wide (0.125 mm per px).
    let target = dir.path().join("target.png");
    save_png(&target, part(70.25, 230.25, 30.0, 130.0));
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["calibrate"])
        .arg(&file)
        .arg("--image")
        .arg(&target)
        .args(["--probe", "width", "--known-mm", "20"])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let cal =
        lineside::heads::measure::calibration::Calibration::load(&dir.path().join("cal.toml"))
            .unwrap();
    assert!((cal.measured_px - 160.0).abs() <= 0.1, "{cal:?}");
    assert_eq!(cal.mm_per_px, 20.0 / cal.measured_px);
    assert_eq!((cal.probe.as_str(), cal.known_mm), ("width", 20.0));
    assert!(cal.image.ends_with("target.png") && !cal.recorded.is_empty());

    // Now the scenario plans, and a part measures in millimetres through that file.
    let plan = scenario::check(&file).unwrap();
    let mut worker = Worker::new(&plan, 1).unwrap();
    let ins = process(&mut worker, &part(50.0, 210.0, 30.0, 130.0));
    let m = ins.measurements[0];
    assert_eq!(m.value, m.px * cal.mm_per_px);
    assert_eq!(ins.verdict, Verdict::Ok, "{m:?}");
    // 20.4 mm wide: outside 20.00 ± 0.05.
    let ins = process(&mut worker, &part(50.0, 213.2, 30.0, 130.0));
    assert_eq!(ins.verdict, Verdict::Ng);

    // A rule that is not a length cannot calibrate.
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .arg("calibrate")
        .arg(&file)
        .arg("--image")
        .arg(&target)
        .args(["--probe", "nope", "--known-mm", "20"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no measurement is named `nope`"));
}
