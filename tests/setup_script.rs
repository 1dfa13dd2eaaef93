//! Set-up checks that decide what `scripts/setup.sh` installs.

mod common;

use std::process::Command;

fn has_libclang(dir: &std::path::Path) -> bool {
    Command::new("bash")
        .arg(common::root().join("scripts/has-libclang.sh"))
        .arg(dir)
        .status()
        .expect("run bash")
        .success()
}

/// Issue 10 item 13: a Debian image with only `libclang-cpp.so.14` made set-up skip
/// libclang-dev, and bindgen then failed with "Unable to find libclang".
#[test]
fn item_13_libclang_cpp_alone_is_not_libclang() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libclang-cpp.so.14"), b"").unwrap();
    assert!(
        !has_libclang(dir.path()),
        "libclang-cpp is not what bindgen loads"
    );
    std::fs::write(dir.path().join("libclang-14.so.1"), b"").unwrap();
    assert!(has_libclang(dir.path()));
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("libclang.so.1"), b"").unwrap();
    assert!(has_libclang(other.path()));
}
