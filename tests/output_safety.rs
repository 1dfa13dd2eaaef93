//! Where `lineside run` writes, and what it refuses to write through (issue 10, items 7
//! and 14): one run per output folder, no symbolic links, a run id in every record, no two
//! scenarios of one process on one id or folder, files created 0640, output paths relative
//! to the scenario file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A three-frame synthetic scenario `<dir>/<name>.toml` with id `id`; `output` is the
/// `[output]` section's body.
fn scenario(dir: &Path, name: &str, id: &str, output: &str) -> PathBuf {
    let model = common::root().join("models/efficientnet-lite0");
    let text = format!(
        "[scenario]\nid = \"{id}\"\n\n[source]\nkind = \"synthetic\"\nwidth = 64\nheight = 48\n\
         format = \"YUYV\"\nframes = 3\nfps = 0\n\n[model]\npath = \"{}\"\nlabels = \"{}\"\n\
         workers = 1\n\n[preprocess]\nfit = \"stretch\"\n\n[head]\nkind = \"classify\"\n\n\
         [output]\n{output}\n",
        model.join("efficientnet_lite0.onnx").display(),
        model.join("imagenet_labels.txt").display(),
    );
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn lineside(cwd: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("start lineside");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out, text)
}

fn run(cwd: &Path, files: &[&Path]) -> (Output, String) {
    let mut args = vec!["run", "--no-progress", "--cores", "2"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    lineside(cwd, &args)
}

fn records(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn item_7_second_process_on_one_output_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let s = scenario(
        tmp.path(),
        "s",
        "s",
        &format!("dir = \"{}\"", out.display()),
    );
    // This test process holds the folder, as a first `lineside run` would.
    let held = lineside::sink::output_dir::lock(&out, 0o640).unwrap();
    let (o, text) = run(tmp.path(), &[&s]);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "output folder {} is in use by another lineside process (pid {})",
            out.display(),
            std::process::id()
        )),
        "{text}"
    );
    assert!(!out.join("defects.jsonl").exists(), "{text}");
    drop(held);
    let (o, text) = run(tmp.path(), &[&s]);
    assert!(o.status.success(), "{text}");
}

#[test]
fn item_7_symlinked_defect_log_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let precious = tmp.path().join("precious.txt");
    std::fs::write(&precious, "line 1\nline 2 without a newline").unwrap();
    std::os::unix::fs::symlink(&precious, out.join("defects.jsonl")).unwrap();
    let s = scenario(
        tmp.path(),
        "s",
        "s",
        &format!("dir = \"{}\"", out.display()),
    );
    let (o, text) = run(tmp.path(), &[&s]);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("is a symbolic link"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "line 1\nline 2 without a newline"
    );
}

#[test]
fn item_7_symlinked_summary_is_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let precious = tmp.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    std::os::unix::fs::symlink(&precious, out.join("summary.json.tmp")).unwrap();
    let s = scenario(
        tmp.path(),
        "s",
        "s",
        &format!("dir = \"{}\"", out.display()),
    );
    let (o, text) = run(tmp.path(), &[&s]);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("summary.json.tmp is a symbolic link"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn item_7_every_record_has_a_run_id_unique_per_run() {
    let tmp = tempfile::tempdir().unwrap();
    let s = scenario(tmp.path(), "s", "s", "dir = \"out\"");
    for _ in 0..2 {
        let (o, text) = run(tmp.path(), &[&s]);
        assert!(o.status.success(), "{text}");
    }
    let recs = records(&tmp.path().join("out/defects.jsonl"));
    assert_eq!(recs.len(), 6);
    let ids: Vec<&str> = recs.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert!(ids[..3].iter().all(|i| *i == ids[0]), "{ids:?}");
    assert!(ids[3..].iter().all(|i| *i == ids[3]), "{ids:?}");
    assert_ne!(ids[0], ids[3]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["run_id"], ids[3]);
}

#[test]
fn item_7_files_are_created_0640_or_as_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let a = scenario(&tmp.path().join("a"), "a", "a", "dir = \"out\"");
    let b = scenario(
        &tmp.path().join("b"),
        "b",
        "b",
        "dir = \"out\"\nfile_mode = \"0600\"",
    );
    let (o, text) = run(tmp.path(), &[&a, &b]);
    assert!(o.status.success(), "{text}");
    for f in ["defects.jsonl", "summary.json", "lineside.lock"] {
        assert_eq!(mode(tmp.path().join("a/out").join(f)), 0o640, "{f}");
        assert_eq!(mode(tmp.path().join("b/out").join(f)), 0o600, "{f}");
    }
    let c = scenario(tmp.path(), "c", "c", "file_mode = \"0044\"");
    let (o, text) = lineside(tmp.path(), &["validate", c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("c.toml:"), "{text}");
    assert!(text.contains("`output.file_mode`"), "{text}");
}

#[test]
fn item_7_duplicate_ids_and_shared_output_folders_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    let a = scenario(&tmp.path().join("a"), "s", "same", "dir = \"out\"");
    let b = scenario(&tmp.path().join("b"), "s", "same", "dir = \"out\"");
    let c = scenario(
        tmp.path(),
        "c",
        "c",
        &format!("dir = \"{}\"", shared.display()),
    );
    let d = scenario(
        tmp.path(),
        "d",
        "d",
        &format!("dir = \"{}/x/..\"", shared.display()),
    );
    for cmd in ["run", "validate"] {
        let (o, text) = lineside(
            tmp.path(),
            &[
                cmd,
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                c.to_str().unwrap(),
                d.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{cmd}: {text}");
        assert!(
            text.contains(&format!(
                "{}:2: `scenario.id`: `same` is also the id of {}",
                b.display(),
                a.display()
            )),
            "{cmd}: {text}"
        );
        assert!(
            text.contains(&format!(
                "`output.dir`: {} is also the output folder of {}",
                shared.display(),
                c.display()
            )),
            "{cmd}: {text}"
        );
    }
    assert!(!shared.exists(), "run wrote before refusing");
}

#[test]
fn item_7_output_dir_climbing_out_of_the_scenario_tree_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/c");
    let s = scenario(&dir, "s", "s", "dir = \"../../../escaped\"");
    for cmd in ["validate", "run"] {
        let (o, text) = lineside(tmp.path(), &[cmd, s.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {text}");
        assert!(
            text.contains("climbs 3 folders above the scenario file's folder"),
            "{cmd}: {text}"
        );
    }
    assert!(!tmp.path().join("escaped").exists());
    // Two levels (`scenarios/fitted/*.toml` write to `../../out/...`) and absolute paths
    // are fine; the resolved folder is printed before the run.
    let ok = scenario(&dir, "ok", "ok", "dir = \"../../out\"");
    let (o, text) = run(tmp.path(), &[&ok]);
    assert!(o.status.success(), "{text}");
    let out = tmp.path().join("a/out");
    assert!(
        text.contains(&format!("ok: writing to {}", out.display())),
        "{text}"
    );
    assert!(out.join("defects.jsonl").is_file());
}

#[test]
fn item_14_no_argument_runs_only_the_working_directory_demo() {
    // Outside a checkout, `lineside run` must not find the demo of the checkout the
    // binary was built in.
    let tmp = tempfile::tempdir().unwrap();
    let (o, text) = lineside(tmp.path(), &["run", "--no-progress"]);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no scenario given and no ./scenarios/demo.toml"),
        "{text}"
    );
    assert!(!text.contains("defect log"), "{text}");
}

#[test]
fn item_14_default_output_is_beside_the_scenario_file() {
    let tmp = tempfile::tempdir().unwrap();
    let s = scenario(&tmp.path().join("line"), "s", "s", "");
    let cwd = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    let (o, text) = run(&cwd, &[&s]);
    assert!(o.status.success(), "{text}");
    assert!(
        tmp.path().join("line/out/s/defects.jsonl").is_file(),
        "{text}"
    );
    assert!(!cwd.join("out").exists(), "{text}");
}
