//! ONNX Runtime's own telemetry (1DS on Linux since 1.29): the binary must leave nothing
//! behind, whatever the environment it was started from.

mod common;

use std::path::Path;
use std::process::Command;

/// Variables that make ONNX Runtime suppress telemetry on its own (CI detection, its unit
/// tests, the opt-out itself): removed so the test sees what a line-side box would.
const SUPPRESSING: [&str; 7] = [
    "ORT_DISABLE_TELEMETRY",
    "ORT_RUNNING_UNIT_TESTS",
    "CI",
    "GITHUB_ACTIONS",
    "TF_BUILD",
    "JENKINS_URL",
    "BUILD_BUILDID",
];

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn item_8_no_telemetry_files_are_written() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let scenario = common::scenario_copy(
        &common::root().join("scenarios/demo.toml"),
        work.path(),
        |t| t,
    );
    let out_dir = work.path().join("out");
    let scenario_text = std::fs::read_to_string(&scenario).unwrap();
    let scenario_text: String = scenario_text
        .lines()
        .map(|l| {
            if l.starts_with("dir = ") {
                format!("dir = \"{}\"\n", out_dir.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&scenario, scenario_text).unwrap();
    let model = common::root().join("models/efficientnet-lite0/efficientnet_lite0.onnx");
    let runs: [Vec<&std::ffi::OsStr>; 2] = [
        vec!["models".as_ref(), "inspect".as_ref(), model.as_os_str()],
        vec![
            "run".as_ref(),
            "--no-progress".as_ref(),
            scenario.as_os_str(),
        ],
    ];
    for args in runs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lineside"));
        cmd.args(&args)
            .current_dir(work.path())
            .env("HOME", home.path())
            .env("TMPDIR", tmp.path())
            .env_remove("XDG_CACHE_HOME");
        for v in SUPPRESSING {
            cmd.env_remove(v);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
    }
    let left: Vec<String> = files_under(home.path())
        .into_iter()
        .chain(files_under(tmp.path()))
        .collect();
    assert!(
        left.is_empty(),
        "ONNX Runtime left files behind (onnxruntime.db, deviceid, .ses): {left:?}"
    );
    assert!(
        out_dir.join("defects.jsonl").is_file(),
        "the run itself worked"
    );
}
