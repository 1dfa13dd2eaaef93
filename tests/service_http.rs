//! Issue 12, health and metrics, on a real `lineside run`: `/metrics` read by a
//! Prometheus text-format parser agrees with the defect log, `/healthz` answers JSON per
//! scenario, and systemd's notify protocol arrives on a real unix datagram socket.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::service::{records, Service, DEADLINE};

/// GET `path` over plain HTTP/1.0: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

/// The endpoint's address, as `lineside run` prints it.
fn endpoint(s: &Service) -> String {
    let mut addr = None;
    s.wait_for("the endpoint's address", || {
        addr = s
            .stderr()
            .lines()
            .find_map(|l| l.strip_prefix("health and metrics: http://"))
            .and_then(|r| r.split('/').next())
            .map(str::to_owned);
        addr.is_some()
    });
    addr.unwrap()
}

fn number(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        other => panic!("not a number: {other:?}"),
    }
}

/// Sums of the samples named `metric`, keyed by the value of `label` (one scenario here).
fn by_label(scrape: &prometheus_parse::Scrape, metric: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in scrape.samples.iter().filter(|s| s.metric == metric) {
        let key = s.labels.get(label).unwrap_or("").to_string();
        *out.entry(key).or_default() += number(&s.value);
    }
    out
}

/// What the defect log says the counters must be: frames, per verdict, per failed rule.
fn log_counts(
    records: &[serde_json::Value],
) -> (f64, BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut verdicts: BTreeMap<String, f64> = ["OK", "NG", "ERROR", "TIMEOUT"]
        .iter()
        .map(|v| (v.to_string(), 0.0))
        .collect();
    let mut rules = BTreeMap::new();
    for r in records {
        *verdicts
            .entry(r["verdict"].as_str().unwrap().to_string())
            .or_default() += 1.0;
        for f in r["failed"].as_array().unwrap() {
            *rules
                .entry(f["rule_kind"].as_str().unwrap().to_string())
                .or_default() += 1.0;
        }
    }
    (records.len() as f64, verdicts, rules)
}

#[test]
fn metrics_parsed_as_prometheus_text_equal_the_defect_log() {
    let mut s = Service::start(
        10,
        |t| t + "\n[service]\nlisten = \"127.0.0.1:0\"\n\n[evidence]\n",
        &[],
    );
    let addr = endpoint(&s);
    // NG under min_score 0.2, then OK after a reload to 0.0: both verdicts and a rule.
    s.wait_for("5 records", || records(&s.log()).len() >= 5);
    let text = std::fs::read_to_string(&s.scenario).unwrap();
    std::fs::write(
        &s.scenario,
        text.replace("min_score = 0.2", "min_score = 0.0"),
    )
    .unwrap();
    s.signal(libc::SIGHUP);
    s.wait_for("5 OK records", || {
        records(&s.log())
            .iter()
            .filter(|r| r["verdict"] == "OK")
            .count()
            >= 5
    });
    // Records arrive every 100 ms: read the log on both sides of a scrape and compare
    // when nothing was decided in between.
    let start = Instant::now();
    let (scrape, records) = loop {
        let before = records(&s.log());
        let (code, body) = get(&addr, "/metrics");
        let after = records(&s.log());
        assert_eq!(code, 200, "{body}");
        if before.len() == after.len() {
            let lines = body.lines().map(|l| Ok(l.to_string()));
            break (prometheus_parse::Scrape::parse(lines).unwrap(), after);
        }
        assert!(start.elapsed() < DEADLINE, "no quiet moment to compare in");
    };
    let (frames, verdicts, rules) = log_counts(&records);
    assert!(verdicts["OK"] > 0.0 && verdicts["NG"] > 0.0, "{verdicts:?}");
    let scenario = by_label(&scrape, "lineside_frames_total", "scenario");
    assert_eq!(scenario.get("demo-synthetic"), Some(&frames), "frames");
    assert_eq!(
        by_label(&scrape, "lineside_verdicts_total", "verdict"),
        verdicts
    );
    assert_eq!(
        by_label(&scrape, "lineside_failed_rules_total", "rule"),
        rules
    );
    // Dropped frames (a busy test machine) have a sequence number and no record: the
    // counter equals the log's gaps.
    let last = records.last().unwrap()["seq"].as_u64().unwrap();
    let gaps = (last + 1) as f64 - frames;
    assert_eq!(
        by_label(&scrape, "lineside_dropped_total", "scenario").get("demo-synthetic"),
        Some(&gaps)
    );
    assert_eq!(
        by_label(&scrape, "lineside_plan_generation", "scenario").get("demo-synthetic"),
        Some(&2.0),
        "one reload"
    );
    // Every inspected frame is in each stage's latency histogram.
    let stages: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "lineside_stage_seconds")
        .collect();
    assert_eq!(stages.len(), 4, "preprocess, infer, head, total");
    for h in stages {
        match &h.value {
            prometheus_parse::Value::Histogram(buckets) => {
                let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
                assert_eq!(inf.count, frames, "{:?}", h.labels);
            }
            other => panic!("stage_seconds is not a histogram: {other:?}"),
        }
    }
    // Evidence: each NG record queued its image (or dropped it, counted at once); the
    // writer may still be writing the last ones.
    let evidence = by_label(&scrape, "lineside_evidence_images_total", "result");
    let due = records.iter().filter(|r| r["evidence"].is_object()).count() as f64;
    assert_eq!(due, verdicts["NG"] + verdicts["ERROR"], "{evidence:?}");
    let dropped = |why: &str| {
        records
            .iter()
            .filter(|r| r["evidence"]["dropped"] == why)
            .count() as f64
    };
    assert_eq!(evidence["dropped_queue_full"], dropped("queue full"));
    assert_eq!(evidence["dropped_no_buffer"], dropped("no free buffer"));
    let settled: f64 = [
        "written",
        "failed",
        "dropped_queue_full",
        "dropped_no_buffer",
    ]
    .iter()
    .map(|k| evidence[*k])
    .sum();
    assert!(settled <= due && settled > 0.0, "{evidence:?} of {due} due");
    assert_eq!(s.stop().code(), Some(0));
    println!("/metrics agreed with {} defect-log records", records.len());
}

#[test]
fn healthz_answers_json_per_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, out) = common::service::scenario_text(dir.path(), 10, |t| t);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args([
            "run",
            "--no-progress",
            "--listen",
            "0",
            scenario.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The address line comes before any record: read stderr up to it.
    let mut err = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut byte = [0u8; 1];
    while !seen.contains("/healthz") {
        assert_eq!(err.read(&mut byte).unwrap(), 1, "stderr ended: {seen}");
        seen.push(byte[0] as char);
    }
    let addr = seen
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "a port alone means loopback: {addr}"
    );
    let start = Instant::now();
    while records(&out.join("defects.jsonl")).len() < 3 {
        assert!(start.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = get(&addr, "/healthz");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(health["healthy"], true);
    let sc = &health["scenarios"][0];
    assert_eq!(sc["id"], "demo-synthetic");
    assert_eq!(sc["source_alive"], true);
    assert_eq!(sc["started"], true);
    assert!(sc["last_frame_age_s"].as_f64().unwrap() < 5.0, "{body}");
    assert!(
        sc["queue_depth"].is_u64() && sc["links"].is_array(),
        "{body}"
    );
    assert_eq!(get(&addr, "/nothing").0, 404);
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sd_notify_ready_watchdog_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut s = Service::start(
        10,
        |t| t,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // 0.4 s: a ping at least every 0.2 s.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got: Vec<String> = Vec::new();
    let receive_until = |want: &str, got: &mut Vec<String>| {
        let start = Instant::now();
        while !got.iter().any(|m| m.lines().any(|l| l == want)) {
            assert!(start.elapsed() < DEADLINE, "no {want}; got {got:?}");
            let mut buf = [0u8; 4096];
            if let Ok(n) = socket.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    };
    receive_until("READY=1", &mut got);
    assert!(
        records(&s.log()).is_empty() || !got.is_empty(),
        "READY is sent once the pipeline runs"
    );
    receive_until("WATCHDOG=1", &mut got);
    let pings = |got: &[String]| got.iter().filter(|m| m.trim() == "WATCHDOG=1").count();
    let pings_before = pings(&got);
    std::thread::sleep(Duration::from_millis(600));
    let status = s.stop();
    receive_until("STOPPING=1", &mut got);
    assert_eq!(status.code(), Some(0), "{}", s.stderr());
    assert!(
        pings(&got) > pings_before,
        "the watchdog keeps pinging: {got:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains("STATUS=running 1 scenario(s)")),
        "{got:?}"
    );
}

#[test]
fn scenarios_run_together_must_agree_on_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, port) in [("a", 9101), ("b", 9102)] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let (scenario, _) = common::service::scenario_text(&sub, 10, |t| {
            t.replace("id = \"demo-synthetic\"", &format!("id = \"{name}\""))
                + &format!("\n[service]\nlisten = \"127.0.0.1:{port}\"\n")
        });
        files.push(scenario);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lineside"))
        .arg("validate")
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&files[1]).unwrap();
    let line = text.lines().position(|l| l.starts_with("listen")).unwrap() + 1;
    let located = format!("{}:{line}: `service.listen`", files[1].display());
    assert!(stderr.contains(&located), "{located} in:\n{stderr}");
}
