//! The catalogue (`scenarios/catalogue/`): one scenario file per row of SCENARIOS.md, all 32,
//! each with sample data rendered at set-up (`data/catalogue/`, tools/catalogue/*.py) and a
//! `truth.json` of expected verdicts. This test does what a newcomer would:
//!
//! 1. fits every scenario that has a `[fit]` section (PatchCore, teach by example),
//! 2. validates all 32 files,
//! 3. runs the whole folder in one `lineside run` process,
//! 4. and checks each scenario's defect log against its truth: every frame decided, none
//!    an ERROR, and at least 95% of the verdicts as expected.
//!
//! The catalogue is mirrored into a temporary folder (scenario files copied, models, samples
//! and data linked) so fitted artifacts and logs never land in the checkout.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const MIN_ACCURACY: f64 = 0.95;

/// The row slugs of SCENARIOS.md, in order: row N is `SLUGS[N - 1]`.
const SLUGS: [&str; 32] = [
    "pcb-bare-board",
    "smt-solder-joint",
    "cover-glass",
    "connector-pins",
    "component-leads",
    "magnetic-tile",
    "commutator-surface",
    "battery-xray",
    "electrode-coating",
    "screw-locking",
    "label-proof",
    "printed-fabric",
    "woven-fabric",
    "yarn-dyed-fabric",
    "garment-seam",
    "plush-toy",
    "molded-part",
    "mold-protection",
    "shoe-sole",
    "leather-upper",
    "edge-banding",
    "wood-veneer",
    "aluminum-profile",
    "steel-surface",
    "fasteners",
    "kit-completeness",
    "printed-packaging",
    "paper-web",
    "food-label",
    "bottle-cap-seal",
    "grain-sorting",
    "ppe-compliance",
];

fn lineside(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A copy of the checkout's layout in `tmp`: the catalogue's files copied, everything they
/// read linked, and `models/fitted/catalogue` and `out/` fresh and empty.
fn mirror(tmp: &Path) -> PathBuf {
    let root = common::root();
    let catalogue = tmp.join("scenarios/catalogue");
    std::fs::create_dir_all(&catalogue).unwrap();
    for entry in std::fs::read_dir(root.join("scenarios/catalogue")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, catalogue.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::os::unix::fs::symlink(
        root.join("scenarios/samples"),
        tmp.join("scenarios/samples"),
    )
    .unwrap();
    // Recorded calibrations (`lineside calibrate`) sit in a sub-folder: not scenarios.
    std::os::unix::fs::symlink(
        root.join("scenarios/catalogue/calibration"),
        catalogue.join("calibration"),
    )
    .unwrap();
    std::fs::create_dir_all(tmp.join("models/fitted/catalogue")).unwrap();
    for entry in std::fs::read_dir(root.join("models")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "fitted") {
            std::os::unix::fs::symlink(&path, tmp.join("models").join(path.file_name().unwrap()))
                .unwrap();
        }
    }
    let data = root.join("data/catalogue");
    assert!(
        data.is_dir(),
        "{} is missing: scripts/setup.sh renders the catalogue's sample data",
        data.display()
    );
    std::fs::create_dir_all(tmp.join("data")).unwrap();
    std::os::unix::fs::symlink(&data, tmp.join("data/catalogue")).unwrap();
    catalogue
}

/// Catalogue files by row number, checking the names follow SCENARIOS.md.
fn files_by_row(catalogue: &Path) -> BTreeMap<usize, PathBuf> {
    let mut rows = BTreeMap::new();
    for entry in std::fs::read_dir(catalogue).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let (number, slug) = stem.split_once('-').unwrap();
        let row: usize = number.parse().unwrap();
        assert_eq!(
            slug,
            SLUGS[row - 1],
            "{}: row {row} is `{}`",
            path.display(),
            SLUGS[row - 1]
        );
        assert!(rows.insert(row, path).is_none());
    }
    rows
}

#[test]
fn all_32_rows_fit_validate_run_and_meet_their_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let catalogue = mirror(tmp.path());
    let rows = files_by_row(&catalogue);
    let missing: Vec<usize> = (1..=32).filter(|r| !rows.contains_key(r)).collect();
    assert!(
        missing.is_empty(),
        "catalogue rows without a scenario file: {missing:?}"
    );

    for file in rows.values() {
        let text = std::fs::read_to_string(file).unwrap();
        if text.contains("\n[fit]") {
            let (ok, out) = lineside(
                &["fit", &file.to_string_lossy(), "--no-progress"],
                tmp.path(),
            );
            assert!(ok, "fit {}:\n{out}", file.display());
        }
    }
    let mut args = vec!["validate".to_string()];
    args.extend(rows.values().map(|f| f.to_string_lossy().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = lineside(&args, tmp.path());
    assert!(ok, "validate:\n{out}");

    let (ok, out) = lineside(
        &["run", &catalogue.to_string_lossy(), "--no-progress"],
        tmp.path(),
    );
    assert!(ok, "run scenarios/catalogue/:\n{out}");

    let mut failures = Vec::new();
    for (row, file) in &rows {
        let plan = lineside::scenario::check(file).unwrap_or_else(|d| panic!("{d:?}"));
        let (checked, wrong) = score(file, &plan.output_dir);
        let accuracy = 1.0 - wrong.len() as f64 / checked as f64;
        eprintln!(
            "row {row:2} {:24} {checked:3} frames, accuracy {accuracy:.3}",
            plan.id
        );
        if accuracy < MIN_ACCURACY {
            failures.push(format!(
                "row {row} ({}): {accuracy:.3}, wrong: {wrong:?}",
                plan.id
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "below {MIN_ACCURACY}:\n{}",
        failures.join("\n")
    );
}

/// Frames checked and those decided against the truth (item, expected, got).
fn score(file: &Path, output_dir: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(file).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let source = table["source"]["path"].as_str().unwrap();
    let folder = file.parent().unwrap().join(source);
    let truth: Value = serde_json::from_slice(
        &std::fs::read(folder.join("truth.json"))
            .unwrap_or_else(|e| panic!("{}: truth.json: {e}", folder.display())),
    )
    .unwrap();
    // `frames` is read as `images`, verdicts in any case (as `lineside eval` reads them).
    let expected = truth
        .get("images")
        .or_else(|| truth.get("frames"))
        .and_then(Value::as_object)
        .unwrap();
    let log = std::fs::read_to_string(output_dir.join("defects.jsonl")).unwrap();
    let mut seen = BTreeMap::new();
    for line in log.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let item = r["item"].as_str().unwrap().to_string();
        let verdict = r["verdict"].as_str().unwrap().to_string();
        assert_ne!(
            verdict,
            "ERROR",
            "{}: {item}: {}",
            file.display(),
            r["error"]
        );
        seen.insert(item, verdict);
    }
    let mut wrong = Vec::new();
    for (item, want) in expected {
        let want = want["verdict"].as_str().unwrap().to_uppercase();
        let got = seen
            .get(item)
            .unwrap_or_else(|| panic!("{}: no record for {item}", file.display()));
        if *got != want {
            wrong.push(format!("{item}: expected {want}, got {got}"));
        }
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "{}: every frame has a truth",
        file.display()
    );
    (expected.len(), wrong)
}
