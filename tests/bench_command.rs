//! `lineside bench` (issue 11 item 3) on a bundled scenario: it measures ORT alone and the
//! whole pipeline on the scenario's own frames and writes every figure. Only the shape and
//! the consistency of the figures are checked: speed targets live in the bench itself.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_measures_ort_alone_and_the_pipeline_per_core_count() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["bench", "--cores", "1,2", "--frames", "24", "--json"])
        .arg(&json)
        .arg(common::root().join("scenarios/catalogue/10-screw-locking.toml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["scenario"], "screw-locking");
    assert_eq!(r["input"], serde_json::json!([1, 3, 256, 256]));
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, cores) in rows.iter().zip([1, 2]) {
        assert_eq!(row["cores"], cores);
        let f = |k: &str| row[k].as_f64().unwrap();
        for k in ["ort_sessions_fps", "ort_threads_fps", "pipeline_fps"] {
            assert!(f(k) > 0.0, "{k}: {row}");
        }
        assert_eq!(
            f("ort_alone_fps"),
            f("ort_sessions_fps").max(f("ort_threads_fps"))
        );
        let eff = f("pipeline_fps") / f("ort_alone_fps");
        assert!((f("efficiency") - eff).abs() < 1e-9);
        for stage in ["preprocess_ms", "infer_ms", "saturated_latency_ms"] {
            let (p50, p99) = (
                row[stage]["p50"].as_f64().unwrap(),
                row[stage]["p99"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p99 >= p50, "{stage}: {row}");
        }
        let load = &row["load80"];
        assert!((load["offered_fps"].as_f64().unwrap() - 0.8 * f("pipeline_fps")).abs() < 1e-6);
        assert!(load["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    }
    // A watched folder (like a camera) has no frames to replay: said plainly.
    let drop = dir.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    let camera = common::scenario_copy(
        &common::root().join("scenarios/catalogue/10-screw-locking.toml"),
        dir.path(),
        |t| {
            t.replace("kind = \"images\"", "kind = \"folder\"").replace(
                &format!(
                    "{}",
                    common::root().join("scenarios/samples/screws").display()
                ),
                &drop.display().to_string(),
            )
        },
    );
    let cam = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["bench", "--frames", "4"])
        .arg(&camera)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&cam.stderr);
    assert!(!cam.status.success());
    assert!(
        e.contains("no fixed number of frames") && e.contains("Fix:"),
        "{e}"
    );
}
