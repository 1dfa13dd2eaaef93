//! Evidence images (`[evidence]`), against real models and images: every NG/ERROR record
//! names a JPEG of the frame's size with the findings drawn where the records put them,
//! one crop per listed defect, OK parts sampled exactly every `ok_every`; a full queue or
//! a full disk costs evidence, never a verdict; retention holds the folder's size.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lineside::evidence::EvidencePlan;
use lineside::scenario::{self, ScenarioPlan};
use serde_json::Value;

/// A copy of `scenario` writing into `out`, with `evidence` appended as its section.
fn with_evidence(scenario: &str, dir: &Path, out: &Path, evidence: &str) -> PathBuf {
    common::scenario_copy(&common::root().join(scenario), dir, |text| {
        let mut t: String = text
            .lines()
            .map(|l| {
                if l.starts_with("dir = \"") {
                    format!("dir = \"{}\"\n", out.display())
                } else if let Some(rel) = l.strip_prefix("recognizer = \"../../") {
                    // the OCR head's second model, relative to scenarios/catalogue/
                    format!("recognizer = \"{}/{rel}\n", common::root().display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        if !t.contains("[output]") {
            t.push_str(&format!("\n[output]\ndir = \"{}\"\n", out.display()));
        }
        t.push_str("\n[evidence]\n");
        t.push_str(evidence);
        t
    })
}

fn summary(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Mean absolute difference of the two images over `pixels` (those inside both).
fn mean_diff(a: &image::RgbImage, b: &image::RgbImage, pixels: &[(u32, u32)]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for &(x, y) in pixels {
        if x < a.width() && y < a.height() && x < b.width() && y < b.height() {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            sum += (0..3)
                .map(|i| (f64::from(p[i]) - f64::from(q[i])).abs())
                .sum::<f64>()
                / 3.0;
            n += 1;
        }
    }
    assert!(n > 0, "no pixels to compare");
    sum / n as f64
}

/// The pixels of a box's outline (2 px inside its edges), below the banner.
fn outline(b: &Value, top: u32) -> Vec<(u32, u32)> {
    let v: Vec<f64> = (0..4).map(|i| b[i].as_f64().unwrap()).collect();
    let (x0, y0) = (v[0].max(0.0) as u32, v[1].max(0.0) as u32);
    let (x1, y1) = ((v[0] + v[2]) as u32, (v[1] + v[3]) as u32);
    let mut px = Vec::new();
    for x in x0..=x1 {
        for d in 0..2 {
            px.push((x, y1.saturating_sub(d)));
        }
    }
    for y in y0.max(top)..=y1 {
        for d in 0..2 {
            px.push((x0 + d, y));
            px.push((x1.saturating_sub(d), y));
        }
    }
    px.retain(|&(_, y)| y >= top);
    px
}

/// Runs `scenario` with evidence on (`ok_every = 3`) and checks every record against
/// the files; returns (NG/ERROR records, OK records with evidence).
fn check_scenario(scenario: &str, frames_dir: &Path, overlay: &str) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = with_evidence(scenario, dir.path(), &out, "ok_every = 3\n");
    let plan = scenario::check(&file).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(plan.evidence.as_ref().unwrap().dir, Path::new("evidence"));
    let records = common::run_to_log(&plan, &out);
    assert!(!records.is_empty());
    let (mut rejects, mut sampled) = (0, 0);
    for r in &records {
        let seq = r["seq"].as_u64().unwrap();
        let verdict = r["verdict"].as_str().unwrap();
        let ev = &r["evidence"];
        let due = verdict != "OK" || seq % 3 == 0;
        assert_eq!(
            !ev.is_null(),
            due,
            "{scenario} seq {seq} {verdict}: evidence {ev}"
        );
        if !due {
            continue;
        }
        if verdict == "OK" {
            sampled += 1;
        } else {
            rejects += 1;
        }
        let image = out.join(ev["image"].as_str().unwrap_or_else(|| panic!("{r}")));
        let bytes = std::fs::read(&image).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "{}: a JPEG", image.display());
        let shot = rgb(&image);
        let defects = r["defects"].as_array().unwrap();
        let crops = ev["crops"].as_array().unwrap();
        assert_eq!(
            crops.len(),
            defects.len(),
            "{scenario} seq {seq}: one crop per defect"
        );
        for c in crops {
            let crop = image::open(out.join(c.as_str().unwrap())).unwrap();
            assert!(crop.width() >= 1 && crop.height() >= 1);
        }
        if verdict == "ERROR" {
            continue;
        }
        let frame = rgb(&frames_dir.join(r["item"].as_str().unwrap()));
        assert_eq!(
            shot.dimensions(),
            frame.dimensions(),
            "{scenario} seq {seq}: the evidence image has the frame's size"
        );
        // Below the banner (at most 9 lines of 12 px at this scale).
        let top = 120;
        match overlay {
            "boxes" => {
                for d in defects {
                    let px = outline(&d["box"], top);
                    if px.len() < 20 {
                        continue; // a box hidden under the banner
                    }
                    let diff = mean_diff(&shot, &frame, &px);
                    assert!(
                        diff > 25.0,
                        "{scenario} seq {seq}: box {} not drawn (mean difference {diff:.1})",
                        d["box"]
                    );
                }
            }
            "mask" => {
                // Inside each region the mask is blended in.
                for d in defects {
                    let b: Vec<f64> = (0..4).map(|i| d["box"][i].as_f64().unwrap()).collect();
                    let inner: Vec<(u32, u32)> = ((b[1] + 3.0) as u32..(b[1] + b[3] - 3.0) as u32)
                        .flat_map(|y| {
                            ((b[0] + 3.0) as u32..(b[0] + b[2] - 3.0) as u32).map(move |x| (x, y))
                        })
                        .filter(|&(_, y)| y >= top)
                        .collect();
                    if inner.len() < 20 {
                        continue;
                    }
                    // A scratch's mask is a thin line: count the pixels it changed.
                    let changed = inner
                        .iter()
                        .filter(|&&p| mean_diff(&shot, &frame, &[p]) > 25.0)
                        .count();
                    assert!(
                        changed >= 10,
                        "{scenario} seq {seq}: no mask blended in {b:?} ({changed} pixels changed)"
                    );
                }
            }
            "heat" => {
                // The heatmap covers the whole frame.
                let px: Vec<(u32, u32)> = (top..frame.height())
                    .step_by(3)
                    .flat_map(|y| (0..frame.width()).step_by(3).map(move |x| (x, y)))
                    .collect();
                let diff = mean_diff(&shot, &frame, &px);
                assert!(diff > 15.0, "{scenario} seq {seq}: no heatmap ({diff:.1})");
            }
            "quads" => {
                for t in r["texts"].as_array().unwrap() {
                    let q: Vec<[f64; 2]> = (0..4)
                        .map(|i| [0, 1].map(|k| t["quad"][i][k].as_f64().unwrap()))
                        .collect();
                    // the quad's bottom edge, bottom-left to bottom-right
                    let (a, b) = (q[3], q[2]);
                    let along: Vec<f64> = (0..=20)
                        .map(|i| {
                            let f = f64::from(i) / 20.0;
                            let (x, y) = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f);
                            // the pen is 2 px wide: the most changed pixel around the point
                            let near: Vec<(u32, u32)> = (-1..=1)
                                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                                .map(|(dx, dy)| {
                                    ((x as i64 + dx).max(0) as u32, (y as i64 + dy).max(0) as u32)
                                })
                                .collect();
                            near.iter()
                                .map(|&p| mean_diff(&shot, &frame, &[p]))
                                .fold(0.0, f64::max)
                        })
                        .collect();
                    let drawn = along.iter().filter(|&&d| d > 40.0).count();
                    assert!(
                        drawn >= 18,
                        "{scenario} seq {seq}: quad {q:?} not drawn ({drawn} of 21 points)"
                    );
                }
            }
            _ => unreachable!(),
        }
    }
    let s = summary(&out);
    let e = &s["evidence"];
    assert_eq!(
        e["written"].as_u64().unwrap() as usize,
        rejects + sampled,
        "{scenario}: {s}"
    );
    assert_eq!(e["failed"], 0);
    (rejects, sampled)
}

#[test]
fn detect_boxes_are_drawn_and_cropped() {
    let kits = common::root().join("scenarios/samples/kits");
    let (ng, ok) = check_scenario(
        "scenarios/catalogue/26-kit-completeness.toml",
        &kits,
        "boxes",
    );
    assert!(ng > 0 && ok > 0, "NG {ng}, sampled OK {ok}");
}

#[test]
fn segmentation_masks_are_blended() {
    let glass = common::root().join("scenarios/samples/glass");
    let (ng, _) = check_scenario("scenarios/catalogue/03-cover-glass.toml", &glass, "mask");
    assert!(ng > 0);
}

#[test]
fn ocr_quads_and_text_are_drawn() {
    let labels = common::root().join("scenarios/samples/labels");
    let (ng, _) = check_scenario("scenarios/catalogue/29-food-label.toml", &labels, "quads");
    assert!(ng > 0);
}

#[test]
fn anomaly_heatmap_is_blended() {
    let samples = common::root().join("models/fixtures/anomalib_patchcore/samples");
    let (ng, _) = check_scenario(
        "tests/fixtures/scenarios/anomalib_patchcore.toml",
        &samples,
        "heat",
    );
    assert!(ng > 0);
}

/// demo-synthetic with big frames and every part due (`ok_every = 1`).
fn synthetic_plan(out: &Path, frames: u64, w: u32, h: u32, evidence: EvidencePlan) -> ScenarioPlan {
    let mut p = scenario::check(&common::root().join("scenarios/demo-synthetic.toml"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    p.source.width = w;
    p.source.height = h;
    p.source.frames = frames;
    p.source.fps = 0.0;
    p.source.live = false;
    p.output_dir = out.to_path_buf();
    p.evidence = Some(evidence);
    p
}

fn evidence_plan(dir: PathBuf) -> EvidencePlan {
    EvidencePlan {
        enabled: true,
        ok_every: 1,
        dir,
        max_bytes: 1 << 30,
        max_age: None,
        queue: 8,
        jpeg_quality: 85,
        crops: true,
    }
}

fn assert_every_seq(records: &[Value], n: u64) {
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..n).collect::<Vec<_>>(),
        "every part has its verdict, in order"
    );
    assert!(records
        .iter()
        .all(|r| r["verdict"] == "OK" || r["verdict"] == "NG"));
}

#[test]
fn a_full_queue_drops_evidence_never_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let n = 40;
    let mut e = evidence_plan(out.join("evidence"));
    e.queue = 1;
    // 12 Mpx frames: the writer (convert, draw, encode) is far slower than inspection.
    let plan = synthetic_plan(&out, n, 4000, 3000, e);
    let records = common::run_to_log(&plan, &out);
    assert_every_seq(&records, n);
    let (mut queued, mut full, mut no_buffer) = (0, 0, 0);
    for r in &records {
        let ev = &r["evidence"];
        if let Some(image) = ev["image"].as_str() {
            queued += 1;
            assert!(out.join(image).is_file(), "{image} was written");
        } else {
            match ev["dropped"].as_str() {
                Some("queue full") => full += 1,
                Some("no free buffer") => no_buffer += 1,
                other => panic!("seq {}: evidence {other:?}", r["seq"]),
            }
        }
    }
    let s = summary(&out);
    let e = &s["evidence"];
    assert_eq!(e["written"].as_u64().unwrap(), queued, "{s}");
    assert_eq!(e["dropped_queue_full"].as_u64().unwrap(), full);
    assert_eq!(e["dropped_no_buffer"].as_u64().unwrap(), no_buffer);
    assert_eq!(e["failed"], 0);
    assert_eq!(queued + full + no_buffer, n, "written + dropped = due");
    assert!(
        full + no_buffer > 0,
        "the slow writer must have dropped some: {s}"
    );
    assert!(queued > 0);
    println!("{n} parts: {queued} written, {full} queue full, {no_buffer} no free buffer");
}

#[test]
fn retention_holds_the_size_during_and_after_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let evidence = out.join("evidence");
    // An earlier run's images: retention must remember them after a restart.
    std::fs::create_dir_all(&evidence).unwrap();
    for i in 0..5 {
        std::fs::write(evidence.join(format!("old-{i}.jpg")), vec![0u8; 50_000]).unwrap();
    }
    let max_bytes = 300_000;
    let mut e = evidence_plan(evidence.clone());
    e.max_bytes = max_bytes;
    e.queue = 64;
    let n = 300;
    let plan = synthetic_plan(&out, n, 320, 240, e);
    let size = |d: &Path| -> u64 {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    // Watch the folder while the run goes on.
    let done = Arc::new(AtomicBool::new(false));
    let biggest = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (done, biggest, evidence) = (done.clone(), biggest.clone(), evidence.clone());
        std::thread::spawn(move || {
            let mut looks = 0u64;
            while !done.load(Ordering::SeqCst) && looks < 100_000 {
                biggest.fetch_max(size(&evidence), Ordering::SeqCst);
                looks += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            looks
        })
    };
    let records = common::run_to_log(&plan, &out);
    done.store(true, Ordering::SeqCst);
    let looks = watcher.join().unwrap();
    assert_every_seq(&records, n);
    let s = summary(&out);
    let e = &s["evidence"];
    assert_eq!(e["written"].as_u64().unwrap(), n, "{s}");
    let deleted = e["deleted"].as_u64().unwrap();
    let left = std::fs::read_dir(&evidence).unwrap().count() as u64;
    assert_eq!(left + deleted, n + 5, "every file is kept or deleted: {s}");
    assert!((0..5).all(|i| !evidence.join(format!("old-{i}.jpg")).exists()));
    let end = size(&evidence);
    assert!(end <= max_bytes, "{end} bytes at the end");
    // During the run the folder exceeds the limit at most by the image being written
    // (retention runs right after each write): each is well under 50 kB here.
    let peak = biggest.load(Ordering::SeqCst);
    assert!(looks > 10, "the folder was watched during the run");
    assert!(
        peak <= max_bytes + 50_000,
        "{peak} bytes seen during the run (limit {max_bytes})"
    );
    // The newest images are the ones kept.
    let last = records.last().unwrap()["evidence"]["image"]
        .as_str()
        .unwrap();
    assert!(out.join(last).is_file());
}

/// Whether this machine lets an unprivileged process mount a tmpfs in its own namespace.
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_disk_fails_evidence_never_verdicts() {
    assert!(
        can_unshare(),
        "`unshare --user --map-root-user --mount` must work here (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let evidence = dir.path().join("evidence-disk");
    std::fs::create_dir_all(&evidence).unwrap();
    let file = with_evidence(
        "scenarios/catalogue/26-kit-completeness.toml",
        dir.path(),
        &out,
        &format!("ok_every = 1\ndir = \"{}\"\n", evidence.display()),
    );
    // Every kit three times, ~60 kB of evidence each, on a 256 kB disk.
    let kits = std::fs::read_dir(common::root().join("scenarios/samples/kits"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count() as u64;
    let parts = 3 * kits;
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("[source]\n", "[source]\nrepeat = 3\n")).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=256k tmpfs '{ev}' && exec '{bin}' run --no-progress '{file}'",
        ev = evidence.display(),
        bin = env!("CARGO_BIN_EXE_lineside"),
        file = file.display()
    );
    let run = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("evidence_write_failed"),
        "one alarm: {stderr}"
    );
    assert_eq!(
        stderr.matches("cannot write evidence images").count(),
        1,
        "one alarm per run of failures, not one per image: {stderr}"
    );
    // The tmpfs was the child's alone: nothing landed in the folder out here.
    assert_eq!(std::fs::read_dir(&evidence).unwrap().count(), 0);
    let log = std::fs::read_to_string(out.join("defects.jsonl")).unwrap();
    let records: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..parts).collect::<Vec<_>>(),
        "every verdict is in the log"
    );
    let s = summary(&out);
    let e = &s["evidence"];
    let (written, failed) = (
        e["written"].as_u64().unwrap(),
        e["failed"].as_u64().unwrap(),
    );
    let dropped =
        e["dropped_queue_full"].as_u64().unwrap() + e["dropped_no_buffer"].as_u64().unwrap();
    assert!(failed > 0, "the full disk made writes fail: {s}");
    assert_eq!(written + failed + dropped, parts, "{s}");
    println!("{parts} parts on a full disk: {written} written, {failed} failed, {dropped} dropped");
    // Records name files whether or not the disk took them: the summary says which.
    assert!(records.iter().all(|r| r["evidence"].is_object()));
}

#[test]
fn evidence_section_is_checked_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = with_evidence(
        "scenarios/catalogue/26-kit-completeness.toml",
        dir.path(),
        &out,
        "queue = 0\njpeg_quality = 101\nmax_mb = -1\nok_evry = 2\n",
    );
    let (code, text) = common::validate_file(&file);
    assert_ne!(code, Some(0));
    assert!(text.contains("ok_evry"), "{text}");
    let file = with_evidence(
        "scenarios/catalogue/26-kit-completeness.toml",
        dir.path(),
        &out,
        "queue = 0\njpeg_quality = 101\nmax_mb = -1\n",
    );
    let (code, text) = common::validate_file(&file);
    assert_ne!(code, Some(0));
    for key in ["queue", "jpeg_quality", "max_mb"] {
        assert!(text.contains(&format!("evidence.{key}")), "{key}: {text}");
    }
    // Off: the section is kept but nothing is written and records have no field.
    let file = with_evidence(
        "scenarios/catalogue/03-cover-glass.toml",
        dir.path(),
        &out,
        "enabled = false\n",
    );
    let plan = scenario::check(&file).unwrap();
    let records = common::run_to_log(&plan, &out);
    assert!(records.iter().all(|r| r.get("evidence").is_none()));
    assert!(!out.join("evidence").exists());
}

#[test]
fn an_unreadable_frame_gets_a_banner_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let kits = common::root().join("scenarios/samples/kits");
    std::fs::copy(kits.join("kit_0.png"), frames.join("a.png")).unwrap();
    // A PNG that stops after its signature: the source cannot read it.
    std::fs::write(frames.join("b.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let file = with_evidence(
        "scenarios/catalogue/26-kit-completeness.toml",
        dir.path(),
        &out,
        "",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace(&kits.display().to_string(), &frames.display().to_string());
    std::fs::write(&file, text).unwrap();
    let plan = scenario::check(&file).unwrap_or_else(|d| panic!("{d:?}"));
    let records = common::run_to_log(&plan, &out);
    let error = records
        .iter()
        .find(|r| r["verdict"] == "ERROR")
        .expect("an ERROR record");
    assert_eq!(error["item"], "b.png");
    let ev = &error["evidence"];
    assert_eq!(ev["crops"].as_array().unwrap().len(), 0);
    let img = rgb(&out.join(ev["image"].as_str().unwrap()));
    // A blank canvas with the banner: the top rows carry the red verdict text.
    assert_eq!(img.dimensions(), (640, 160));
    let red = (0..20)
        .flat_map(|y| (0..200).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = img.get_pixel(x, y).0;
            p[0] > 150 && p[1] < 100
        })
        .count();
    assert!(red > 20, "the banner says ERROR in red ({red} red pixels)");
    let s = summary(&out);
    let due = records.iter().filter(|r| r["evidence"].is_object()).count() as u64;
    assert_eq!(s["evidence"]["written"].as_u64().unwrap(), due);
}
