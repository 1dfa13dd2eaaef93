//! MQTT results with a real mosquitto on loopback: one message per part, in order, equal
//! to the defect-log line; a retained `online`/`offline` status with a last will (a
//! `kill -9` leaves `offline`); stats; user/password and TLS connections.

mod mqtt_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use mqtt_support::*;

const FRAMES: u64 = 60;

/// Results equal the defect log line by line, in order; status ends `offline`, retained.
fn check_run(dir: &std::path::Path, sub: &Subscriber) {
    let lines = defect_lines(dir);
    assert_eq!(lines.len() as u64, FRAMES);
    assert!(
        sub.wait_for(Duration::from_secs(10), |m| {
            m.iter().filter(|m| m.topic.ends_with("/result")).count() >= lines.len()
        }),
        "results missing"
    );
    let results = sub.on("/result");
    assert_eq!(results.len(), lines.len(), "one message per part");
    for (m, line) in results.iter().zip(&lines) {
        assert_eq!(m.topic, "lineside/st1/demo-synthetic/result");
        assert_eq!(m.text(), line, "the payload is the defect-log record");
    }
    let status: Vec<String> = sub
        .on("/status")
        .iter()
        .map(|m| m.text().to_string())
        .collect();
    assert_eq!(
        status.first().map(String::as_str),
        Some("online"),
        "{status:?}"
    );
    assert_eq!(
        status.last().map(String::as_str),
        Some("offline"),
        "{status:?}"
    );
    assert!(spool_segments(dir).is_empty(), "the spool drained");
}

#[test]
fn results_arrive_in_order_with_status_and_stats_and_a_last_will_on_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(tmp.path(), free_port(), "");
    let sub = Subscriber::start(broker.port, "lineside/#", "test-results");
    let t = Instant::now();
    let scenario = scenario(tmp.path(), FRAMES, 0, broker.port, "");
    run_to_end(&scenario, Duration::from_secs(60));
    println!("{FRAMES} parts run and sent in {:.2?}", t.elapsed());
    check_run(tmp.path(), &sub);
    let mut ms: Vec<f64> = sub.on("/result").iter().map(delivery_ms).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "decided -> received by a subscriber: median {:.1} ms, max {:.1} ms over {} results",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len()
    );

    let stats = sub.on("/stats");
    assert!(!stats.is_empty(), "no stats");
    let last = stats.last().unwrap().json();
    let counted: u64 = ["OK", "NG", "ERROR", "TIMEOUT"]
        .iter()
        .map(|k| last["counts"][k].as_u64().unwrap())
        .sum();
    assert_eq!(counted, FRAMES, "{last}");
    assert_eq!(last["spool_depth"], 0, "{last}");
    assert_eq!(last["spool_dropped"], 0, "{last}");

    // A late subscriber gets the retained status: offline after a clean end.
    let late = Subscriber::start(broker.port, "lineside/+/+/status", "test-late");
    assert!(late.wait_for(Duration::from_secs(5), |m| !m.is_empty()));
    let m = &late.on("/status")[0];
    assert!(m.retain && m.text() == "offline", "{m:?}");
    drop(late);

    // kill -9 in the middle of a run: the broker publishes the last will, `offline`.
    let long = scenario_in(tmp.path(), "long", 100_000, 25, broker.port);
    let before = sub.on("/status").len();
    let mut child = lineside(&long)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let online = sub.wait_for(Duration::from_secs(20), |m| {
        m.iter()
            .filter(|m| m.topic.ends_with("/status"))
            .skip(before)
            .any(|m| m.payload == b"online")
    });
    let killed_at = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(online, "lineside never said online");
    assert!(
        sub.wait_for(Duration::from_secs(10), |m| {
            m.iter()
                .filter(|m| m.topic.ends_with("/status"))
                .skip(before)
                .last()
                .is_some_and(|m| m.payload == b"offline")
        }),
        "no last will after kill -9"
    );
    println!(
        "last will `offline` {:.2?} after kill -9",
        killed_at.elapsed()
    );
}

/// A second scenario folder under `tmp`.
fn scenario_in(
    tmp: &std::path::Path,
    name: &str,
    frames: u64,
    fps: u32,
    port: u16,
) -> std::path::PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    scenario(&dir, frames, fps, port, "")
}

#[test]
fn a_broker_with_passwords_takes_the_right_one_and_a_wrong_one_keeps_results_spooled() {
    let tmp = tempfile::tempdir().unwrap();
    let pwfile = tmp.path().join("passwords");
    let ok = std::process::Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&pwfile)
        .args(["line1", "s3cret"])
        .status()
        .expect("mosquitto_passwd (Debian mosquitto): run scripts/setup.sh");
    assert!(ok.success());
    let port = free_port();
    // The test's subscriber comes in anonymously on a second listener.
    let sub_port = free_port();
    let broker = Broker::start_conf(
        tmp.path(),
        port,
        &format!(
            "per_listener_settings true\nlistener {port} 127.0.0.1\nallow_anonymous false\n\
             password_file {}\nlistener {sub_port} 127.0.0.1\nallow_anonymous true\n",
            pwfile.display()
        ),
    );
    let sub = Subscriber::start(sub_port, "lineside/#", "test-auth");

    std::fs::write(tmp.path().join("pw.txt"), "s3cret\n").unwrap();
    let good = tmp.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    let s = scenario(
        &good,
        FRAMES,
        0,
        broker.port,
        "username = \"line1\"\npassword_file = \"../pw.txt\"",
    );
    run_to_end(&s, Duration::from_secs(60));
    check_run(&good, &sub);

    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let s = scenario(
        &bad,
        20,
        0,
        broker.port,
        "username = \"line1\"\npassword = \"wrong\"\nflush_timeout_s = 1",
    );
    let err = run_to_end(&s, Duration::from_secs(60));
    assert!(err.contains("stay in the spool"), "{err}");
    assert!(
        !spool_segments(&bad).is_empty(),
        "refused results must stay spooled"
    );
}

#[test]
fn results_go_over_tls_to_a_broker_with_a_self_signed_ca() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        println!("SKIPPED: openssl is not installed, so no certificates can be made");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
    sh("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr");
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out server.pem -extfile ext.cnf");
    let tls_port = free_port();
    let port = free_port();
    let broker = Broker::start(
        d,
        port,
        &format!(
            "listener {tls_port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            d.display()
        ),
    );
    let sub = Subscriber::start(broker.port, "lineside/#", "test-tls");
    let run = d.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let s = scenario(&run, FRAMES, 0, tls_port, "ca_file = \"../ca.pem\"");
    run_to_end(&s, Duration::from_secs(60));
    check_run(&run, &sub);
    // The results came in through the TLS listener (a plain connection would be refused).
    let log = broker.log();
    assert!(
        log.lines().any(
            |l| l.contains("New connection from") && l.contains(&format!("on port {tls_port}"))
        ),
        "{log}"
    );
}
