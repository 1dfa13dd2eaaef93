//! `kill -9` loops: a long replay killed at random points, again and again, into one
//! output folder. The defect log must hold only whole JSON lines, a line torn by a kill
//! must be gone once the next run opens the log, and each run's records must be in
//! sequence. Bounded: a few kills, each cycle and the whole test under a time limit.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const KILLS: usize = 8;
/// Per cycle (start, first records, kill); the test fails rather than wait longer.
const CYCLE_LIMIT: Duration = Duration::from_secs(60);

/// A synthetic camera, unpaced and not live, `frames` long, logging into `out`.
fn scenario(dir: &Path, name: &str, out: &Path, frames: u64) -> std::path::PathBuf {
    let p = common::scenario_copy(
        &common::root().join("scenarios/demo-synthetic.toml"),
        dir,
        |s| {
            s.lines()
                .map(|l| match l {
                    l if l.starts_with("dir = ") => format!("dir = \"{}\"", out.display()),
                    l if l.starts_with("frames = ") => format!("frames = {frames}"),
                    "width = 1280" => "width = 320".into(),
                    "height = 720" => "height = 240".into(),
                    "fps = 30" => "fps = 0".into(),
                    "live = true" => "live = false".into(),
                    l => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let named = dir.join(name);
    std::fs::rename(&p, &named).unwrap();
    named
}

fn spawn(scenario: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["run", "--no-progress", "--cores", "2"])
        .arg(scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn read(log: &Path) -> Vec<u8> {
    std::fs::read(log).unwrap_or_default()
}

fn lines_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The part of `bytes` up to and including its last newline.
fn whole_part(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&[][..], |i| &bytes[..=i])
}

/// Parses whole lines; each must be one JSON record.
fn records(whole: &[u8]) -> Vec<Value> {
    std::str::from_utf8(whole)
        .expect("the log is UTF-8")
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole record ({e}): {l}"))
        })
        .collect()
}

/// Splits records into runs (each starts again at `seq` 0) and checks each run's
/// records are 0, 1, 2, ... with no gap and no reordering.
fn check_runs(all: &[Value]) -> usize {
    let mut runs = 0;
    let mut next = 0u64;
    for (i, r) in all.iter().enumerate() {
        let seq = r["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("record {i} has no seq: {r}"));
        if seq == 0 {
            runs += 1;
        } else {
            assert_eq!(seq, next, "record {i}: out of order within its run: {r}");
        }
        next = seq + 1;
    }
    runs
}

/// A small xorshift seeded from the clock (printed, and `KILL9_SEED` repeats a run).
fn rng() -> impl FnMut(u64) -> u64 {
    let seed = std::env::var("KILL9_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("KILL9_SEED={seed}");
    let mut s = seed;
    move |n| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    }
}

#[test]
fn kill_9_loop_leaves_only_whole_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let log = out.join("defects.jsonl");
    let long = scenario(dir.path(), "long.toml", &out, 1_000_000);
    let mut rand = rng();
    let (mut torn_kills, mut mid_run_kills, mut planted) = (0, 0, 0);
    for k in 0..KILLS {
        // One write in a few thousand is cut by a kill here (records go out in one
        // write(2)); every other cycle plants the torn line such a kill leaves.
        let whole_so_far = read(&log);
        if k % 2 == 1 && whole_so_far.ends_with(b"\n") {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            std::io::Write::write_all(&mut f, br#"{"seq":12345,"verdict":"O"#).unwrap();
            planted += 1;
        }
        let before = read(&log);
        let start = Instant::now();
        let mut child = spawn(&long);
        // A random point: after 0-3 new records, then 0-200 ms more.
        let wait_lines = lines_in(whole_part(&before)) + rand(4) as usize;
        while lines_in(&read(&log)) < wait_lines {
            assert!(
                start.elapsed() < CYCLE_LIMIT,
                "kill {k}: no records after {CYCLE_LIMIT:?}"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("kill {k}: lineside exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rand(200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let after = read(&log);
        // The previous run's whole lines are untouched; its torn tail (if any) is gone
        // now that this run has opened the log.
        let kept = whole_part(&before);
        assert!(after.starts_with(kept), "kill {k}: earlier records changed");
        let rest = &after[kept.len()..];
        let new = records(whole_part(rest));
        if let Some(first) = new.first() {
            assert_eq!(
                first["seq"], 0,
                "kill {k}: a new run starts on a fresh line"
            );
            mid_run_kills += 1;
        }
        check_runs(&new);
        if !after.ends_with(b"\n") && !after.is_empty() {
            torn_kills += 1;
        }
    }
    // A last, short run on the same folder finishes normally.
    let short = scenario(dir.path(), "short.toml", &out, 20);
    let status = {
        let mut child = spawn(&short);
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > CYCLE_LIMIT {
                child.kill().ok();
                panic!("the final run did not finish in {CYCLE_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(status.success(), "final run: {status}");
    let text = read(&log);
    assert!(text.ends_with(b"\n"), "the log ends with a whole line");
    let all = records(&text);
    let runs = check_runs(&all);
    assert!(
        runs > mid_run_kills,
        "{runs} runs, {mid_run_kills} killed mid-run"
    );
    let last: Vec<_> = all.iter().rev().take(20).collect();
    assert!(
        last.iter()
            .rev()
            .enumerate()
            .all(|(i, r)| r["seq"] == i as u64),
        "the final run's 20 records close the log"
    );
    eprintln!(
        "{KILLS} kills ({mid_run_kills} after records, {torn_kills} left a torn line, {planted} torn lines planted), {} records in {runs} runs",
        all.len()
    );
}
