//! `[source] kind = "folder"` on the real binary: a scanner drops image files into a
//! folder while `lineside run` watches it; each file is inspected exactly once, across a
//! restart too, `after = "move"` moves them, and a truncated file is an ERROR record
//! naming it. Every wait has a deadline.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(90);

/// A small PNG (or JPEG) of one of the sample photos, encoded in memory.
fn image_bytes(photo: &str, format: image::ImageFormat) -> Vec<u8> {
    let img = image::open(common::root().join("scenarios/samples/photos").join(photo))
        .unwrap()
        .resize_exact(96, 96, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn png(photo: &str) -> Vec<u8> {
    image_bytes(photo, image::ImageFormat::Png)
}

/// The demo's model and rules on a watched folder; `extra` goes into `[source]`.
fn scenario(dir: &Path, watched: &Path, extra: &str) -> PathBuf {
    let models = common::root().join("models/efficientnet-lite0");
    let text = format!(
        r#"[scenario]
id = "drop"

[source]
kind = "folder"
path = "{watched}"
poll_ms = 50
settle_ms = 800
{extra}

[model]
path = "{model}"
labels = "{labels}"

[preprocess]
fit = "center_crop"
crop_fraction = 0.875
color = "rgb"
layout = "nchw"
scale = 0.00392156862745098
mean = 0.498
std = 0.502

[head]
kind = "classify"

[rules]
ok_classes = ["tabby", "espresso"]
min_score = 0.3

[output]
dir = "{out}"
"#,
        watched = watched.display(),
        model = models.join("efficientnet_lite0.onnx").display(),
        labels = models.join("imagenet_labels.txt").display(),
        out = dir.join("out").display(),
    );
    let path = dir.join("drop.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `lineside run`; killed if a test fails before stopping it.
struct Running(Option<Child>);

impl Running {
    fn start(scenario: &Path) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_lineside"))
            .args(["run", "--no-progress", scenario.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running(Some(child))
    }

    /// SIGTERM, as `systemctl stop` sends; returns stderr after a clean exit.
    fn stop(mut self) -> String {
        let child = self.0.take().unwrap();
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                // SAFETY: as above; the child did not stop within the deadline.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                panic!("lineside did not stop within 30 s of SIGTERM");
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("out/defects.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines only"))
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `n` records, then a while longer (several polls and settle times) so that a
/// duplicate would have time to show.
fn wait_for_records(dir: &Path, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} records"), || records(dir).len() >= n);
    std::thread::sleep(Duration::from_millis(2000));
    records(dir)
}

fn items(records: &[Value]) -> Vec<String> {
    let mut items: Vec<String> = records
        .iter()
        .map(|r| r["item"].as_str().unwrap().to_string())
        .collect();
    items.sort();
    items
}

/// A scanner writing in place, slowly: pauses shorter than `settle_ms`.
fn write_slowly(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(4)) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scanner writing `x.png.tmp` and renaming it when complete.
fn write_and_rename(path: &Path, bytes: &[u8]) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(3)) {
        f.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn dropped_files_are_inspected_once_each_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("scanner");
    std::fs::create_dir(&watched).unwrap();
    std::fs::write(watched.join("a-before-start.png"), png("chelsea.png")).unwrap();
    let scenario = scenario(dir.path(), &watched, "");

    let run = Running::start(&scenario);
    write_slowly(&watched.join("b-in-place.png"), &png("coffee.png"));
    write_and_rename(&watched.join("c-renamed.png"), &png("rocket.png"));
    // Not an image name: never picked up.
    std::fs::write(watched.join("notes.txt"), "not a part").unwrap();
    let first = wait_for_records(dir.path(), 3);
    run.stop();
    assert_eq!(
        items(&first),
        ["a-before-start.png", "b-in-place.png", "c-renamed.png"],
        "{first:#?}"
    );
    for r in &first {
        assert_ne!(r["verdict"], "ERROR", "a complete file was read early: {r}");
        assert_eq!(r["source"], format!("folder:{}", watched.display()));
    }

    // Dropped while lineside is down: taken at the next start; nothing done twice.
    std::fs::write(watched.join("d-while-down.png"), png("astronaut.png")).unwrap();
    let run = Running::start(&scenario);
    let all = wait_for_records(dir.path(), 4);
    // One more while running after the restart.
    write_and_rename(&watched.join("e-after-restart.png"), &png("chelsea.png"));
    let all = if all.len() == 4 {
        wait_for_records(dir.path(), 5)
    } else {
        all
    };
    run.stop();
    assert_eq!(
        items(&all),
        [
            "a-before-start.png",
            "b-in-place.png",
            "c-renamed.png",
            "d-while-down.png",
            "e-after-restart.png"
        ],
        "each file exactly once: {all:#?}"
    );
    let ledger = std::fs::read_to_string(dir.path().join("out/folder-ledger.tsv")).unwrap();
    assert_eq!(ledger.lines().count(), 5, "{ledger}");
    assert!(ledger.lines().all(|l| l.starts_with("done\t")), "{ledger}");
}

#[test]
fn after_move_moves_files_once_logged_and_existing_skip_leaves_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("scanner");
    std::fs::create_dir(&watched).unwrap();
    std::fs::write(watched.join("old.png"), png("chelsea.png")).unwrap();
    let scenario = scenario(
        dir.path(),
        &watched,
        "after = \"move\"\ndone_dir = \"done\"\nexisting = \"skip\"",
    );
    let done = dir.path().join("done");

    let run = Running::start(&scenario);
    std::thread::sleep(Duration::from_millis(500));
    write_and_rename(&watched.join("p1.png"), &png("coffee.png"));
    write_slowly(&watched.join("p2.png"), &png("rocket.png"));
    let got = wait_for_records(dir.path(), 2);
    wait_for("both files moved", || {
        done.join("p1.png").is_file() && done.join("p2.png").is_file()
    });
    run.stop();
    assert_eq!(items(&got), ["p1.png", "p2.png"], "{got:#?}");
    assert!(!watched.join("p1.png").exists() && !watched.join("p2.png").exists());
    // Present before the ledger existed: skipped, left where it was.
    assert!(watched.join("old.png").is_file());
    assert!(!done.join("old.png").exists());

    // A restart neither inspects the skipped file nor the moved ones.
    let run = Running::start(&scenario);
    std::thread::sleep(Duration::from_millis(1500));
    run.stop();
    assert_eq!(records(dir.path()).len(), 2);
}

#[test]
fn a_truncated_image_is_an_error_record_naming_the_file_and_the_next_one_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("scanner");
    std::fs::create_dir(&watched).unwrap();
    let scenario = scenario(dir.path(), &watched, "");
    let run = Running::start(&scenario);
    let jpeg = image_bytes("coffee.png", image::ImageFormat::Jpeg);
    std::fs::write(watched.join("1-cut.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(watched.join("2-whole.jpg"), &jpeg).unwrap();
    let got = wait_for_records(dir.path(), 2);
    run.stop();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (cut, whole) = (&got[0], &got[1]);
    assert_eq!(cut["item"], "1-cut.jpg");
    assert_eq!(cut["verdict"], "ERROR");
    let error = cut["error"].as_str().unwrap();
    assert!(error.contains("1-cut.jpg"), "{error}");
    assert_eq!(whole["item"], "2-whole.jpg");
    assert_ne!(whole["verdict"], "ERROR", "{whole}");
}

#[test]
fn folder_keys_are_checked_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("scanner");
    std::fs::create_dir(&watched).unwrap();
    for (extra, key, says) in [
        ("after = \"move\"", "done_dir", "needs `done_dir`"),
        ("done_dir = \"done\"", "done_dir", "after = \"move\" only"),
        (
            "repeat = 2",
            "repeat",
            "does not apply to kind = \"folder\"",
        ),
        ("live = true", "live", "never drops a part"),
        (
            "format = \"RGB24\"",
            "format",
            "does not apply to kind = \"folder\"",
        ),
    ] {
        let s = scenario(dir.path(), &watched, extra);
        let errs = lineside::scenario::validate(&s).err().unwrap();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains(key) && t.contains(says)),
            "{extra}: {text:?}"
        );
    }
    // One file is not a drop folder; a missing folder is said once.
    let file = dir.path().join("one.png");
    std::fs::write(&file, png("coffee.png")).unwrap();
    for (path, says) in [
        (file, "is not a folder"),
        (dir.path().join("missing"), "does not exist"),
    ] {
        let errs = lineside::scenario::validate(&scenario(dir.path(), &path, ""))
            .err()
            .unwrap();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].contains("source.path") && text[0].contains(says),
            "{text:?}"
        );
    }
    // Folder keys on another kind are errors, not ignored.
    let images = dir.path().join("images.toml");
    std::fs::write(
        &images,
        std::fs::read_to_string(scenario(dir.path(), &watched, ""))
            .unwrap()
            .replace("kind = \"folder\"", "kind = \"images\"")
            .replace(
                &watched.display().to_string(),
                common::root()
                    .join("scenarios/samples/photos")
                    .to_str()
                    .unwrap(),
            ),
    )
    .unwrap();
    let errs = lineside::scenario::validate(&images).err().unwrap();
    let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("poll_ms") && t.contains("applies to kind = \"folder\" only")),
        "{text:?}"
    );
}

#[test]
fn a_watched_folder_that_goes_away_is_reported_once_and_watched_again_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("share");
    std::fs::create_dir(&watched).unwrap();
    let scenario = scenario(dir.path(), &watched, "");
    let run = Running::start(&scenario);
    std::fs::write(watched.join("1.png"), png("coffee.png")).unwrap();
    wait_for("the first record", || records(dir.path()).len() == 1);
    // An unmounted share: the folder is gone for a while, then back.
    std::fs::remove_dir_all(&watched).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::create_dir(&watched).unwrap();
    std::fs::write(watched.join("2.png"), png("rocket.png")).unwrap();
    let got = wait_for_records(dir.path(), 2);
    let stderr = run.stop();
    // Watched again once back: the file dropped then is inspected.
    assert_eq!(items(&got), ["1.png", "2.png"], "{got:#?}");
    assert_eq!(
        stderr.matches("cannot list watched folder").count(),
        1,
        "said once, not every poll:\n{stderr}"
    );
}
