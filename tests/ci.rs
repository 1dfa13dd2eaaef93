//! What CI runs: `.ci/run` is `scripts/test.sh`, and that runs the ARM64 check too.

mod common;

/// Lines of a shell script that are not comments.
fn code_lines(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(common::root().join(path)).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Issue 10: `scripts/arm64-check.sh` passed by hand but CI never ran it.
#[test]
fn arm64_check_runs_in_ci() {
    assert!(
        code_lines(".ci/run")
            .iter()
            .any(|l| l.contains("scripts/test.sh")),
        ".ci/run runs scripts/test.sh"
    );
    assert!(
        code_lines("scripts/test.sh")
            .iter()
            .any(|l| l.contains("bash scripts/arm64-check.sh")),
        "scripts/test.sh runs the ARM64 check"
    );
    // The check installs what it needs itself (a fresh CI machine has neither).
    let check = code_lines("scripts/arm64-check.sh").join("\n");
    for tool in [
        "gcc-aarch64-linux-gnu",
        "qemu-user-static",
        "rustup target add",
    ] {
        assert!(check.contains(tool), "arm64-check.sh installs {tool}");
    }
}

/// Issue 10: the fuzz targets ran by hand only; CI runs each for a few seconds, on the
/// machine's one toolchain (a fresh machine has no nightly and cannot fetch one).
#[test]
fn fuzz_smoke_runs_in_ci() {
    assert!(
        code_lines("scripts/test.sh")
            .iter()
            .any(|l| l.contains("bash scripts/fuzz.sh")),
        "scripts/test.sh runs the fuzz smoke"
    );
    let fuzz = code_lines("scripts/fuzz.sh").join("\n");
    assert!(
        !fuzz.contains("rustup toolchain install"),
        "fuzz.sh must not fetch a toolchain (no network for it on a line box or in CI)"
    );
    assert!(
        fuzz.contains("RUSTC_BOOTSTRAP=1"),
        "fuzz.sh falls back to the stable compiler"
    );
    // Every target in fuzz/Cargo.toml is in the script's default list.
    let manifest = std::fs::read_to_string(common::root().join("fuzz/Cargo.toml")).unwrap();
    for name in manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"'))
        .filter(|n| *n != "lineside-fuzz")
    {
        assert!(fuzz.contains(name), "fuzz.sh runs the {name} target");
    }
}
