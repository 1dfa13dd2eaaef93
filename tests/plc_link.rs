//! lineside against a PLC: a real Modbus TCP server on 127.0.0.1 (tokio-modbus's, in
//! `plc_support`) plays the PLC: it sets part ids, bumps the trigger counter, reads each
//! result and acknowledges it (or does not), and is powered off and on mid-run.

mod plc_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use lineside::runner::{run_scenarios, RunOptions};
use lineside::scenario;
use lineside::sink::Summary;
use plc_support::{quantile_ms, records, summary, TestPlc};

/// One run at a time: the latency figures are not measured against another test's run.
static SERIAL: Mutex<()> = Mutex::new(());

/// `lineside run` of `scenario` in the background; stop it with the flag, then take its
/// summaries from the channel.
fn start(scenario: &Path) -> (Arc<AtomicBool>, mpsc::Receiver<Vec<Summary>>) {
    let plan = scenario::check(scenario).unwrap_or_else(|d| panic!("{d:?}"));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let opts = RunOptions {
        progress: false,
        stop: Arc::clone(&stop),
        abort: Arc::new(AtomicBool::new(false)),
        cores: 2,
        station: Default::default(),
    };
    std::thread::spawn(move || {
        let out = run_scenarios(std::slice::from_ref(&plan), &opts);
        let _ = tx.send(out.into_iter().map(|r| r.unwrap()).collect());
    });
    (stop, rx)
}

fn finish(stop: &AtomicBool, done: &mpsc::Receiver<Vec<Summary>>) -> Summary {
    stop.store(true, Ordering::SeqCst);
    let mut s = done
        .recv_timeout(Duration::from_secs(30))
        .expect("the run ends within 30 s of stop");
    s.remove(0)
}

/// The real `lineside run` of `scenario`.
fn spawn_lineside(scenario: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["run", "--no-progress", scenario.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C, as systemd's stop would; the run must end cleanly within 30 s. Its stderr.
fn interrupt(mut child: std::process::Child) -> String {
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("lineside did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

fn code_of(verdict: &serde_json::Value) -> u16 {
    match verdict.as_str().unwrap() {
        "OK" => 1,
        "NG" => 2,
        "ERROR" => 3,
        "TIMEOUT" => 4,
        other => panic!("verdict {other}"),
    }
}

#[test]
fn a_thousand_triggered_parts_each_get_one_acknowledged_result_with_their_part_id() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let plc = TestPlc::start(0, true);
    let dir = tempfile::tempdir().unwrap();
    let (stop, done) = start(&plc_support::scenario(dir.path(), plc.port(), "", ""));
    plc.wait_for_client(Duration::from_secs(30));
    const PARTS: u32 = 1000;
    let mut latencies = Vec::new();
    for i in 0..PARTS {
        let id = 100_001 + i;
        let fired = plc.trigger(id);
        let seen = plc.wait_result(i as usize + 1, Duration::from_secs(10));
        latencies.push(seen.at - fired);
        assert_eq!(seen.part_id, id, "result {} echoes its part id", i + 1);
        assert_eq!(u32::from(seen.sequence), i + 1, "result sequence");
    }
    let s = finish(&stop, &done);
    let seen = plc.results();
    assert_eq!(seen.len(), PARTS as usize, "exactly one result per trigger");
    let records = records(dir.path());
    assert_eq!(records.len(), PARTS as usize);
    for (k, (r, s)) in records.iter().zip(&seen).enumerate() {
        assert_eq!(r["seq"], k as u64);
        assert_eq!(r["part_id"], 100_001 + k as u64);
        assert!(r["triggered"].is_string());
        assert_eq!(
            s.code,
            code_of(&r["verdict"]),
            "part {k}: PLC code = logged verdict"
        );
    }
    let (ok, ng) = (s.ok, s.ng);
    assert!(
        ok > 0 && ng > 0,
        "both codes were exercised: {ok} OK, {ng} NG"
    );
    let plc_stats = s.plc.expect("the summary counts the PLC link");
    assert_eq!(plc_stats.triggers, u64::from(PARTS));
    assert_eq!(plc_stats.results_written, u64::from(PARTS));
    assert_eq!(plc_stats.acks, u64::from(PARTS));
    assert_eq!(plc_stats.acks_missed, 0);
    assert_eq!(summary(dir.path())["plc"]["acks"], u64::from(PARTS));
    latencies.sort();
    println!(
        "PLC trigger -> result over {PARTS} parts (cover-glass segment model, 1 worker, poll 1 ms): \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {ok} OK, {ng} NG; \
         capture -> verdict p50 {:?} ms, p99 {:?} ms, stages p50 {:?}",
        quantile_ms(&latencies, 0.5),
        quantile_ms(&latencies, 0.99),
        quantile_ms(&latencies, 1.0),
        s.latency_ms.p50,
        s.latency_ms.p99,
        s.stage_p50_ms,
    );
}

#[test]
fn a_plc_restart_mid_run_is_survived_with_a_reconnect() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let plc = TestPlc::start(0, true);
    let port = plc.port();
    let dir = tempfile::tempdir().unwrap();
    let (stop, done) = start(&plc_support::scenario(dir.path(), port, "", ""));
    plc.wait_for_client(Duration::from_secs(30));
    for i in 0..10u32 {
        plc.trigger(1000 + i);
        plc.wait_result(i as usize + 1, Duration::from_secs(10));
    }
    // Power off; the PLC is away for a while, then comes back empty on the same port.
    plc.stop();
    std::thread::sleep(Duration::from_millis(300));
    let plc = TestPlc::start(port, true);
    let back = Instant::now();
    plc.wait_for_client(Duration::from_secs(15));
    println!("PLC link back {:?} after the PLC restarted", back.elapsed());
    // The last result before the power-off may not have been seen acknowledged: it is
    // written again, with its own sequence, before anything new.
    let resent = usize::from(
        plc.results()
            .first()
            .is_some_and(|r| (r.sequence, r.part_id) == (10, 1009)),
    );
    for i in 0..10u32 {
        plc.trigger(2000 + i);
        let seen = plc.wait_result(resent + i as usize + 1, Duration::from_secs(10));
        assert_eq!(seen.part_id, 2000 + i);
        assert_eq!(seen.sequence, 11 + i as u16, "the result sequence goes on");
    }
    let s = finish(&stop, &done);
    assert_eq!(s.frames, 20);
    let stats = s.plc.unwrap();
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert_eq!(stats.results_written, 20 + resent as u64);
    assert_eq!(stats.acks_missed, 0);
    let ids: Vec<u64> = records(dir.path())
        .iter()
        .map(|r| r["part_id"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = (1000..1010).chain(2000..2010).collect();
    assert_eq!(ids, want);
}

#[test]
fn parts_past_their_deadline_are_timeout_in_sequence_and_the_plc_gets_the_fail_safe_code() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let plc = TestPlc::start(0, true);
    let dir = tempfile::tempdir().unwrap();
    // 1 ms from trigger to verdict: no inspection (PNG decode + model) makes that.
    let path = plc_support::scenario(dir.path(), plc.port(), "deadline_ms = 1", "");
    let (stop, done) = start(&path);
    plc.wait_for_client(Duration::from_secs(30));
    for i in 0..5u32 {
        plc.trigger(500 + i);
        let seen = plc.wait_result(i as usize + 1, Duration::from_secs(10));
        assert_eq!(seen.code, 4, "TIMEOUT code (reject by default)");
        assert_eq!(seen.part_id, 500 + i);
    }
    let s = finish(&stop, &done);
    assert_eq!((s.timeouts, s.frames, s.ok + s.ng), (5, 5, 0));
    assert_eq!(
        s.late_verdicts, 5,
        "each real verdict came late and was discarded"
    );
    for (k, r) in records(dir.path()).iter().enumerate() {
        assert_eq!(r["seq"], k as u64);
        assert_eq!(r["verdict"], "TIMEOUT");
        assert_eq!(r["failed"][0]["rule_kind"], "deadline");
        assert_eq!(r["part_id"], 500 + k as u64);
    }
}

#[test]
fn a_missed_acknowledge_raises_the_alarm_in_the_log_and_the_summary() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // This PLC reads results but never writes the acknowledge back.
    let plc = TestPlc::start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let path = plc_support::scenario(dir.path(), plc.port(), "", "ack_timeout_ms = 50");
    let child = spawn_lineside(&path);
    plc.wait_for_client(Duration::from_secs(30));
    for i in 0..2u32 {
        plc.trigger(700 + i);
        plc.wait_result(i as usize + 1, Duration::from_secs(10));
    }
    // Let the second acknowledge run out too, then stop as systemd would.
    std::thread::sleep(Duration::from_millis(200));
    let stderr = interrupt(child);
    assert_eq!(
        stderr.matches("plc_ack_missed").count(),
        2,
        "one alarm per missed acknowledge:\n{stderr}"
    );
    assert!(
        stderr.contains("did not acknowledge result 1 (part 700)"),
        "{stderr}"
    );
    let s = summary(dir.path());
    assert_eq!(s["plc"]["acks_missed"], 2);
    assert_eq!(s["plc"]["acks"], 0);
    assert_eq!(
        plc.results().len(),
        2,
        "a result is not written over an unacknowledged one"
    );
}

#[test]
fn a_plc_trigger_without_a_plc_section_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = plc_support::scenario(dir.path(), 502, "", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.find("[plc]").unwrap();
    let end = text.find("[output]").unwrap();
    std::fs::write(&path, format!("{}{}", &text[..cut], &text[end..])).unwrap();
    let errs = scenario::check(&path).unwrap_err();
    let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
    assert!(
        errs.iter()
            .any(|d| d.key == "trigger.mode" && d.line.is_some()),
        "{text:?}"
    );
    assert!(errs.iter().any(|d| d.key == "output.sinks"), "{text:?}");
}

/// The PLC scenario without its PLC: free-running, `[trigger]` set by `trigger`.
fn free_running(dir: &Path, trigger: &str) -> std::path::PathBuf {
    let path = plc_support::scenario(dir, 502, trigger, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let (cut, end) = (text.find("[plc]").unwrap(), text.find("[output]").unwrap());
    let text = format!("{}{}", &text[..cut], &text[end..])
        .replace("mode = \"plc\"", "mode = \"free\"")
        .replace("repeat = 200", "repeat = 1")
        .replace(", \"plc\"]", "]");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_free_running_scenario_with_a_deadline_logs_timeout_in_sequence_without_a_plc() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (stop, done) = start(&free_running(dir.path(), "deadline_ms = 1"));
    let mut s = done
        .recv_timeout(Duration::from_secs(60))
        .expect("8 frames in 60 s");
    drop(stop);
    let s = s.remove(0);
    assert_eq!((s.frames, s.timeouts, s.late_verdicts), (8, 8, 8));
    assert!(s.plc.is_none());
    for (k, r) in records(dir.path()).iter().enumerate() {
        assert_eq!(r["seq"], k as u64);
        assert_eq!(r["verdict"], "TIMEOUT");
        assert!(r["triggered"].is_string(), "the deadline ran from capture");
        assert!(r.get("part_id").is_none(), "no PLC, no part id");
    }
}

#[test]
fn a_free_running_scenario_without_a_deadline_logs_as_before() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (_stop, done) = start(&free_running(dir.path(), ""));
    let s = done
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .remove(0);
    assert_eq!((s.frames, s.ok + s.ng, s.timeouts), (8, 8, 0));
    for r in records(dir.path()) {
        assert!(r.get("triggered").is_none() && r.get("part_id").is_none());
    }
    let summary = summary(dir.path());
    assert!(summary.get("timeouts").is_none() && summary.get("plc").is_none());
}

#[test]
fn overlapping_registers_and_a_plc_nothing_uses_are_refused_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = plc_support::scenario(dir.path(), 502, "", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let check = |text: String| {
        std::fs::write(&path, text).unwrap();
        let errs = scenario::check(&path).unwrap_err();
        let shown: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        (errs, shown)
    };
    let (errs, shown) = check(text.replace("ack_register = 20", "ack_register = 12"));
    assert!(
        errs.iter().any(|d| d.key == "plc.ack_register"
            && d.line.is_some()
            && d.message.contains("overlap result_register")),
        "{shown:?}"
    );
    let unused = text
        .replace("mode = \"plc\"", "mode = \"free\"")
        .replace(", \"plc\"]", "]");
    let (errs, shown) = check(unused);
    assert!(
        errs.iter()
            .any(|d| d.key == "plc" && d.line.is_some() && d.message.contains("nothing uses it")),
        "{shown:?}"
    );
}

#[test]
fn a_full_result_queue_drops_with_an_alarm_and_never_blocks_inspection() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A PLC that stops taking results: the first waits 2 s for its acknowledge, the queue
    // holds one more, the third has nowhere to go.
    let plc = TestPlc::start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let path = plc_support::scenario(
        dir.path(),
        plc.port(),
        "",
        "ack_timeout_ms = 2000\nqueue = 1",
    );
    let child = spawn_lineside(&path);
    plc.wait_for_client(Duration::from_secs(30));
    let log = dir.path().join("out/defects.jsonl");
    let logged = || std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
    for i in 0..3u32 {
        plc.trigger(900 + i);
        let until = Instant::now() + Duration::from_secs(10);
        while logged() < i as usize + 1 {
            assert!(
                Instant::now() < until,
                "part {i} was not inspected: capture blocked?"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let stderr = interrupt(child);
    assert!(stderr.contains("plc_queue_full"), "{stderr}");
    let s = summary(dir.path());
    assert_eq!(s["frames"], 3, "every part was inspected and logged");
    assert_eq!(s["plc"]["results_dropped"], 1, "{s}");
    assert_eq!(s["plc"]["results_written"], 2, "{s}");
}
