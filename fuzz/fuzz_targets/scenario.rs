//! Scenario parser + plan: the bytes as a scenario file beside the bundled models (the
//! layout of tests/fixtures/malformed/, so `../../../models/...` resolves), then
//! `scenario::validate`, which opens what `run` would.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let tmp = common::scratch("scenario");
        let dir = tmp.join("tests/fixtures/malformed");
        std::fs::create_dir_all(&dir).expect("scratch");
        let link = |from: PathBuf, to: PathBuf| {
            if !to.exists() {
                std::os::unix::fs::symlink(from, to).expect("symlink");
            }
        };
        link(root.join("models"), tmp.join("models"));
        link(root.join("scenarios"), tmp.join("scenarios"));
        link(root.join("tests/fixtures/malformed/data"), dir.join("data"));
        dir.join("fuzz.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).expect("write scenario");
    let _ = lineside::scenario::validate(path);
});
