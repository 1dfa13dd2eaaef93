//! Every demo scenario's defect log against a committed golden log: the guard that a
//! refactoring changes no behaviour.
//!
//! Each `scenarios/*.toml` runs through the library (the runner behind `lineside run`) into
//! a temporary folder, and every record is compared with `tests/golden/<scenario id>.jsonl`,
//! ignoring `time`, `time_local`, `station`, `latency_ms` and `run_id`. Strings, verdicts, booleans, nulls, integers (counts,
//! indices, `seq`), boxes, quads and pixel areas (rounded in the log) and the shape of every
//! object and array must be equal exactly; other numbers (scores, mm² areas) within 1e-5,
//! absolute or relative, because ONNX Runtime's kernels may take other SIMD paths on another
//! CPU. The largest numeric difference seen is printed
//! (`cargo test --test demo_logs -- --nocapture`). Paths in strings (`source`) are written
//! relative to the repository (`<repo>`) or the test's temporary folder (`<tmp>`), so the
//! golden logs hold for any checkout.
//!
//! The fitted PatchCore demo `scenarios/fitted/brick.toml` is included: its data set is
//! generated (tools/datasets/make_anomaly_sets.py, seeded) and fitted into a temporary
//! folder first (about half a minute). Its `model.sha256` is the artifact's, which changes
//! with every fit (the header records when it was made), so that one field is not compared.
//!
//! `demo-synthetic` is a live camera stand-in paced at 30 frames/s that drops frames when
//! inference falls behind, which depends on the machine's load; here it runs unpaced and
//! not live (`fps = 0`, `live = false`) so every one of its 300 frames is logged.
//!
//! Regenerate the golden logs, only on code whose behaviour is known to be right (e.g. before
//! a refactoring lands):
//!
//!     LINESIDE_BLESS=1 cargo test --test demo_logs
//!
//! Whole runs can be compared by hand the same way with `scripts/compare-logs.py A B`.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Record keys that differ from run to run.
const IGNORED: [&str; 5] = ["time", "time_local", "station", "latency_ms", "run_id"];
const TOLERANCE: f64 = 1e-5;
/// Numbers the log rounds (boxes to 0.1 px, areas to whole pixels): any change is real.
const EXACT: [&str; 3] = ["box", "quad", "area_px"];

fn bless() -> bool {
    std::env::var_os("LINESIDE_BLESS").is_some_and(|v| v != "0" && !v.is_empty())
}

fn golden_path(id: &str) -> PathBuf {
    common::root()
        .join("tests/golden")
        .join(format!("{id}.jsonl"))
}

/// The largest numeric difference seen, and where.
#[derive(Default)]
struct Largest {
    diff: f64,
    at: String,
}

/// Compares `got` with `want`, pushing one line per mismatch onto `errs`.
fn compare(
    want: &Value,
    got: &Value,
    at: &str,
    skip: &[&str],
    errs: &mut Vec<String>,
    max: &mut Largest,
) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let keys = |o: &serde_json::Map<String, Value>| -> Vec<String> {
                o.keys()
                    .filter(|k| !IGNORED.contains(&k.as_str()) && !skip.contains(&k.as_str()))
                    .cloned()
                    .collect()
            };
            let (wk, gk) = (keys(w), keys(g));
            if wk != gk {
                errs.push(format!("{at}: keys {gk:?}, golden {wk:?}"));
                return;
            }
            for k in wk {
                let at = format!("{at}.{k}");
                if EXACT.contains(&k.as_str()) {
                    if w[&k] != g[&k] {
                        errs.push(format!("{at}: {}, golden {}", g[&k], w[&k]));
                    }
                } else {
                    compare(&w[&k], &g[&k], &at, skip, errs, max);
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                errs.push(format!("{at}: {} items, golden {}", g.len(), w.len()));
                return;
            }
            for (i, (w, g)) in w.iter().zip(g).enumerate() {
                compare(w, g, &format!("{at}[{i}]"), skip, errs, max);
            }
        }
        (Value::Number(w), Value::Number(g)) if w.is_f64() || g.is_f64() => {
            let (w, g) = (w.as_f64().unwrap(), g.as_f64().unwrap());
            let diff = (w - g).abs();
            if diff > max.diff {
                *max = Largest {
                    diff,
                    at: format!("{at} ({g} vs golden {w})"),
                };
            }
            if diff > TOLERANCE && diff > TOLERANCE * w.abs().max(g.abs()) {
                errs.push(format!("{at}: {g}, golden {w}"));
            }
        }
        // Integers, strings, booleans, null; also a number against anything else.
        _ => {
            if want != got {
                errs.push(format!("{at}: {got}, golden {want}"));
            }
        }
    }
}

/// Compares a run's records with the golden log of scenario `id` (or writes it when
/// blessing). `skip` names keys left out anywhere in the records.
fn check_against_golden(id: &str, records: &[Value], skip: &[&str]) {
    let path = golden_path(id);
    if bless() {
        let mut text = String::new();
        for r in records {
            let mut r = r.clone();
            if let Some(o) = r.as_object_mut() {
                for k in IGNORED {
                    o.remove(k);
                }
            }
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        println!(
            "{id}: blessed {} records -> {}",
            records.len(),
            path.display()
        );
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nMake it with LINESIDE_BLESS=1 cargo test --test demo_logs",
            path.display()
        )
    });
    let golden: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut errs = Vec::new();
    let mut max = Largest::default();
    if golden.len() != records.len() {
        errs.push(format!(
            "{} records, golden {}",
            records.len(),
            golden.len()
        ));
    }
    for (i, (w, g)) in golden.iter().zip(records).enumerate() {
        let at = format!("record {i} ({})", g["item"].as_str().unwrap_or("-"));
        compare(w, g, &at, skip, &mut errs, &mut max);
    }
    println!(
        "{id}: {} records; largest numeric difference {:e}{}",
        records.len(),
        max.diff,
        if max.at.is_empty() {
            String::new()
        } else {
            format!(" at {}", max.at)
        }
    );
    assert!(
        errs.is_empty(),
        "{id}: defect log differs from {} in {} place(s):\n{}",
        path.display(),
        errs.len(),
        errs.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Rewrites the temporary folder `tmp` and the repository root in every string as `<tmp>`
/// and `<repo>`.
fn relative_paths(v: &mut Value, tmp: &Path) {
    match v {
        Value::String(s) => {
            let mut subs = vec![(tmp.to_path_buf(), "<tmp>")];
            if let Ok(c) = tmp.canonicalize() {
                subs.push((c, "<tmp>"));
            }
            subs.push((common::root(), "<repo>"));
            for (p, name) in subs {
                *s = s.replace(&p.display().to_string(), name);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| relative_paths(v, tmp)),
        Value::Object(o) => o.values_mut().for_each(|v| relative_paths(v, tmp)),
        _ => {}
    }
}

/// Runs one scenario file with its output under `tmp` and returns its id and defect-log
/// records.
fn run(scenario: &Path, tmp: &Path, out: &str) -> (String, Vec<Value>) {
    let plan = lineside::scenario::check(scenario)
        .unwrap_or_else(|d| panic!("{}: {d:?}", scenario.display()));
    let mut records = common::run_to_log(&plan, &tmp.join(out));
    records.iter_mut().for_each(|r| relative_paths(r, tmp));
    (plan.id.clone(), records)
}

#[test]
fn every_demo_scenario_logs_what_its_golden_log_holds() {
    // The demos, and the catalogue rows that have a golden log (those with trained models).
    let catalogue = common::root().join("scenarios/catalogue");
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(common::root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .chain(
            [
                "03-cover-glass",
                "10-screw-locking",
                "26-kit-completeness",
                "29-food-label",
            ]
            .iter()
            .map(|stem| catalogue.join(format!("{stem}.toml"))),
        )
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        // See the header: a live camera stand-in runs unpaced, dropping nothing.
        let text = std::fs::read_to_string(s).unwrap();
        let file = if text.contains("live = true") {
            common::scenario_copy(s, tmp.path(), |t| {
                t.replace("live = true", "live = false")
                    .replace("fps = 30", "fps = 0")
            })
        } else {
            s.clone()
        };
        let (id, records) = run(&file, tmp.path(), &format!("out-{i}"));
        assert!(!records.is_empty(), "{id}: empty defect log");
        // One scenario's difference must not hide the others'.
        let r = std::panic::catch_unwind(|| check_against_golden(&id, &records, &[]));
        if let Err(e) = r {
            failures.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("{id}: failed")),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn fitted_brick_demo_logs_what_its_golden_log_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("anomaly");
    common::render_dataset("make_anomaly_sets.py", &data, &["--sets", "brick"]);
    // The committed scenario with its data, artifact and output moved into `tmp`.
    let text = common::relocated_fitted("brick.toml", "anomaly", &data, tmp.path());
    let scenario = tmp.path().join("brick.toml");
    std::fs::write(&scenario, text).unwrap();
    let plan = lineside::fit::fit_plan(&scenario).unwrap_or_else(|d| panic!("{d:?}"));
    lineside::fit::fit(
        &plan,
        &lineside::fit::FitOptions {
            progress: false,
            threads: 2,
        },
    )
    .unwrap();
    let (id, records) = run(&scenario, tmp.path(), "out");
    check_against_golden(&id, &records, &["sha256"]);
}
