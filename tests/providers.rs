//! `[model] providers`: the demo scenario run by `lineside run` on each provider list, with
//! the provider that ran named in summary.json, the fallback named in one warning, and the
//! scores of a non-CPU provider within 1e-3 of the CPU provider's.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The demo scenario copied into `dir`, writing its output to `dir/out`, with `providers`
/// (and any extra `[model]` lines) added to its `[model]` section.
fn demo_with(dir: &Path, model_lines: &str) -> PathBuf {
    let out = dir.join("out");
    common::scenario_copy(
        &common::root().join("scenarios/demo.toml"),
        dir,
        move |text| {
            text.lines()
                .map(|l| {
                    if l.starts_with("dir = ") {
                        format!("dir = \"{}\"", out.display())
                    } else if l == "[model]" {
                        format!("[model]\n{model_lines}")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        },
    )
}

struct Ran {
    stderr: String,
    summary: Value,
    /// Per item: (class index, score) of the top-5.
    scores: Vec<(String, Vec<(u64, f64)>)>,
}

/// `lineside run FILE`, bounded by the demo's seven photos; the run must succeed.
fn run(file: &Path) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .arg("run")
        .arg(file)
        .env("RUST_LOG", "warn")
        .output()
        .expect("start lineside");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "lineside run failed:\n{stderr}");
    let dir = file.parent().unwrap().join("out");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let scores = std::fs::read_to_string(dir.join("defects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            let classes = r["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["index"].as_u64().unwrap(), c["score"].as_f64().unwrap()))
                .collect();
            (r["item"].as_str().unwrap().to_string(), classes)
        })
        .collect();
    Ran {
        stderr,
        summary,
        scores,
    }
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("[model] providers:"))
        .collect()
}

/// Every item's top-5 scores within `tol` of the reference run's score of the same class.
fn assert_scores_close(ours: &Ran, reference: &Ran, tol: f64) {
    assert_eq!(ours.scores.len(), 7, "the demo has seven photos");
    assert_eq!(ours.scores.len(), reference.scores.len());
    for ((item, classes), (ref_item, ref_classes)) in ours.scores.iter().zip(&reference.scores) {
        assert_eq!(item, ref_item);
        // Top-1 must agree; lower ranks may swap where two scores are within tolerance.
        assert_eq!(classes[0].0, ref_classes[0].0, "{item}: top-1 class");
        for (index, score) in classes {
            if let Some((_, r)) = ref_classes.iter().find(|(i, _)| i == index) {
                let diff = (score - r).abs();
                assert!(diff <= tol, "{item}: class {index} differs by {diff}");
            }
        }
    }
}

/// The CPU vendor as the kernel reports it ("GenuineIntel", "AuthenticAMD"; none on Arm).
fn cpu_vendor() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("vendor_id"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
}

#[test]
fn openvino_runs_the_demo_within_1e3_of_cpu_or_falls_back_naming_why() {
    let cpu_dir = tempfile::tempdir().unwrap();
    let cpu = run(&demo_with(cpu_dir.path(), "providers = [\"cpu\"]"));
    assert_eq!(cpu.summary["provider"], "cpu");
    assert!(warnings(&cpu.stderr).is_empty(), "{}", cpu.stderr);

    let ov_dir = tempfile::tempdir().unwrap();
    let ov = run(&demo_with(
        ov_dir.path(),
        "providers = [\"openvino\", \"cpu\"]\nopenvino = { device_type = \"CPU\" }",
    ));
    let vendor = cpu_vendor();
    eprintln!(
        "CPU vendor {vendor:?}; ran on {}; stderr:\n{}",
        ov.summary["provider"], ov.stderr
    );
    if std::env::consts::ARCH == "x86_64" && vendor.as_deref() == Some("GenuineIntel") {
        // The plugin serves Intel CPUs: it must have run, not the fallback.
        assert_eq!(ov.summary["provider"], "openvino (CPU)", "{}", ov.stderr);
        assert!(warnings(&ov.stderr).is_empty(), "{}", ov.stderr);
        assert!(ov
            .stderr
            .contains("model efficientnet_lite0 runs on openvino (CPU)"));
    } else {
        // Elsewhere: one warning that names what was missing, and the CPU result.
        assert_eq!(ov.summary["provider"], "cpu");
        let w = warnings(&ov.stderr);
        assert_eq!(w.len(), 1, "{}", ov.stderr);
        assert!(
            w[0].contains("running on `cpu` instead of `openvino`"),
            "{}",
            w[0]
        );
        if std::env::consts::ARCH == "x86_64" {
            // scripts/setup.sh unpacked the plugin: it loaded, and offered no device.
            assert!(
                w[0].contains("device not present") && w[0].contains("Intel devices only"),
                "{}",
                w[0]
            );
        } else {
            assert!(w[0].contains("plugin library"), "{}", w[0]);
        }
    }
    assert_scores_close(&ov, &cpu, 1e-3);
}

#[test]
fn cuda_without_a_gpu_build_falls_back_to_cpu_with_one_warning() {
    let cpu_dir = tempfile::tempdir().unwrap();
    let cpu = run(&demo_with(cpu_dir.path(), ""));
    assert_eq!(
        cpu.summary["provider"], "cpu",
        "the default list is [\"cpu\"]"
    );

    let dir = tempfile::tempdir().unwrap();
    let ran = run(&demo_with(
        dir.path(),
        "providers = [\"tensorrt\", \"cuda\", \"cpu\"]",
    ));
    assert_eq!(ran.summary["provider"], "cpu");
    let w = warnings(&ran.stderr);
    assert_eq!(w.len(), 1, "one warning per scenario:\n{}", ran.stderr);
    assert!(
        w[0].contains("running on `cpu` instead of `tensorrt`, `cuda`"),
        "{}",
        w[0]
    );
    // The pip `onnxruntime` build has neither bridge library: the warning says what to get.
    assert!(
        w[0].contains("libonnxruntime_providers_cuda.so")
            && w[0].contains("libonnxruntime_providers_tensorrt.so"),
        "{}",
        w[0]
    );
    assert!(ran.stderr.contains("model efficientnet_lite0 runs on cpu"));
    // The same provider ran: the same scores, exactly.
    assert_scores_close(&ran, &cpu, 0.0);
}

#[test]
fn validate_and_inspect_say_which_provider_would_run_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let file = demo_with(dir.path(), "providers = [\"cuda\", \"cpu\"]");
    let (code, text) = common::validate_file(&file);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("224x224 on cpu;"), "{text}");
    assert_eq!(warnings(&text).len(), 1, "{text}");

    let model = common::root().join("models/efficientnet-lite0/efficientnet_lite0.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["models", "inspect", "--providers", "cuda,cpu"])
        .arg(&model)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("provider cpu (first of --providers"),
        "{stdout}"
    );
    assert!(stdout.contains("  skipped cuda: "), "{stdout}");

    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["models", "inspect", "--json", "--providers", "cuda,cpu"])
        .arg(&model)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["provider"]["provider"], "cpu");
    assert_eq!(json["provider"]["skipped"][0]["provider"], "cuda");
}

#[test]
fn a_list_without_a_usable_provider_or_with_a_typo_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = demo_with(dir.path(), "providers = [\"cuda\"]");
    let (code, text) = common::validate_file(&file);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("`model.providers`"), "{text}");
    assert!(
        text.contains("add \"cpu\" at the end of the list"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = demo_with(
        dir.path(),
        "providers = [\"opencl\", \"cpu\", \"cpu\"]\nopenvino = { device_type = \"VPU\" }",
    );
    let (code, text) = common::validate_file(&file);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("\"opencl\" is not a provider lineside knows; use \"openvino\", \"cuda\", \"tensorrt\", \"cpu\""),
        "{text}"
    );
    assert!(text.contains("lists \"cpu\" twice"), "{text}");
    assert!(
        text.contains("\"VPU\" is not an OpenVINO device lineside selects"),
        "{text}"
    );
}
