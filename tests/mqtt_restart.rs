//! lineside restarted while the broker is down: run 1 loses the broker part way and ends
//! with results in its spool; run 2 starts with the broker back and sends run 1's results
//! first, in order, then its own.

mod mqtt_support;

use std::time::{Duration, Instant};

use mqtt_support::*;

const RUN1: u64 = 300;
const RUN2: u64 = 50;

#[test]
fn results_spooled_by_a_run_that_ended_during_an_outage_go_out_first_on_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), free_port(), "");
    let sub = Subscriber::start(broker.port, "lineside/#", "test-restart");

    // Run 1: 300 parts at 50/s; the broker goes away after the first 50 results.
    let s1 = scenario(tmp.path(), RUN1, 50, broker.port, "flush_timeout_s = 1");
    let run = Running::start(&s1);
    assert!(
        sub.wait_for(Duration::from_secs(60), |m| result_keys(m).len() >= 50),
        "the first 50 results did not arrive"
    );
    broker.stop();
    let err1 = run.finish(Duration::from_secs(60));
    assert!(
        err1.contains("stay in the spool"),
        "run 1 should say what it left: {err1}"
    );
    assert!(
        !spool_segments(tmp.path()).is_empty(),
        "run 1 left results in the spool"
    );
    let before = result_keys(&sub.messages.lock().unwrap()).len();

    // Run 2 with the broker back.
    broker.restart();
    let t = Instant::now();
    let s2 = scenario(tmp.path(), RUN2, 0, broker.port, "");
    let err2 = run_to_end(&s2, Duration::from_secs(60));
    assert!(
        err2.contains("from an earlier run go out first"),
        "run 2 should say it found spooled results: {err2}"
    );
    let arrived = sub.wait_for(Duration::from_secs(20), |m| {
        dedupe(&result_keys(m)).0.len() as u64 >= RUN1 + RUN2
    });
    let keys = result_keys(&sub.messages.lock().unwrap());
    let (firsts, dups) = dedupe(&keys);
    println!(
        "restart: {before} results before the outage; run 2 and the backlog took {:.1?}; \
         {} distinct results, {dups} repeats",
        t.elapsed(),
        firsts.len()
    );
    assert!(
        arrived,
        "only {} of {} results arrived",
        firsts.len(),
        RUN1 + RUN2
    );
    let run1 = &firsts[0].0;
    let run2 = &firsts.last().unwrap().0;
    assert_ne!(run1, run2);
    let expected: Vec<(String, u64)> = (0..RUN1)
        .map(|s| (run1.clone(), s))
        .chain((0..RUN2).map(|s| (run2.clone(), s)))
        .collect();
    assert_eq!(
        firsts, expected,
        "run 1's results first, then run 2's, each in order"
    );
    assert!(spool_segments(tmp.path()).is_empty(), "the spool drained");
    // The defect log holds both runs; every record arrived over MQTT with the same text.
    let lines = defect_lines(tmp.path());
    assert_eq!(lines.len() as u64, RUN1 + RUN2);
    let results = sub.on("/result");
    for line in &lines {
        assert!(results.iter().any(|m| m.text() == line), "missing: {line}");
    }
}
