//! Shared test helpers: paths, the Python reference environment, frame files.
#![allow(dead_code)]

pub mod counting;
pub mod service;

use std::path::{Path, PathBuf};
use std::process::Command;

use lineside::frame::{FrameLayout, PixelFormat};
use lineside::source::RawSidecar;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference Python (OpenCV, Pillow, onnxruntime) that scripts/setup.sh installs.
pub fn python() -> PathBuf {
    let p = root().join(".cache/venv/bin/python");
    assert!(
        p.is_file(),
        "reference Python environment missing at {}: run scripts/setup.sh",
        p.display()
    );
    p
}

pub fn run_python(script: &str, args: &[&Path]) {
    let out = Command::new(python())
        .arg(root().join("tools/reference").join(script))
        .args(args)
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `frames` back to back into `path` with the sidecar the raw replay reads.
pub fn write_raw(path: &Path, layout: &FrameLayout, frames: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for f in frames {
        bytes.extend_from_slice(f);
    }
    std::fs::write(path, bytes).unwrap();
    let sidecar = RawSidecar {
        width: layout.width,
        height: layout.height,
        fourcc: layout.format.to_string(),
        stride: Some(layout.stride),
        frame_bytes: None,
    };
    std::fs::write(
        RawSidecar::sidecar_path(path),
        serde_json::to_vec(&sidecar).unwrap(),
    )
    .unwrap();
}

/// A real photo scaled to `w`x`h`, as packed RGB.
pub fn photo_rgb(name: &str, w: u32, h: u32) -> Vec<u8> {
    let img = image::open(root().join("scenarios/samples/photos").join(name)).unwrap();
    img.resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
}

/// Encodes packed RGB into `format` with `pad` bytes of row padding.
pub fn encode_frame(
    rgb: &[u8],
    w: u32,
    h: u32,
    format: PixelFormat,
    pad: usize,
) -> (FrameLayout, Vec<u8>) {
    let layout = FrameLayout {
        stride: format.min_stride(w) + pad,
        ..FrameLayout::packed(w, h, format)
    };
    let mut bytes = vec![0xA5u8; layout.frame_len()];
    lineside::source::encode(&layout, &mut bytes, |x, y| {
        let i = (y * w + x) as usize * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    });
    (layout, bytes)
}

/// Copies a scenario file into `dir` with paths rewritten to absolute ones, then applies
/// `edit` to its text.
pub fn scenario_copy(src: &Path, dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let base = src.parent().unwrap().canonicalize().unwrap();
    let text = std::fs::read_to_string(src).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = ["path = \"", "labels = \"", "dir = \""]
            .iter()
            .find_map(|k| t.strip_prefix(k).map(|r| (k, r)))
        {
            let (key, r) = rest;
            let rel = &r[..r.find('"').unwrap()];
            out.push_str(&format!(
                "{key}{}\"\n",
                normalize(&base.join(rel)).display()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let out = edit(out);
    let p = dir.join(src.file_name().unwrap());
    std::fs::write(&p, out).unwrap();
    p
}

/// Removes `.` and `..` components without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Runs `lineside validate FILE` and returns its exit code and stderr+stdout; a panic is
/// never an acceptable answer.
pub fn validate_file(file: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lineside"))
        .arg("validate")
        .arg(file)
        .output()
        .expect("start lineside");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code(), text)
}

/// Runs `plan` through the runner behind `lineside run` with its output in `out_dir`, and
/// returns the defect log's records in order.
pub fn run_to_log(
    plan: &lineside::scenario::ScenarioPlan,
    out_dir: &Path,
) -> Vec<serde_json::Value> {
    let mut plan = plan.clone();
    plan.output_dir = out_dir.to_path_buf();
    let opts = lineside::runner::RunOptions::unattended(2);
    for r in lineside::runner::run_scenarios(std::slice::from_ref(&plan), &opts) {
        r.unwrap();
    }
    let log = std::fs::read_to_string(out_dir.join("defects.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Renders a data set with one of the committed generators (`tools/datasets/<script>`)
/// into `out`, with `args` (sets, counts).
pub fn render_dataset(script: &str, out: &Path, args: &[&str]) {
    let run = std::process::Command::new(python())
        .arg(root().join("tools/datasets").join(script))
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The text of a committed `scenarios/fitted/` scenario with its data (`../../data/<kind>/`)
/// at `data`, and its artifact and output moved into `tmp`.
pub fn relocated_fitted(name: &str, kind: &str, data: &Path, tmp: &Path) -> String {
    std::fs::read_to_string(root().join("scenarios/fitted").join(name))
        .unwrap()
        .replace(
            &format!("\"../../data/{kind}/"),
            &format!("\"{}/", data.display()),
        )
        .replace("\"../../models/fitted/", &format!("\"{}/", tmp.display()))
        .replace(
            "\"../../models/",
            &format!("\"{}/", root().join("models").display()),
        )
        .replace("\"../../out/", &format!("\"{}/out/", tmp.display()))
}

/// Renders teach-by-example data for catalogue row 31 (grain sorting) into `dir` with
/// `tools/catalogue/examples.py` (`args`: counts), and returns the row's folder.
pub fn render_grain(dir: &Path, args: &[&str]) -> PathBuf {
    let out = Command::new(python())
        .arg(root().join("tools/catalogue/examples.py"))
        .arg("--out")
        .arg(dir)
        .args(["--rows", "31"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "examples.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("31-grain-sorting")
}

/// The catalogue scenario of row 31 with its data at `data`, its artifact and output in
/// `tmp`, then `edit` applied to its text; written to `tmp/grain.toml`.
pub fn grain_scenario(tmp: &Path, data: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join("scenarios/catalogue/31-grain-sorting.toml"))
        .unwrap()
        .replace(
            "\"../../data/catalogue/31-grain-sorting/",
            &format!("\"{}/", data.display()),
        )
        .replace(
            "\"../../models/fitted/catalogue/",
            &format!("\"{}/", tmp.display()),
        )
        .replace(
            "\"../../models/",
            &format!("\"{}/", root().join("models").display()),
        )
        .replace("\"../../out/", &format!("\"{}/out/", tmp.display()));
    let p = tmp.join("grain.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}
