//! The whole pipeline: ordering, one record per frame, summaries, several scenarios at
//! once, live drop-oldest accounting, and stopping without losing decided results.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lineside::runner::{run_scenarios, RunOptions};
use lineside::scenario::{self, ScenarioPlan};
use serde_json::Value;

fn plan(name: &str, out: &std::path::Path) -> ScenarioPlan {
    let mut p = scenario::check(&common::root().join("scenarios").join(name))
        .unwrap_or_else(|d| panic!("{d:?}"));
    p.output_dir = out.join(&p.id);
    p
}

fn records(plan: &ScenarioPlan) -> Vec<Value> {
    std::fs::read_to_string(plan.output_dir.join("defects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one whole JSON record"))
        .collect()
}

fn opts(stop: Arc<AtomicBool>) -> RunOptions {
    RunOptions {
        progress: false,
        stop,
        abort: Arc::new(AtomicBool::new(false)),
        cores: 2,
        station: Default::default(),
    }
}

#[test]
fn demo_and_synthetic_run_together_with_ordered_complete_logs() {
    let dir = tempfile::tempdir().unwrap();
    let demo = plan("demo.toml", dir.path());
    let mut synth = plan("demo-synthetic.toml", dir.path());
    synth.source.frames = 12;
    synth.source.fps = 0.0;
    synth.source.live = false;
    let plans = [demo, synth];
    let results = run_scenarios(&plans, &opts(Arc::new(AtomicBool::new(false))));
    let summaries: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();

    let demo_records = records(&plans[0]);
    assert_eq!(demo_records.len(), 7, "one record per photo");
    assert_eq!(summaries[0].frames, 7);
    assert_eq!(summaries[0].ok + summaries[0].ng, 7);
    for (i, r) in demo_records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64, "records are in sequence order");
        assert_eq!(r["scenario"], "demo");
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["model"]["id"], "efficientnet_lite0");
        assert_eq!(r["model"]["sha256"].as_str().unwrap().len(), 64);
        assert!(r["latency_ms"]["infer"].as_f64().unwrap() > 0.0);
        let verdict = r["verdict"].as_str().unwrap();
        let failed = r["failed"].as_array().unwrap();
        assert_eq!(
            verdict == "NG",
            !failed.is_empty(),
            "NG records name the failed rule: {r}"
        );
    }
    let by_item = |name: &str| {
        demo_records
            .iter()
            .find(|r| r["item"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_item("coffee.png")["verdict"], "OK");
    assert_eq!(by_item("coffee.png")["classes"][0]["label"], "espresso");
    let rocket = by_item("rocket.png");
    assert_eq!(rocket["verdict"], "NG");
    assert_eq!(rocket["failed"][0]["rule_kind"], "ok_classes");
    assert_eq!(rocket["failed"][0]["rule_name"], "ok_classes");

    let synth_records = records(&plans[1]);
    assert_eq!(synth_records.len(), 12);
    assert_eq!(summaries[1].frames, 12);
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(plans[0].output_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk["frames"], 7);
    assert_eq!(on_disk["ok"], summaries[0].ok);
}

#[test]
fn a_live_source_drops_the_oldest_frames_and_counts_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan("demo-synthetic.toml", dir.path());
    // Frames come far faster than two workers can classify 1280x720 YUYV.
    p.source.frames = 150;
    p.source.fps = 0.0;
    p.source.live = true;
    p.source.width = 640;
    p.source.height = 480;
    let summary = run_scenarios(
        std::slice::from_ref(&p),
        &opts(Arc::new(AtomicBool::new(false))),
    )
    .pop()
    .unwrap()
    .unwrap();
    let recs = records(&p);
    assert!(
        summary.dropped > 0,
        "a source that outruns inference must drop: {summary:?}"
    );
    assert_eq!(recs.len() as u64, summary.frames);
    assert_eq!(
        summary.frames + summary.dropped,
        150,
        "every frame is either logged or counted as dropped"
    );
    let seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing, no duplicates"
    );
}

#[test]
fn stopping_drains_frames_in_flight_and_loses_no_decided_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan("demo-synthetic.toml", dir.path());
    p.source.frames = 100_000;
    p.source.fps = 50.0;
    p.source.live = false;
    p.source.width = 640;
    p.source.height = 480;
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Ordering::SeqCst);
        })
    };
    let summary = run_scenarios(std::slice::from_ref(&p), &opts(stop))
        .pop()
        .unwrap()
        .unwrap();
    stopper.join().unwrap();
    let recs = records(&p);
    assert!(
        summary.frames > 5 && summary.frames < 100_000,
        "{summary:?}"
    );
    assert_eq!(
        recs.len() as u64,
        summary.frames,
        "the log holds every decided frame"
    );
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(
            r["seq"], i as u64,
            "no gaps: every captured frame was inspected"
        );
    }
}

/// The run's clock (`summary.json` `elapsed_s`, hence `fps`) starts at the first frame's
/// capture: opening the sessions is not counted (issue 11 item 2).
#[test]
fn the_run_clock_starts_at_the_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let plan = lineside::scenario::check(
        &common::root().join("scenarios/catalogue/10-screw-locking.toml"),
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let out = dir.path().join("out");
    let records = common::run_to_log(&plan, &out);
    let ms = |r: &serde_json::Value| {
        r["time"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond() as f64
    };
    let first = &records[0];
    let captured = ms(first) - first["latency_ms"]["total"].as_f64().unwrap();
    let last = records.iter().map(ms).fold(f64::MIN, f64::max);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let elapsed_ms = summary["elapsed_s"].as_f64().unwrap() * 1e3;
    // From the first capture to the last verdict, plus the summary's own writing (and the
    // log's millisecond rounding): nowhere near a session's start-up.
    assert!(
        elapsed_ms <= last - captured + 100.0,
        "elapsed {elapsed_ms} ms, first capture to last verdict {} ms",
        last - captured
    );
    assert!(elapsed_ms >= last - captured - 2.0);
}
