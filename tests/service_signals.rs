//! Issue 12, service behaviour, on a real `lineside run` with a live synthetic camera:
//! SIGTERM drains and exits 0; SIGHUP swaps a changed scenario in at a frame boundary,
//! refuses a broken one, and reopens a rotated defect log.

mod common;

use common::service::{assert_no_seq_missing, records, Service};

#[test]
fn sigterm_mid_run_on_a_live_source_exits_0_with_every_decided_part_logged() {
    let mut s = Service::start(5, |t| t + "summary_every_s = 1\n", &[]);
    // summary.json is rewritten while the run goes on, not only at the end.
    s.wait_for("a summary written mid-run", || {
        std::fs::read(s.out.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["frames"].as_u64() > Some(0))
    });
    s.wait_for("10 records", || records(&s.log()).len() >= 10);
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "{}", s.stderr());
    let records = records(&s.log());
    assert_no_seq_missing(&records);
    let summary = s.summary();
    assert_eq!(summary["frames"], records.len() as u64, "{summary}");
    assert_eq!(summary["dropped"], 0, "{summary}");
}

/// The line of `needle` in `text`, counted from 1.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn sighup_swaps_a_changed_rule_at_a_frame_boundary_and_refuses_a_broken_file() {
    // min_score 0.2 rejects every frame of this pattern (top score ~0.08); 0.0 passes all.
    let mut s = Service::start(5, |t| t, &[]);
    let ng = |r: &serde_json::Value| r["verdict"] == "NG";
    s.wait_for("5 NG records", || records(&s.log()).len() >= 5);
    assert!(records(&s.log()).iter().all(ng), "the old rule rejects");

    let text = std::fs::read_to_string(&s.scenario).unwrap();
    std::fs::write(
        &s.scenario,
        text.replace("min_score = 0.2", "min_score = 0.0"),
    )
    .unwrap();
    s.signal(libc::SIGHUP);
    let ok_count = || {
        records(&s.log())
            .iter()
            .filter(|r| r["verdict"] == "OK")
            .count()
    };
    s.wait_for("5 records under the new rule", || ok_count() >= 5);

    // A broken file: refused with its file:line, the running plan goes on.
    let text = std::fs::read_to_string(&s.scenario).unwrap();
    let broken = text.replace("min_score = 0.0", "min_score = 2.0");
    std::fs::write(&s.scenario, &broken).unwrap();
    let before = records(&s.log()).len();
    s.signal(libc::SIGHUP);
    s.wait_for("the refusal", || s.stderr().contains("reload refused"));
    s.wait_for("5 more records", || records(&s.log()).len() >= before + 5);
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "{}", s.stderr());

    let stderr = s.stderr();
    let located = format!(
        "{}:{}",
        s.scenario.display(),
        line_of(&broken, "min_score = 2.0")
    );
    assert!(
        stderr.contains(&located) && stderr.contains("must be a probability"),
        "the broken file's error names {located}:\n{stderr}"
    );
    let records = records(&s.log());
    assert_no_seq_missing(&records);
    // One boundary: NG before it, OK from it on (the refused file changed nothing).
    let swap = records.iter().position(|r| r["verdict"] == "OK").unwrap();
    assert!(swap > 0);
    assert!(records[..swap].iter().all(ng));
    assert!(
        records[swap..].iter().all(|r| r["verdict"] == "OK"),
        "every record after the swap follows the new rule"
    );
    assert!(
        stderr.contains(&format!(
            "plan 2 (reloaded) decides frames from seq {swap} on"
        )),
        "the log names the swap's sequence number {swap}:\n{stderr}"
    );
    assert_eq!(s.summary()["frames"], records.len() as u64);
    println!(
        "hot reload: {} records, plan 2 from seq {swap}, broken file refused",
        records.len()
    );
}

#[test]
fn sighup_reopens_a_rotated_defect_log_and_loses_nothing() {
    let mut s = Service::start(5, |t| t, &[]);
    s.wait_for("5 records", || records(&s.log()).len() >= 5);
    // logrotate's `create` mode: rename, then tell the process.
    let rotated = s.out.join("defects.jsonl.1");
    std::fs::rename(s.log(), &rotated).unwrap();
    s.signal(libc::SIGHUP);
    s.wait_for("5 records in the new log", || records(&s.log()).len() >= 5);
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "{}", s.stderr());
    let old = records(&rotated);
    let new = records(&s.log());
    assert!(!old.is_empty() && !new.is_empty());
    let both: Vec<_> = old.iter().chain(&new).cloned().collect();
    assert_no_seq_missing(&both);
    assert_eq!(s.summary()["frames"], both.len() as u64);
}

#[test]
fn sighup_refuses_a_source_change_that_needs_a_restart_and_runs_on() {
    let mut s = Service::start(5, |t| t, &[]);
    s.wait_for("3 records", || records(&s.log()).len() >= 3);
    let text = std::fs::read_to_string(&s.scenario).unwrap();
    // A valid file, but a new frame rate means a new source: only a restart applies it.
    std::fs::write(
        &s.scenario,
        text.replace("fps = 5", "fps = 6")
            .replace("min_score = 0.2", "min_score = 0.0"),
    )
    .unwrap();
    s.signal(libc::SIGHUP);
    s.wait_for("the refusal", || s.stderr().contains("reload refused"));
    let before = records(&s.log()).len();
    s.wait_for("3 more records", || records(&s.log()).len() >= before + 3);
    assert_eq!(s.stop().code(), Some(0), "{}", s.stderr());
    let stderr = s.stderr();
    assert!(
        stderr.contains("changes [source], which only a restart applies"),
        "{stderr}"
    );
    let records = records(&s.log());
    assert_no_seq_missing(&records);
    assert!(
        records.iter().all(|r| r["verdict"] == "NG"),
        "the rule change in the refused file was not applied either"
    );
}
