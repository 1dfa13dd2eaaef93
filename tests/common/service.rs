//! A real `lineside run` on a live synthetic camera, driven from outside as systemd or an
//! operator would: signals, the scenario file rewritten in place, the defect log read back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Every wait in these tests ends: a run that stops making progress fails the test.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub struct Service {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub scenario: PathBuf,
    pub out: PathBuf,
    stderr: PathBuf,
}

/// The demo-synthetic scenario, live at `fps`, endless, writing into a temporary folder;
/// `edit` changes its text further.
pub fn scenario_text(dir: &Path, fps: u32, edit: impl Fn(String) -> String) -> (PathBuf, PathBuf) {
    let out = dir.join("out");
    let scenario = super::scenario_copy(
        &super::root().join("scenarios/demo-synthetic.toml"),
        dir,
        |s| {
            edit(
                s.replace(
                    &super::root()
                        .join("out/demo-synthetic")
                        .display()
                        .to_string(),
                    out.to_str().unwrap(),
                )
                .replace("frames = 300", "frames = 1000000")
                .replace("fps = 30", &format!("fps = {fps}"))
                // One worker: the test's figures do not depend on the machine's cores.
                .replace("[model]\n", "[model]\nworkers = 1\n"),
            )
        },
    );
    (scenario, out)
}

impl Service {
    pub fn start(fps: u32, edit: impl Fn(String) -> String, env: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let (scenario, out) = scenario_text(dir.path(), fps, edit);
        let stderr = dir.path().join("stderr.txt");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lineside"));
        cmd.args(["run", "--no-progress", scenario.to_str().unwrap()])
            .env("RUST_LOG", "lineside=info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&stderr).unwrap()));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Service {
            child: Some(child),
            dir,
            scenario,
            out,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn log(&self) -> PathBuf {
        self.out.join("defects.jsonl")
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits (bounded) until `ready` holds; `what` names it in the failure.
    pub fn wait_for(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("no exit after SIGTERM; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn summary(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.out.join("summary.json")).unwrap()).unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The whole records of a defect log (a missing file: none).
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines only"))
        .collect()
}

/// Asserts the records carry sequence numbers 0, 1, 2, … with none missing or repeated.
pub fn assert_no_seq_missing(records: &[serde_json::Value]) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r["seq"],
            i as u64,
            "sequence numbers 0..{} in order",
            records.len()
        );
    }
}
