//! Faults must never hang or abort a run, nor cost a decided record: a defect log that
//! cannot be written, a frame whose inspection panics, a second Ctrl-C. The binary tests
//! run the real `lineside` under a watchdog that kills it (and fails) after 60 s.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use lineside::frame::BufferPool;
use lineside::outcome::{Outcome, OutcomeKind, RunSink, SinkError};
use lineside::pipeline::{self, PipelineError, RunSettings};
use lineside::scenario::{self, ScenarioPlan};
use lineside::source::{Next, Source, Synthetic};
use serde_json::Value;

const WATCHDOG: Duration = Duration::from_secs(60);

/// A synthetic-camera scenario writing to `out`, with `edit` applied to its text.
fn synthetic_scenario(dir: &Path, out: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    common::scenario_copy(
        &common::root().join("scenarios/demo-synthetic.toml"),
        dir,
        |s| {
            edit(
                s.replace(
                    &common::root()
                        .join("out/demo-synthetic")
                        .display()
                        .to_string(),
                    out.to_str().unwrap(),
                )
                .replace("width = 1280", "width = 320")
                .replace("height = 720", "height = 240")
                .replace("frames = 300", "frames = 100000")
                .replace("live = true", "live = false"),
            )
        },
    )
}

fn spawn(scenario: &Path, cmd: impl FnOnce(&mut Command)) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lineside"));
    c.args([
        "run",
        "--no-progress",
        "--cores",
        "2",
        scenario.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd(&mut c);
    c.spawn().unwrap()
}

/// Waits for `child`, killing it and failing if it runs past the watchdog.
fn wait_bounded(child: Child) -> Output {
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        tx.send(()).ok();
        out
    });
    if rx.recv_timeout(WATCHDOG).is_err() {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let out = waiter.join().unwrap();
        panic!(
            "lineside hung (killed after {WATCHDOG:?}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = waiter.join().unwrap();
    assert_ne!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "lineside aborted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The whole records of a defect log (a torn last line, cut by the next open, is left
/// out), checked to be in sequence from 0 with no gap.
fn whole_records(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap();
    let whole = text.rfind('\n').map_or("", |i| &text[..=i]);
    let records: Vec<Value> = whole
        .lines()
        .map(|l| serde_json::from_str(l).expect("every finished line is one whole record"))
        .collect();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r["seq"], i as u64,
            "no decided record lost before the fault"
        );
    }
    records
}

fn wait_for_records(log: &Path, n: usize) {
    let start = Instant::now();
    while std::fs::read_to_string(log).map_or(0, |s| s.lines().count()) < n {
        assert!(start.elapsed() < WATCHDOG, "no records after {WATCHDOG:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn item_1_defect_log_write_error_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let scenario = synthetic_scenario(dir.path(), &out_dir, |s| s);
    // A file size limit makes the log's writes fail (EFBIG) once it is 16 KiB, as a
    // full disk would (ENOSPC), without root or a mount. lineside must not die of
    // SIGXFSZ for it: it ignores that signal itself.
    let child = spawn(&scenario, |c| {
        // SAFETY: setrlimit(2) only, between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 16 * 1024,
                    rlim_max: 16 * 1024,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let out = wait_bounded(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let log = out_dir.join("defects.jsonl");
    assert!(
        stderr.contains(&log.display().to_string()) && stderr.contains("os error 27"),
        "the error names the file and the OS error: {stderr}"
    );
    let records = whole_records(&log);
    assert!(records.len() > 5, "{} records", records.len());
}

/// Frames of a synthetic camera; frame 3's layout claims a stride whose arithmetic
/// overflows (a corrupt header or driver), and the source panics at `panic_at`.
struct Faulty {
    inner: Synthetic,
    panic_at: Option<u64>,
}

impl Source for Faulty {
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next {
        if Some(seq) == self.panic_at {
            panic!("faulty source: frame {seq}");
        }
        match self.inner.next(seq, pool) {
            Next::Frame(mut f) if seq == 3 => {
                f.layout.stride = (1usize << 63) + 8;
                Next::Frame(f)
            }
            n => n,
        }
    }
    fn item_names(&self) -> Vec<String> {
        self.inner.item_names()
    }
    fn max_frame_bytes(&self) -> usize {
        self.inner.max_frame_bytes()
    }
    fn len_hint(&self) -> Option<u64> {
        self.inner.len_hint()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// (seq, error message if the frame failed) of one delivered outcome.
type Seen = (u64, Option<String>);

/// Keeps every outcome delivered.
#[derive(Default)]
struct Collect(Vec<Seen>);

impl RunSink for Collect {
    fn deliver(&mut self, o: &Outcome) -> Result<(), SinkError> {
        let error = match &o.result {
            OutcomeKind::Failed(m) => Some(m.clone()),
            _ => None,
        };
        self.0.push((o.seq, error));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Runs `plan` on a [`Faulty`] source in a thread, failing if it does not end in time.
fn run_faulty(plan: ScenarioPlan, panic_at: Option<u64>) -> (Result<(), PipelineError>, Vec<Seen>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let s = &plan.source;
        let source = Faulty {
            inner: Synthetic::new(s.width, s.height, s.format, s.pattern, s.frames),
            panic_at,
        };
        let settings = RunSettings {
            workers: 1,
            intra_threads: 1,
            stop: Arc::new(AtomicBool::new(false)),
            abort: Arc::new(AtomicBool::new(false)),
            status: lineside::status::ScenarioStatus::new("faulty"),
            triggers: None,
            reload: None,
        };
        let mut sink = Collect::default();
        let r = pipeline::run(&plan, Box::new(source), &settings, &mut sink);
        tx.send((r, sink.0)).ok();
    });
    rx.recv_timeout(WATCHDOG).unwrap_or_else(|_| {
        panic!("the pipeline did not end (hung, or its thread panicked) within {WATCHDOG:?}")
    })
}

fn small_synthetic_plan(frames: u64) -> ScenarioPlan {
    let mut p = scenario::check(&common::root().join("scenarios/demo-synthetic.toml"))
        .unwrap_or_else(|d| panic!("{d:?}"));
    p.source.width = 320;
    p.source.height = 240;
    p.source.frames = frames;
    p.source.fps = 0.0;
    p.source.live = false;
    p
}

#[test]
fn item_2_a_panicking_frame_is_an_error_record_and_the_run_goes_on() {
    let (result, outcomes) = run_faulty(small_synthetic_plan(8), None);
    result.unwrap();
    let seqs: Vec<u64> = outcomes.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (0..8).collect::<Vec<_>>(),
        "every frame has its record"
    );
    for (seq, error) in &outcomes {
        if *seq == 3 {
            assert!(error.is_some(), "the bad frame is an ERROR record");
        } else {
            // The worker that panicked was rebuilt and decides the frames after it.
            assert_eq!(error, &None, "frame {seq} was decided");
        }
    }
}

#[test]
fn item_2_a_panicking_source_stops_the_run_with_its_own_message() {
    let (result, outcomes) = run_faulty(small_synthetic_plan(100_000), Some(6));
    let seqs: Vec<u64> = outcomes.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (0..6).collect::<Vec<_>>(),
        "frames before it are kept"
    );
    match result {
        Err(e @ PipelineError::Panicked { .. }) => {
            assert!(e.to_string().contains("faulty source: frame 6"), "{e}")
        }
        other => panic!("expected the panic as the error, got {other:?}"),
    }
}

/// The issue's input: a raw sidecar whose stride overflows. However the frame is refused
/// (a panic caught, or a check), it is an ERROR record and the run still ends.
#[test]
fn item_2_a_raw_frame_with_an_overflowing_stride_never_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let raw = dir.path().join("frames.raw");
    std::fs::write(&raw, vec![128u8; 4 * 2 * 3 * 4]).unwrap();
    std::fs::write(
        dir.path().join("frames.raw.json"),
        r#"{"width": 4, "height": 2, "fourcc": "RGB3", "stride": 9223372036854775816}"#,
    )
    .unwrap();
    let scenario = synthetic_scenario(dir.path(), &out_dir, |s| {
        let start = s.find("[source]").unwrap();
        let end = s.find("[model]").unwrap();
        format!(
            "{}[source]\nkind = \"raw\"\npath = \"{}\"\n\n{}",
            &s[..start],
            raw.display(),
            &s[end..]
        )
    });
    let out = wait_bounded(spawn(&scenario, |_| {}));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("the scenario's thread panicked") && !stderr.contains("defect log"),
        "never blamed on the defect log: {stderr}"
    );
    if out.status.success() {
        let records = whole_records(&out_dir.join("defects.jsonl"));
        assert!(!records.is_empty());
        assert!(
            records.iter().all(|r| r["verdict"] == "ERROR"),
            "{records:?}"
        );
    } else {
        // Refused up front: by a sidecar check naming the file, or by a panic reported
        // with its own message; exit 1 either way.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("frames.raw")
                || stderr.contains("error: scenario demo-synthetic: panicked: "),
            "{stderr}"
        );
    }
}

#[test]
fn item_4_second_ctrl_c_writes_no_false_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    // Many workers on 2 cores: a long queue of frames in flight when the signals come.
    let scenario = synthetic_scenario(dir.path(), &out_dir, |s| {
        s.replace("[model]\n", "[model]\nworkers = 8\n")
    });
    let child = spawn(&scenario, |_| {});
    let log = out_dir.join("defects.jsonl");
    wait_for_records(&log, 5);
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    // Apart, or the kernel merges them into one; soon, while frames are in flight.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = wait_bounded(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("aborting"), "{stderr}");
    let records = whole_records(&log);
    for r in &records {
        assert_ne!(r["verdict"], "ERROR", "a false verdict from teardown: {r}");
    }
}
