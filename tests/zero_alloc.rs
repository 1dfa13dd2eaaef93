//! Steady state allocates nothing per frame: raw replay → preprocess → ONNX Runtime →
//! head → evidence capture (every frame, as `ok_every = 1` would), counted by a global
//! allocator that counts this thread's allocations.
//! (ONNX Runtime's own C++ arena is outside Rust's allocator and reuses its memory.)

mod common;

use lineside::evidence::{EvidencePlan, Slot, Tap};
use lineside::frame::{PixelBuf, PixelFormat};
use lineside::pipeline::Worker;
use lineside::pool::Pool;
use lineside::scenario;
use lineside::source::{Next, RawReplay, Source};

#[global_allocator]
static GLOBAL: common::counting::Counting = common::counting::Counting;

use common::counting::allocations_during;

/// An evidence tap with few buffers (1 + 1 worker + 2): warm-up grows each once.
fn tap() -> Tap {
    let plan = EvidencePlan {
        enabled: true,
        ok_every: 1,
        dir: std::env::temp_dir(),
        max_bytes: 1,
        max_age: None,
        queue: 1,
        jpeg_quality: 85,
        crops: true,
    };
    Tap::new(&plan, 1)
}

/// Copies the frame and the head's map as the pipeline worker does for a part whose
/// evidence is due, and hands the buffer back (the writer would, later). Returns the
/// map's size, so a test can see the map was copied.
fn capture(
    tap: &Tap,
    worker: &Worker,
    seq: u64,
    bytes: &[u8],
    layout: &lineside::frame::FrameLayout,
) -> (usize, usize) {
    match tap.capture(seq, bytes, layout, worker.anomaly_evidence()) {
        Slot::Captured(c) => {
            assert_eq!(c.pixels.len(), bytes.len());
            c.map_size
        }
        other => panic!("no capture: {other:?}"),
    }
}

#[test]
fn steady_state_frames_allocate_nothing() {
    // The counter itself works: one Vec is one allocation.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );

    let plan = scenario::check(&common::root().join("scenarios/demo.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (640u32, 480u32);
    let frames: Vec<Vec<u8>> = ["chelsea.png", "coffee.png", "rocket.png", "astronaut.png"]
        .iter()
        .map(|p| common::encode_frame(&common::photo_rgb(p, w, h), w, h, PixelFormat::Yuyv, 32).1)
        .collect();
    let layout =
        common::encode_frame(&vec![0; (w * h * 3) as usize], w, h, PixelFormat::Yuyv, 32).0;
    let raw = dir.path().join("line.yuyv");
    common::write_raw(&raw, &layout, &frames);

    let mut source = RawReplay::open(&raw, 10).unwrap();
    let pool = Pool::new(2, || PixelBuf::with_capacity(source.max_frame_bytes()));
    let mut worker = Worker::new(&plan, 1).unwrap();
    let mut inspection = worker.new_inspection();
    let tap = tap();
    let mut step = |seq: u64| -> Option<usize> {
        let Next::Frame(frame) = source.next(seq, &pool) else {
            return None;
        };
        worker
            .process(frame.bytes(), &frame.layout, &mut inspection)
            .ok()?;
        capture(&tap, &worker, seq, frame.bytes(), &frame.layout);
        Some(inspection.classes[0].index)
    };
    // Warm-up: the first frames size scratch buffers and ONNX Runtime's arena.
    for seq in 0..4 {
        assert!(step(seq).is_some());
    }
    let mut top = Vec::with_capacity(64);
    let n = allocations_during(|| {
        for seq in 4..36 {
            match step(seq) {
                Some(c) => top.push(c),
                None => break,
            }
        }
    });
    assert_eq!(top.len(), 32, "every frame was inspected");
    assert_eq!(n, 0, "{n} heap allocations in 32 steady-state frames");
    // And the frames really were inspected: the four photos cycle.
    assert_eq!(top[0..4], top[4..8]);
}

/// Runs `frames` (packed RGB, `w`x`h`) through the scenario's worker until warm, then
/// counts the allocations of 3 more rounds; returns them and the defects of the last frame.
fn allocations_per_round(
    plan: &scenario::ScenarioPlan,
    frames: &[Vec<u8>],
    w: u32,
    h: u32,
) -> (u64, Vec<usize>) {
    let layout = lineside::frame::FrameLayout::packed(w, h, PixelFormat::Rgb24);
    let mut worker = Worker::new(plan, 1).unwrap();
    let mut ins = worker.new_inspection();
    let mut found = Vec::with_capacity(64);
    let tap = tap();
    // Warm-up: twice round, so each of the tap's 4 buffers has grown once.
    for seq in 0..2 * frames.len() {
        worker
            .process(&frames[seq % frames.len()], &layout, &mut ins)
            .unwrap();
        capture(
            &tap,
            &worker,
            seq as u64,
            &frames[seq % frames.len()],
            &layout,
        );
    }
    let mut maps = 0;
    let n = allocations_during(|| {
        for round in 0..3 {
            for (i, f) in frames.iter().enumerate() {
                worker.process(f, &layout, &mut ins).unwrap();
                found.push(ins.defects.len());
                let (mw, mh) = capture(&tap, &worker, (round * 10 + i) as u64, f, &layout);
                maps += usize::from(mw * mh > 0);
            }
        }
    });
    // Segment, anomaly and golden heads hand their map to the capture.
    let kind = plan.head.kind();
    if ["segment", "anomaly", "golden"].contains(&kind) {
        assert_eq!(maps, 3 * frames.len(), "{kind}: the map was captured");
    }
    (n, found)
}

fn png_rgb(rel: &str) -> (Vec<u8>, u32, u32) {
    let img = image::open(common::root().join(rel)).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), w, h)
}

#[test]
fn tiled_detection_allocates_nothing_per_frame() {
    // With box measurements, one of which never finds its box (an NG every frame).
    let dir = tempfile::tempdir().unwrap();
    let file = common::scenario_copy(
        &common::root().join("scenarios/catalogue/10-screw-locking.toml"),
        dir.path(),
        |t| {
            t + r#"
[[rules.measure]]
name = "left"
what = "width"
class = "screw"
pick = "leftmost"
max = 500

[[rules.measure]]
name = "right"
what = "area"
class = "screw"
pick = "rightmost"
min = 1

[[rules.measure]]
name = "span"
what = "distance"
from = "left"
to = "right"
min = 1

[[rules.measure]]
name = "hex"
what = "height"
class = "hex"
zone = [0, 0, 1, 1]
max = 9
"#
        },
    );
    let mut plan = scenario::check(&file).unwrap();
    let Some(cfg) = plan.head_config_mut::<lineside::heads::DetectConfig>() else {
        panic!("detect scenario")
    };
    assert_eq!(cfg.measures.rules.len(), 4);
    cfg.tile = Some(lineside::patchcore::TileSpec {
        width: 200,
        height: 200,
        overlap: 64,
    });
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| png_rgb(&format!("tests/fixtures/yolo/render_{i}.png")).0)
        .collect();
    let (n, found) = allocations_per_round(&plan, &frames, 320, 320);
    assert!(found.iter().all(|&d| d > 0), "parts were found: {found:?}");
    assert_eq!(n, 0, "{n} heap allocations in 9 tiled frames");
}

#[test]
fn segmentation_allocates_nothing_per_frame() {
    // a class map (U-Net logits → regions per class)
    let plan =
        scenario::check(&common::root().join("scenarios/catalogue/03-cover-glass.toml")).unwrap();
    let frames: Vec<Vec<u8>> = [1, 3, 7]
        .iter()
        .map(|i| png_rgb(&format!("scenarios/samples/glass/glass_{i}.png")).0)
        .collect();
    let (n, found) = allocations_per_round(&plan, &frames, 512, 512);
    assert!(
        found.iter().all(|&d| d > 0),
        "defects were found: {found:?}"
    );
    assert_eq!(n, 0, "{n} heap allocations in 9 class-map frames");

    // an Ultralytics segmentation export (boxes + prototype masks)
    let plan =
        scenario::check(&common::root().join("scenarios/catalogue/26-kit-completeness.toml"))
            .unwrap();
    let frames: Vec<Vec<u8>> = [0, 4, 7]
        .iter()
        .map(|i| png_rgb(&format!("scenarios/samples/kits/kit_{i}.png")).0)
        .collect();
    let (n, found) = allocations_per_round(&plan, &frames, 640, 480);
    assert!(found.iter().all(|&d| d >= 5), "parts were found: {found:?}");
    assert_eq!(n, 0, "{n} heap allocations in 9 instance-mask frames");
}

#[test]
fn golden_comparison_allocates_nothing_per_frame() {
    // registration (phase correlation + Lucas-Kanade) and comparison on rendered moulds
    let dir = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(common::python())
        .arg(common::root().join("tools/catalogue/golden.py"))
        .arg("--out")
        .arg(dir.path())
        .args(["--rows", "18"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text =
        std::fs::read_to_string(common::root().join("scenarios/catalogue/18-mold-protection.toml"))
            .unwrap()
            .replace(
                "\"../../data/catalogue/",
                &format!("\"{}/", dir.path().display()),
            )
            .replace(
                "\"../../models/",
                &format!("\"{}/", common::root().join("models").display()),
            )
            .replace("\"../../out/", &format!("\"{}/out/", dir.path().display()));
    let file = dir.path().join("golden.toml");
    std::fs::write(&file, text).unwrap();
    let plan = scenario::check(&file).unwrap();
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("18-mold-protection/test/truth.json")).unwrap(),
    )
    .unwrap();
    // Two NG frames and a good one.
    let mut names: Vec<&String> = truth["images"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["verdict"] == "NG")
        .map(|(n, _)| n)
        .take(2)
        .collect();
    let ok = truth["images"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, t)| t["verdict"] == "OK");
    names.push(ok.unwrap().0);
    let frames: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            let (rgb, w, h) = png_rgb(
                dir.path()
                    .join("18-mold-protection/test")
                    .join(n)
                    .to_str()
                    .unwrap(),
            );
            assert_eq!((w, h), (384, 288));
            rgb
        })
        .collect();
    let (n, found) = allocations_per_round(&plan, &frames, 384, 288);
    assert_eq!(
        found
            .iter()
            .map(|&d| usize::from(d > 0))
            .collect::<Vec<_>>(),
        [1, 1, 0].repeat(3),
        "the NG frames had defects, the good one none: {found:?}"
    );
    assert_eq!(n, 0, "{n} heap allocations in 9 golden frames");
}

#[test]
fn teach_by_example_allocates_nothing_per_frame() {
    // Fit a small model of row 31 (grain sorting), then inspect its test frames.
    let tmp = tempfile::tempdir().unwrap();
    let data = common::render_grain(
        tmp.path(),
        &["--per-class", "3", "--unknown", "1", "--test", "2", "2"],
    );
    let file = common::grain_scenario(tmp.path(), &data, |t| t);
    let f = lineside::config::ScenarioFile::load(&file).unwrap();
    let fit_plan = lineside::fit::examples::examples_fit_plan(&f).unwrap();
    let opts = lineside::fit::FitOptions {
        progress: false,
        threads: 2,
    };
    lineside::fit::examples::fit_examples(&fit_plan, &opts).unwrap();
    let plan = scenario::check(&file).unwrap();
    let frames: Vec<Vec<u8>> = ["000", "001", "002", "003"]
        .iter()
        .map(|n| png_rgb(data.join(format!("test/{n}.png")).to_str().unwrap()).0)
        .collect();
    let (n, _) = allocations_per_round(&plan, &frames, 224, 224);
    assert_eq!(n, 0, "{n} heap allocations in 12 teach-by-example frames");
}

#[test]
fn measurement_allocates_nothing_per_frame() {
    // Calipers on the luma plane: a width, two edges, a distance and an angle per frame.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("frames")).unwrap();
    let file = dir.path().join("measure.toml");
    std::fs::write(
        &file,
        format!(
            r#"[scenario]
id = "measure"
[source]
kind = "images"
path = "frames"
[model]
path = "{}"
[preprocess]
size = [160, 120]
scale = 0.00392156862745098
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]
[head]
kind = "measure"
[rules]
mm_per_px = 0.1
[[rules.measure]]
name = "w"
what = "width"
probe = [5, 60, 155, 60]
unit = "mm"
nominal = 8.0
tolerance = 0.5
[[rules.measure]]
name = "top_left"
what = "edge"
probe = [60, 5, 60, 115]
[[rules.measure]]
name = "top_right"
what = "edge"
probe = [100, 5, 100, 115]
[[rules.measure]]
name = "gap"
what = "distance"
from = "top_left"
to = "top_right"
min = 0
max = 100
[[rules.measure]]
name = "level"
what = "angle"
probes = ["top_left", "top_right"]
nominal = 0
tolerance = 5
"#,
            common::root().join("models/luma/luma.onnx").display()
        ),
    )
    .unwrap();
    let plan = scenario::check(&file).unwrap();
    // Light blocks of three widths (one out of tolerance) on a dark ground.
    let frames: Vec<Vec<u8>> = [80usize, 82, 95]
        .iter()
        .map(|&bw| {
            let mut rgb = vec![30u8; 160 * 120 * 3];
            for y in 30..90 {
                for x in 40..40 + bw {
                    rgb[(y * 160 + x) * 3..(y * 160 + x) * 3 + 3].fill(220);
                }
            }
            rgb
        })
        .collect();
    let (n, _) = allocations_per_round(&plan, &frames, 160, 120);
    assert_eq!(n, 0, "{n} heap allocations in 9 measured frames");
    // And the frames really were measured: the third block is NG.
    let mut worker = Worker::new(&plan, 1).unwrap();
    let mut ins = worker.new_inspection();
    let layout = lineside::frame::FrameLayout::packed(160, 120, PixelFormat::Rgb24);
    worker.process(&frames[2], &layout, &mut ins).unwrap();
    assert_eq!(ins.measurements.len(), 5);
    assert_eq!(ins.verdict, lineside::verdict::Verdict::Ng);
    assert!((ins.measurements[0].px - 95.0).abs() < 0.1);
}
