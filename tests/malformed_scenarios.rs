//! The malformed-scenario battery (issue 10): every file in `tests/fixtures/malformed/`
//! has one thing wrong, on the line(s) marked `# BAD`. `validate` must refuse each with
//! exit 1 and `file:line` at a marked line; `run` must never abort or panic, and must exit
//! non-zero or write nothing but ERROR records.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIR: &str = "tests/fixtures/malformed";
/// A run of any of these files takes well under a second; a minute means a hang.
const WATCHDOG: Duration = Duration::from_secs(60);

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Lines (1-based) marked `# BAD`: where the problem is.
fn bad_lines(path: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end().ends_with("# BAD"))
        .map(|(i, _)| i + 1)
        .collect();
    assert!(
        !lines.is_empty(),
        "{}: no line marked `# BAD`",
        path.display()
    );
    lines
}

fn no_panic_or_abort(what: &str, status: std::process::ExitStatus, stderr: &str) {
    assert_ne!(
        status.signal(),
        Some(libc::SIGABRT),
        "{what}: aborted\n{stderr}"
    );
    assert!(
        status.signal().is_none(),
        "{what}: killed by a signal ({status})\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked\n{stderr}");
    assert!(!stderr.contains("memory allocation of"), "{what}: {stderr}");
}

#[test]
fn the_battery_has_at_least_fifty_files() {
    assert!(fixtures().len() >= 50, "{} files", fixtures().len());
}

#[test]
fn validate_refuses_each_malformed_file_at_its_line() {
    let mut failures = Vec::new();
    for path in fixtures() {
        let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let shown = path.display().to_string();
        no_panic_or_abort(&shown, out.status, &stderr);
        let located = bad_lines(&path)
            .iter()
            .any(|l| stderr.contains(&format!("{shown}:{l}:")));
        if out.status.code() != Some(1) || !located {
            failures.push(format!(
                "{shown}: exit {:?}, lines {:?} expected in:\n{}",
                out.status.code(),
                bad_lines(&path),
                stderr.chars().take(600).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Recreates the repository layout the fixtures' relative paths expect
/// (`../../../models`), in a fresh folder, so a run writes its output there.
fn sandbox() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(DIR);
    copy_dir(&root.join(DIR), &dst);
    for shared in ["models", "scenarios"] {
        std::os::unix::fs::symlink(root.join(shared), tmp.path().join(shared)).unwrap();
    }
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every defect log under `dir`, as (file, verdicts).
fn defect_logs(dir: &Path, found: &mut Vec<(PathBuf, Vec<String>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        // The symlinked models and samples hold no logs this run wrote.
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        if p.is_dir() {
            defect_logs(&p, found);
        } else if p.extension().is_some_and(|x| x == "jsonl") {
            let verdicts = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["verdict"].as_str().unwrap_or("?").to_string()
                })
                .collect();
            found.push((p, verdicts));
        }
    }
}

#[test]
fn run_never_aborts_on_a_malformed_file() {
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = sandbox();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lineside"))
            .args(["run", "--no-progress"])
            .arg(Path::new(DIR).join(&name))
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read stderr on its own thread so a chatty run cannot block on a full pipe.
        let mut pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut pipe, &mut s).ok();
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > WATCHDOG {
                child.kill().ok();
                child.wait().ok();
                panic!("{name}: still running after {WATCHDOG:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = reader.join().unwrap();
        no_panic_or_abort(&name, status, &stderr);
        if status.success() {
            let mut logs = Vec::new();
            defect_logs(tmp.path(), &mut logs);
            for (log, verdicts) in logs {
                assert!(
                    verdicts.iter().all(|v| v == "ERROR"),
                    "{name}: exit 0 with verdicts other than ERROR in {}: {verdicts:?}",
                    log.display()
                );
            }
        }
    }
}

fn validate(file: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["validate", file])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn item_6_empty_ok_classes_is_refused_by_validate() {
    let f = "tests/fixtures/malformed/ok_classes_empty.toml";
    let (code, text) = validate(f);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{f}:20: `rules.ok_classes`: is empty, so every part would be NG"
        )),
        "{text}"
    );
}

#[test]
fn item_6_a_100000_character_id_is_refused_by_validate() {
    let f = "tests/fixtures/malformed/long_id.toml";
    let (code, text) = validate(f);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("{f}:3: `scenario.id`:")), "{text}");
    assert!(
        text.contains("is 100000 characters long: use at most 64"),
        "{text}"
    );
    // The message quotes the start of the id, not all of it.
    assert!(text.len() < 1000, "{} bytes of message", text.len());
}
