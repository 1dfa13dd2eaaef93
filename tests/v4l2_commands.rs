//! The camera through lineside's commands and files: `record` and its raw replay, the
//! scenario's `[source]` checks, `devices`, and a whole pipeline run across an unplug.

mod v4l2;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use lineside::frame::PixelFormat;
use lineside::source::v4l2::{list_devices, record, record_scenario, CaptureFormat, ControlName};
use lineside::source::{Next, Source};
use lineside_v4l2_emulator::run_emulated;
use v4l2::*;

#[test]
fn record_writes_raw_frames_that_the_raw_replay_reads_back() {
    let (w, h) = (16u32, 8u32);
    let (f, frame) = padded(b"YUYV", w, h, w * 2, 8, h);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("rec");
    let (summary, _) = run_emulated(emu(vec![f], frame), WATCHDOG, |_| {
        record(
            &cfg(CaptureFormat::Pixel(PixelFormat::Yuyv), w, h),
            4,
            &out,
            &AtomicBool::new(false),
        )
    });
    let summary = summary.expect("record");
    assert_eq!(summary.frames, 4);
    assert_eq!(
        summary.sidecar_json,
        r#"{"width":16,"height":8,"fourcc":"YUYV","stride":40,"frame_bytes":320}"#
    );
    let mut replay = lineside::source::RawReplay::open(&out, 1).expect("replay the recording");
    assert_eq!(replay.len_hint(), Some(4));
    let pool = pool(replay.max_frame_bytes());
    for seq in 0..4u64 {
        let Next::Frame(f) = replay.next(seq, &pool) else {
            panic!("frame {seq}")
        };
        assert_eq!(f.bytes(), &plane(seq as u32, 0, h as usize, 40, 32)[..]);
        assert_eq!(f.layout.stride, 40);
    }
}

#[test]
fn scenario_v4l2_section_is_checked_with_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = write_scenario(
        dir.path(),
        &format!("kind = \"v4l2\"\ndevice = \"{DEV}\"\nformat = \"MJPEG\"\nwidth = 1280\nheight = 720\nfps = 30\nbuffers = 6\ntimeout_ms = 500\n\n[source.controls]\nexposure = 120\ngain = 4\nwhite_balance = 5000\nfocus = 30\n"),
        NO_MODEL,
    );
    let plan = lineside::source::check_source(&p).expect("valid camera section");
    assert!(plan.live, "cameras default to live");
    assert_eq!(plan.fps, 0.0, "a camera paces itself");
    let c = plan.v4l2.expect("camera settings");
    assert_eq!(c.format, CaptureFormat::Mjpeg);
    assert_eq!(
        (c.width, c.height, c.buffers, c.fps),
        (1280, 720, 6, Some(30.0))
    );
    assert_eq!(c.timeout, Duration::from_millis(500));
    assert_eq!(
        c.controls,
        [
            (ControlName::Exposure, 120),
            (ControlName::Gain, 4),
            (ControlName::WhiteBalance, 5000),
            (ControlName::Focus, 30)
        ]
    );

    // An unknown control name, a missing device, a bad fourcc: each with file:line:key.
    let p = write_scenario(
        dir.path(),
        "kind = \"v4l2\"\n\n[source.controls]\niso = 100\n",
        NO_MODEL,
    );
    let errs = lineside::source::check_source(&p).expect_err("iso is not a control");
    let text = lineside::config::Diagnostics(errs).to_string();
    assert!(text.contains("iso") && text.contains("exposure"), "{text}");
    assert!(text.contains("camera.toml:8"), "{text}");

    let p = write_scenario(dir.path(), "kind = \"v4l2\"\nformat = \"H264\"\n", NO_MODEL);
    let text = lineside::config::Diagnostics(lineside::source::check_source(&p).expect_err("H264"))
        .to_string();
    assert!(
        text.contains("camera.toml:6") && text.contains("MJPEG"),
        "{text}"
    );

    let p = write_scenario(
        dir.path(),
        "kind = \"v4l2\"\nwidth = 15\nformat = \"YUYV\"\n",
        NO_MODEL,
    );
    let text =
        lineside::config::Diagnostics(lineside::source::check_source(&p).expect_err("errors"))
            .to_string();
    assert!(text.contains("`source.device`: missing"), "{text}");
    assert!(
        text.contains("camera.toml:6: `source.width`: YUYV needs an even width"),
        "{text}"
    );

    let p = write_scenario(
        dir.path(),
        "kind = \"synthetic\"\ndevice = \"/dev/video0\"\nformat = \"MJPEG\"\n",
        NO_MODEL,
    );
    let text =
        lineside::config::Diagnostics(lineside::source::check_source(&p).expect_err("errors"))
            .to_string();
    assert!(
        text.contains("`source.device`: applies to kind = \"v4l2\" only"),
        "{text}"
    );
    assert!(
        text.contains("`source.format`: MJPEG is a camera format"),
        "{text}"
    );
}

/// `lineside devices` and `lineside record` through their library entry points, on the
/// camera thread (the emulated device exists only for threads under the filter; running the
/// binary would need the supervisor in another process).
#[test]
fn devices_and_record_commands_work_on_the_emulated_camera() {
    let (w, h) = (16u32, 8u32);
    let (f, frame) = padded(b"YUYV", w, h, w * 2, 0, h);
    let dir = tempfile::tempdir().expect("temp dir");
    let scn = write_scenario(
        dir.path(),
        &format!("kind = \"v4l2\"\ndevice = \"{DEV}\"\nformat = \"YUYV\"\nwidth = {w}\nheight = {h}\nfps = 30\n\n[source.controls]\ngain = 8\n"),
        NO_MODEL,
    );
    let out = dir.path().join("rec");
    let ((listing, rec), rep) = run_emulated(emu(vec![f], frame), WATCHDOG, |emu| {
        let listing = list_devices(&[PathBuf::from(DEV)]);
        let rec = record_scenario(&scn, 5, &out, &AtomicBool::new(false));
        assert!(emu.report().opens >= 2);
        (listing, rec)
    });
    let [(path, Ok(info))] = &listing[..] else {
        panic!("one device described")
    };
    assert_eq!(path, &PathBuf::from(DEV));
    assert!(
        info.render()
            .contains("format YUYV Emulated YUYV  -> format = \"YUYV\""),
        "{}",
        info.render()
    );
    let rec = rec.expect("record");
    assert_eq!(rec.frames, 5);
    assert_eq!(
        std::fs::metadata(&rec.raw).map(|m| m.len()).unwrap_or(0),
        5 * u64::from(w * 2 * h)
    );
    assert!(rec.sidecar.is_file());
    // The emulated UVC camera has no autogain control, so only the gain value is set.
    assert_eq!(rep.controls_set, [(CID_GAIN, 8)]);
    // A scenario that is not a camera is refused with its path.
    let other = write_scenario(dir.path(), "kind = \"synthetic\"\n", NO_MODEL);
    let err = record_scenario(&other, 1, &out, &AtomicBool::new(false)).expect_err("not a camera");
    assert!(err.to_string().contains("needs a camera scenario"), "{err}");
}

/// The whole pipeline (capture thread, inference workers, ordering, defect log) on an
/// emulated camera that is unplugged and replugged mid-run: the defect log and the summary
/// account for every sequence number exactly once.
#[test]
fn pipeline_survives_an_unplug_and_its_defect_log_accounts_for_every_sequence_number() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/efficientnet-lite0/efficientnet_lite0.onnx");
    let labels = root.join("models/efficientnet-lite0/imagenet_labels.txt");
    let (w, h) = (64u32, 48u32);
    let (f, frame) = padded(b"YUYV", w, h, w * 2, 0, h);
    let mut e = emu(vec![f], frame);
    e.fps = 60.0;
    e.unplug_after = Some(20);
    e.replug_after = Duration::from_millis(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let scn = write_scenario(
        dir.path(),
        &format!("kind = \"v4l2\"\ndevice = \"{DEV}\"\nformat = \"YUYV\"\nwidth = {w}\nheight = {h}\nbuffers = 4\ntimeout_ms = 500\n"),
        &format!(
            "[model]\npath = \"{}\"\nlabels = \"{}\"\nworkers = 1\n\n[preprocess]\nfit = \"stretch\"\n\n[head]\nkind = \"classify\"\n\n[output]\ndir = \"{}\"\n",
            model.display(),
            labels.display(),
            out.display()
        ),
    );
    let plan = lineside::scenario::check(&scn)
        .unwrap_or_else(|d| panic!("{}", lineside::config::Diagnostics(d)));
    let stop = Arc::new(AtomicBool::new(false));
    let (results, rep) = run_emulated(e, WATCHDOG, |_| {
        let opts = lineside::runner::RunOptions {
            progress: false,
            stop: Arc::clone(&stop),
            abort: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            cores: 2,
            station: Default::default(),
        };
        let stopper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500));
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let r = lineside::runner::run_scenarios(std::slice::from_ref(&plan), &opts);
        let _ = stopper.join();
        r
    });
    let summary = match results.into_iter().next() {
        Some(Ok(s)) => s,
        Some(Err(e)) => panic!("run failed: {e}"),
        None => panic!("no result"),
    };
    assert_eq!(rep.unplugs, 1);
    assert!(rep.opens >= 2, "the camera was not reopened");
    let log = std::fs::read_to_string(out.join("defects.jsonl")).expect("defect log");
    let mut seqs: Vec<u64> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON record");
            v["seq"].as_u64().expect("seq")
        })
        .collect();
    let logged = seqs.len() as u64;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len() as u64,
        logged,
        "duplicated sequence numbers in the defect log"
    );
    assert_eq!(summary.frames, logged);
    let total = summary.frames + summary.dropped;
    assert!(
        seqs.iter().all(|&s| s < total),
        "a sequence number beyond frames + dropped"
    );
    // Every number below the total is logged or counted as dropped (so none is lost).
    assert_eq!(total - logged, summary.dropped);
    eprintln!(
        "pipeline with an unplug: {logged} frames logged, {} dropped, {} opens, {} frames delivered by the device",
        summary.dropped, rep.opens, rep.delivered
    );
    assert!(
        logged > 25,
        "capture did not resume after the replug ({logged} frames logged)"
    );
    assert!(summary.errors == 0, "{} frames failed", summary.errors);
}
