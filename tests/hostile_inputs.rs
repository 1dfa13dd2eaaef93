//! Hostile and foreign inputs (issue 10): sidecars written by other tools, header bombs,
//! truncated images, letterbox rounding, `devices --json` without a camera. Each test is
//! named after the issue item it covers and fails on the code before the fix.

mod common;

use std::path::Path;

use lineside::frame::{BufferPool, PixelBuf};
use lineside::pool::Pool;
use lineside::source::{Next, RawReplay, Source};

/// Plays every frame of `src`; returns (frames, skipped items with their errors).
fn drain(src: &mut dyn Source) -> (usize, Vec<(usize, String)>) {
    let pool: BufferPool = Pool::new(1, || PixelBuf::with_capacity(src.max_frame_bytes()));
    let (mut frames, mut skipped) = (0, Vec::new());
    for seq in 0.. {
        match src.next(seq, &pool) {
            Next::Frame(_) => frames += 1,
            Next::Skipped { item, error } => skipped.push((item, error.to_string())),
            Next::End => break,
            _ => {}
        }
    }
    (frames, skipped)
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn item_10_v4l2_sidecar_names_stem_json_and_extra_fields_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // 4x2 YUYV with 2 bytes of row padding, two frames; the sidecar as a V4L2 tool writes it.
    write(&dir.path().join("cam.raw"), vec![128u8; 2 * 10 * 2]);
    write(
        &dir.path().join("cam.json"),
        r#"{"width":4,"height":2,"pixelformat":"YUYV","bytesperline":10,"sizeimage":20,
            "field":"none","colorspace":"srgb","timestamp_ns":[1,2]}"#,
    );
    let mut src = RawReplay::open(dir.path(), 1).expect("a V4L2-style sidecar is accepted");
    assert_eq!(src.max_frame_bytes(), 20);
    let (frames, skipped) = drain(&mut src);
    assert_eq!((frames, skipped.len()), (2, 0), "{skipped:?}");
    assert_eq!(src.item_names(), vec!["cam.raw".to_string()]);
}

#[test]
fn item_10_sidecar_arithmetic_is_checked() {
    for (stride, why) in [
        ((1u64 << 63) + 8, "stride x height wraps to a small number"),
        (1u64 << 63, "stride x height wraps to zero"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.raw"), vec![0u8; 64]);
        write(
            &dir.path().join("a.raw.json"),
            format!(r#"{{"width":4,"height":2,"fourcc":"GREY","stride":{stride}}}"#),
        );
        match RawReplay::open(dir.path(), 1) {
            Ok(_) => panic!("{why}: opened"),
            Err(e) => assert!(e.to_string().contains("a.raw.json"), "{why}: {e}"),
        }
    }
}

#[test]
fn item_15_devices_json_without_a_camera_prints_an_empty_list() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lineside"))
        .args(["devices", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // stdout is JSON whatever is attached: `[]` on a machine without cameras.
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.is_array(), "{list}");
    let attached = std::fs::read_dir("/dev").is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("video"))
    });
    if !attached {
        assert_eq!(list, serde_json::json!([]));
    }
}
