//! Hostile and foreign inputs (issue 10): sidecars written by other tools, header bombs,
//! truncated images, letterbox rounding, `devices --json` without a camera. Each test is
//! named after the issue item it covers and fails on the code before the fix.

mod common;

use std::path::Path;

use lineside::frame::{BufferPool, FrameOrigin, PixelBuf};
use lineside::pool::Pool;
use lineside::source::{Next, RawReplay, Source};

/// Plays every frame of `src`; returns (frames, skipped items with their errors).
fn drain(src: &mut dyn Source) -> (usize, Vec<(usize, String)>) {
    let pool: BufferPool = Pool::new(1, || PixelBuf::with_capacity(src.max_frame_bytes()));
    let (mut frames, mut skipped) = (0, Vec::new());
    for seq in 0.. {
        match src.next(seq, &pool) {
            Next::Frame(_) => frames += 1,
            Next::Skipped {
                origin: FrameOrigin::Item(item),
                error,
            } => skipped.push((item, error.to_string())),
            Next::Skipped { origin, error } => panic!("{origin:?} is not an item: {error}"),
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

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose IHDR declares `w`x`h` RGB with next to no data (a header bomb).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&w.to_be_bytes());
    chunk.extend_from_slice(&h.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    push_chunk(&mut v, b"IHDR", &chunk[4..]);
    // A few bytes of compressed data and the end: the whole bomb is under 80 bytes.
    push_chunk(
        &mut v,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    push_chunk(&mut v, b"IEND", &[]);
    v
}

fn push_chunk(v: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut chunk = kind.to_vec();
    chunk.extend_from_slice(data);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(&chunk);
    v.extend_from_slice(&crc32(&chunk).to_be_bytes());
}

/// A BMP file and info header declaring `w`x`h` at 24 bits, with no pixel data.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut v = b"BM".to_vec();
    v.extend_from_slice(&54u32.to_le_bytes()); // file size (a lie like the rest)
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    v.extend_from_slice(&40u32.to_le_bytes());
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&24u16.to_le_bytes());
    v.extend_from_slice(&[0; 24]);
    v
}

fn lineside(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lineside"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    // 134: SIGABRT from a failed allocation; any signal is a failure here.
    (out.status.code().unwrap_or(-1), text)
}

/// The demo scenario copied into `dir`, reading `frames` and writing to `dir/out`, with
/// `edit` applied to its text.
fn demo_on(dir: &Path, frames: &Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let photos = common::root().join("scenarios/samples/photos");
    let out_dir = dir.join("out");
    common::scenario_copy(&common::root().join("scenarios/demo.toml"), dir, |s| {
        edit(
            s.replace(&photos.display().to_string(), frames.to_str().unwrap())
                .replace(
                    &common::root().join("out/demo").display().to_string(),
                    out_dir.to_str().unwrap(),
                ),
        )
    })
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("out/defects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn item_3_png_header_bomb_is_an_error_record_and_good_images_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let photos = common::root().join("scenarios/samples/photos");
    std::fs::copy(photos.join("coffee.png"), frames.join("a_coffee.png")).unwrap();
    write(&frames.join("b_bomb.png"), png_header(100_000, 100_000));
    write(&frames.join("c_bomb.bmp"), bmp_header(60_000, 60_000));
    std::fs::copy(photos.join("chelsea.png"), frames.join("d_chelsea.png")).unwrap();
    let scenario = demo_on(dir.path(), &frames, |s| s);
    let (code, text) = lineside(
        &["run", "--no-progress", scenario.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "{text}");
    let r = records(dir.path());
    assert_eq!(r.len(), 4, "{r:?}");
    for (i, name) in [(1, "b_bomb.png"), (2, "c_bomb.bmp")] {
        assert_eq!(r[i]["item"], name);
        assert_eq!(r[i]["verdict"], "ERROR");
        let e = r[i]["error"].as_str().unwrap();
        assert!(e.contains("max_pixels"), "{e}");
    }
    for i in [0, 3] {
        assert_ne!(r[i]["verdict"], "ERROR", "{}", r[i]);
    }
    // validate names the files run would log as ERROR.
    let (code, text) = lineside(&["validate", scenario.to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("b_bomb.png") && text.contains("c_bomb.bmp"),
        "{text}"
    );
}

#[test]
fn item_3_sizes_from_sidecars_and_config_are_limited_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    // A raw sidecar declaring 100000 x 100000: refused by validate and by run, never aborts.
    write(&frames.join("big.raw"), vec![0u8; 16]);
    write(
        &frames.join("big.raw.json"),
        r#"{"width":100000,"height":100000,"fourcc":"GREY"}"#,
    );
    let scenario = demo_on(dir.path(), &frames, |s| {
        s.replace("kind = \"images\"", "kind = \"raw\"")
    });
    for cmd in [&["validate"][..], &["run", "--no-progress"]] {
        let mut args = cmd.to_vec();
        args.push(scenario.to_str().unwrap());
        let (code, text) = lineside(&args, dir.path());
        assert_eq!(code, 1, "{cmd:?}: {text}");
        assert!(text.contains("max_pixels"), "{cmd:?}: {text}");
    }
    // A few raw frames, so the other checks below are what fails.
    write(
        &frames.join("big.raw.json"),
        r#"{"width":4,"height":2,"fourcc":"GREY"}"#,
    );
    let cases: [(&str, &str, &str); 3] = [
        ("[model]", "[model]\nworkers = 100000", "model.workers"),
        (
            "[model]",
            "[model]\nmax_input_pixels = 1000",
            "max_input_pixels",
        ),
        ("[source]", "[source]\nmax_pixels = 4", "max_pixels"),
    ];
    for (from, to, want) in cases {
        let scenario = demo_on(dir.path(), &frames, |s| {
            s.replace("kind = \"images\"", "kind = \"raw\"")
                .replacen(from, to, 1)
        });
        let (code, text) = lineside(&["validate", scenario.to_str().unwrap()], dir.path());
        assert_eq!(code, 1, "{to}: {text}");
        assert!(text.contains(want), "{to}: {text}");
    }
}

#[test]
fn item_5_truncated_jpeg_is_an_error_record_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let photos = common::root().join("scenarios/samples/photos");
    let img = image::open(photos.join("coffee.png")).unwrap();
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    write(&frames.join("a_whole.jpg"), &jpeg);
    // Cut mid-scan: the decoder alone would fill the rest with grey and succeed.
    write(&frames.join("b_cut.jpg"), &jpeg[..jpeg.len() * 2 / 3]);
    let png = std::fs::read(photos.join("chelsea.png")).unwrap();
    write(&frames.join("c_cut.png"), &png[..png.len() * 2 / 3]);
    let scenario = demo_on(dir.path(), &frames, |s| s);
    let (code, text) = lineside(
        &["run", "--no-progress", scenario.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "{text}");
    let r = records(dir.path());
    assert_eq!(r.len(), 3, "{r:?}");
    assert_ne!(r[0]["verdict"], "ERROR", "{}", r[0]);
    for (i, name) in [(1, "b_cut.jpg"), (2, "c_cut.png")] {
        assert_eq!(r[i]["item"], name);
        assert_eq!(r[i]["verdict"], "ERROR", "{}", r[i]);
        let e = r[i]["error"].as_str().unwrap();
        assert!(e.contains(name), "{e}");
    }
    assert!(
        r[1]["error"].as_str().unwrap().contains("truncated"),
        "{}",
        r[1]
    );
}

#[test]
fn item_6_validate_opens_sidecars_checks_roi_and_refuses_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let photos = common::root().join("scenarios/samples/photos");
    // chelsea.png is 451x300.
    std::fs::copy(photos.join("chelsea.png"), frames.join("chelsea.png")).unwrap();
    let validate = |edit: &dyn Fn(String) -> String| {
        let scenario = demo_on(dir.path(), &frames, edit);
        lineside(&["validate", scenario.to_str().unwrap()], dir.path())
    };
    let (code, text) = validate(&|s| s);
    assert_eq!(code, 0, "{text}");
    for roi in [
        "[400, 0, 100, 100]",
        "[0, 0, 0, 10]",
        "[1000, 1000, 10, 10]",
    ] {
        let (code, text) =
            validate(&|s| s.replacen("[preprocess]", &format!("[preprocess]\nroi = {roi}"), 1));
        assert_eq!(code, 1, "{roi}: {text}");
        assert!(text.contains("preprocess.roi"), "{roi}: {text}");
    }
    // Raw replays: a missing sidecar and an invalid one.
    let raw_frames = dir.path().join("raw");
    std::fs::create_dir(&raw_frames).unwrap();
    write(&raw_frames.join("a.raw"), vec![0u8; 8]);
    let raw_scenario = |dir: &Path| {
        let raw = raw_frames.join("a.raw");
        demo_on(dir, &frames, |s| {
            s.replace("kind = \"images\"", "kind = \"raw\"")
                .replace(frames.to_str().unwrap(), raw.to_str().unwrap())
        })
    };
    let scenario = raw_scenario(dir.path());
    let (code, text) = lineside(&["validate", scenario.to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "missing sidecar: {text}");
    assert!(text.contains("sidecar"), "{text}");
    write(
        &raw_frames.join("a.raw.json"),
        r#"{"width":4,"height":"two"}"#,
    );
    let (code, text) = lineside(&["validate", scenario.to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "invalid sidecar: {text}");
    assert!(text.contains("invalid sidecar"), "{text}");
    // An empty folder of scenarios checks nothing: an error, not a silent ok.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, text) = lineside(&["validate", empty.to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no scenario files"), "{text}");
}
