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
