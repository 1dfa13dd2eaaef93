//! Broker outage in the middle of a run: a 1,000-part run of the real binary at 25 parts/s,
//! mosquitto stopped for 30 s in the middle and started again on the same port. Every
//! (run_id, seq) must arrive, in order of first arrival; repeats (QoS 1) are counted and
//! printed; the spool ends empty.

mod mqtt_support;

use std::time::{Duration, Instant};

use mqtt_support::*;

const PARTS: u64 = 1000;
const OUTAGE: Duration = Duration::from_secs(30);

#[test]
fn a_30_s_broker_outage_loses_nothing_and_keeps_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), free_port(), "");
    let sub = Subscriber::start(broker.port, "lineside/#", "test-outage");
    let scenario = scenario(tmp.path(), PARTS, 25, broker.port, "flush_timeout_s = 20");
    let started = Instant::now();
    let run = Running::start(&scenario);

    // Let a couple of hundred parts through, then take the broker away.
    assert!(
        sub.wait_for(Duration::from_secs(60), |m| result_keys(m).len() >= 200),
        "the first 200 results did not arrive"
    );
    broker.stop();
    let down_at = Instant::now();
    let seen_before = result_keys(&sub.messages.lock().unwrap()).len();
    std::thread::sleep(OUTAGE);
    broker.restart();
    let up_at = Instant::now();

    // The run ends on its own (the source is 40 s long); the spool drains after.
    run.finish(Duration::from_secs(90));
    let all = sub.wait_for(Duration::from_secs(20), |m| {
        dedupe(&result_keys(m)).0.len() as u64 >= PARTS
    });
    let drained = sub
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.topic.ends_with("/result"))
        .count();
    let keys = result_keys(&sub.messages.lock().unwrap());
    let (firsts, dups) = dedupe(&keys);
    println!(
        "outage: {seen_before} results before the stop, broker down {:.1?}; run took {:.1?}; \
         {} distinct results, {dups} repeats ({drained} messages); last result {:.1?} after the broker came back",
        up_at - down_at,
        started.elapsed(),
        firsts.len(),
        up_at.elapsed()
    );
    assert!(all, "only {} of {PARTS} results arrived", firsts.len());
    let run_id = &firsts[0].0;
    assert!(firsts.iter().all(|(r, _)| r == run_id), "one run");
    let seqs: Vec<u64> = firsts.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (0..PARTS).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    assert_eq!(defect_lines(tmp.path()).len() as u64, PARTS);
    assert!(
        spool_segments(tmp.path()).is_empty(),
        "the spool drained to 0"
    );
    // The link noticed the outage and came back.
    let stats = sub.on("/stats");
    let last = stats.last().unwrap().json();
    assert_eq!(last["spool_depth"], 0, "{last}");
    assert!(last["reconnects"].as_u64().unwrap() >= 1, "{last}");
    let peak = stats
        .iter()
        .map(|m| m.json()["spool_depth"].as_u64().unwrap())
        .max()
        .unwrap();
    println!("largest spool depth reported in stats: {peak}");
}
