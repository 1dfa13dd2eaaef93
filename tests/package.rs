//! The install bundle (`scripts/package.sh`): unpacked into a fresh folder outside the
//! checkout, its demo runs with a clean environment (`PATH=/usr/bin:/bin` only), loads the
//! bundle's own ONNX Runtime, and writes the golden defect log.
//!
//! To keep CI short it packages the binary `cargo test` already built (`--binary`); the
//! release build and strip of a real `scripts/package.sh` run are the same script's other
//! branch.

mod common;

use std::path::Path;
use std::process::Command;

fn tar_gz_path(stdout: &[u8]) -> std::path::PathBuf {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .last()
        .expect("package.sh prints the bundle path")
        .into()
}

#[test]
fn the_unpacked_bundle_runs_its_demo_with_nothing_from_the_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let out = Command::new("bash")
        .arg(common::root().join("scripts/package.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_lineside"), "--out"])
        .arg(&dist)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "package.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tarball = tar_gz_path(&out.stdout);
    let size = std::fs::metadata(&tarball).unwrap().len();
    println!("bundle {}: {:.1} MB", tarball.display(), size as f64 / 1e6);

    // A fresh folder; the staging folder goes, so only the tarball's contents remain.
    let unpacked = tmp.path().join("box");
    std::fs::create_dir(&unpacked).unwrap();
    std::fs::remove_dir_all(tarball.with_extension("").with_extension("")).unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(untar.success());
    let name = tarball
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".tar.gz")
        .to_string();
    assert!(
        name.starts_with("lineside-") && name.ends_with(std::env::consts::ARCH),
        "{name}"
    );
    let home = unpacked.join(&name);
    for f in [
        "bin/lineside",
        "lib/libonnxruntime.so",
        "README-box.md",
        "scenarios/demo.toml",
        "scenarios/samples/photos/coffee.png",
        "models/efficientnet-lite0/efficientnet_lite0.onnx",
        "models/efficientnet-lite0/imagenet_labels.txt",
    ] {
        assert!(home.join(f).is_file(), "{f} missing from the bundle");
    }
    let readme = std::fs::read_to_string(home.join("README-box.md")).unwrap();
    assert!(
        !readme.contains("@VERSION@") && readme.contains(&name),
        "{readme}"
    );

    let run = Command::new(home.join("bin/lineside"))
        .args(["run", "--no-progress", "scenarios/demo.toml"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("RUST_LOG", "lineside=info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let lib = home.join("bin/../lib");
    assert!(
        stderr.contains(&format!("loading ONNX Runtime from {}", lib.display())),
        "the bundle's own library must be loaded:\n{stderr}"
    );
    let log = home.join("out/demo/defects.jsonl");
    compare_with_golden(&log);
}

/// The golden demo log, by the rules of tests/demo_logs.rs (scripts/compare-logs.py);
/// `source` names the bundle's folder (relative: the run started there), not the checkout's.
fn compare_with_golden(log: &Path) {
    let cmp = Command::new("python3")
        .arg(common::root().join("scripts/compare-logs.py"))
        .arg(common::root().join("tests/golden/demo.jsonl"))
        .arg(log)
        .args(["--ignore", "run_id", "--ignore", "source"])
        .args(["--ignore", "time_local", "--ignore", "station"])
        .output()
        .unwrap();
    assert!(
        cmp.status.success(),
        "defect log differs from tests/golden/demo.jsonl:\n{}{}",
        String::from_utf8_lossy(&cmp.stdout),
        String::from_utf8_lossy(&cmp.stderr)
    );
    let text = std::fs::read_to_string(log).unwrap();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let source = r["source"].as_str().unwrap();
        assert_eq!(source, "images:scenarios/samples/photos");
    }
}
