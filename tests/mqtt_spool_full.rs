//! A spool that fills while the broker is down drops its oldest results, counts them (stats,
//! a warning, an `mqtt_spool_full` alarm published on `.../alarm`), and sends the rest in
//! order once the broker is back: every part either arrives or is counted as dropped.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;

const PARTS: u64 = 400;

#[test]
fn a_full_spool_drops_the_oldest_counts_them_and_raises_an_alarm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), free_port(), "");
    // Subscribe first, so the persistent session queues what comes while we are away.
    let sub = Subscriber::start(broker.port, "lineside/#", "test-full");
    broker.stop();
    // 64 KiB holds about 90 results; 400 come at 50/s with the broker down for 5 s.
    let s = scenario(
        tmp.path(),
        PARTS,
        50,
        broker.port,
        "spool_max_bytes = 65536\nflush_timeout_s = 10",
    );
    let run = Running::start(&s);
    std::thread::sleep(Duration::from_secs(5));
    broker.restart();
    let stderr = run.finish(Duration::from_secs(60));
    assert!(stderr.contains("MQTT spool full"), "no warning: {stderr}");
    assert!(
        sub.wait_for(Duration::from_secs(10), |m| {
            m.iter()
                .any(|m| m.topic.ends_with("/stats") && decided(&m.json()) == PARTS)
        }),
        "no final stats"
    );
    let stats = sub.on("/stats").last().unwrap().json();
    let dropped = stats["spool_dropped"].as_u64().unwrap();
    let (firsts, dups) = dedupe(&result_keys(&sub.messages.lock().unwrap()));
    let seqs: Vec<u64> = firsts.iter().map(|(_, s)| *s).collect();
    println!(
        "spool full: {dropped} dropped, {} arrived, {dups} repeats; stats {stats}",
        seqs.len()
    );
    assert!(dropped > 0, "{stats}");
    // The oldest went; what is left arrives whole and in order.
    assert_eq!(seqs, (dropped..PARTS).collect::<Vec<_>>());
    assert_eq!(stats["spool_depth"], 0);
    let alarms = sub.on("/alarm");
    assert!(!alarms.is_empty(), "no alarm published");
    let a = alarms[0].json();
    assert_eq!(a["kind"], "mqtt_spool_full", "{a}");
    assert_eq!(a["number"], 1, "{a}");
    assert!(a["message"].as_str().unwrap().contains("dropped"), "{a}");
    // One alarm for the outage, however many segments went.
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(stats["alarms_raised"], 1, "{stats}");
}

/// Parts counted in a stats message.
fn decided(stats: &serde_json::Value) -> u64 {
    ["OK", "NG", "ERROR", "TIMEOUT"]
        .iter()
        .map(|k| stats["counts"][k].as_u64().unwrap())
        .sum()
}
