//! Shared helpers of the capture tests (`tests/v4l2_*.rs`), which run lineside's camera
//! source against the emulated device of the `lineside-v4l2-emulator` crate: the real `v4l`
//! calls, real ioctls from lineside's ring, real `mmap` of the device's buffers.

// Each test file uses a subset.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lineside::frame::{BufferPool, Frame, PixelBuf};
use lineside::preprocess::{ColorOrder, Fit, Interpolation, Layout, PreprocessSpec};
use lineside::source::v4l2::{CaptureFormat, V4l2Config, V4l2Source};
use lineside::source::{Next, Source};
use lineside_v4l2_emulator::{uvc_controls, EmuConfig, EmuFormat, FrameFn};

// The standard V4L2 control ids (linux/v4l2-controls.h) the emulated camera offers.
pub const CID_AUTO_WHITE_BALANCE: u32 = v4l::v4l_sys::V4L2_CID_AUTO_WHITE_BALANCE;
pub const CID_GAIN: u32 = v4l::v4l_sys::V4L2_CID_GAIN;
pub const CID_WHITE_BALANCE_TEMPERATURE: u32 = v4l::v4l_sys::V4L2_CID_WHITE_BALANCE_TEMPERATURE;
pub const CID_EXPOSURE_AUTO: u32 = v4l::v4l_sys::V4L2_CID_EXPOSURE_AUTO;
pub const CID_EXPOSURE_ABSOLUTE: u32 = v4l::v4l_sys::V4L2_CID_EXPOSURE_ABSOLUTE;

pub const DEV: &str = "/dev/video-lineside-test";
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// A test pattern byte that depends on the frame, the plane, the row and the column, so
/// a wrong stride, a stale buffer or a duplicated frame shows.
pub fn pat(seq: u32, plane: usize, y: usize, x: usize) -> u8 {
    (seq as usize * 31 + plane * 101 + y * 7 + x * 3) as u8
}

/// A whole plane with padding bytes (0xEE) past each row's `row_bytes`.
pub fn plane(seq: u32, p: usize, rows: usize, stride: usize, row_bytes: usize) -> Vec<u8> {
    let mut v = vec![0xEE; rows * stride];
    for y in 0..rows {
        for x in 0..row_bytes {
            v[y * stride + x] = pat(seq, p, y, x);
        }
    }
    v
}

pub fn emu(formats: Vec<EmuFormat>, frame: FrameFn) -> EmuConfig {
    EmuConfig {
        path: DEV.into(),
        formats,
        mplane: false,
        fps: 0.0,
        controls: uvc_controls(),
        frame,
        unplug_after: None,
        replug_after: Duration::from_millis(150),
    }
}

pub fn cfg(format: CaptureFormat, width: u32, height: u32) -> V4l2Config {
    V4l2Config {
        device: PathBuf::from(DEV),
        format,
        width,
        height,
        fps: None,
        buffers: 4,
        controls: Vec::new(),
        timeout: Duration::from_millis(1000),
    }
}

/// A single-planar format with a padded stride, frames drawn by `pat`.
pub fn padded(
    code: &[u8; 4],
    w: u32,
    h: u32,
    row_bytes: u32,
    pad: u32,
    rows: u32,
) -> (EmuFormat, FrameFn) {
    let stride = row_bytes + pad;
    let f = EmuFormat::new(code, w, h, stride, &[stride * rows]);
    let frame: FrameFn = Arc::new(move |seq, f: &EmuFormat| {
        vec![plane(
            seq,
            0,
            rows as usize,
            f.bytesperline as usize,
            row_bytes as usize,
        )]
    });
    (f, frame)
}

pub fn pool(bytes: usize) -> BufferPool {
    BufferPool::new(4, || PixelBuf::with_capacity(bytes))
}

pub fn next_frame(src: &mut V4l2Source, seq: u64, pool: &BufferPool) -> Frame {
    for _ in 0..50 {
        match src.next(seq, pool) {
            Next::Frame(f) => return f,
            Next::Event(_) => continue,
            Next::Skipped { error, .. } => panic!("skipped: {error}"),
            Next::Lost { count, .. } => panic!("lost {count}"),
            Next::End => panic!("end"),
        }
    }
    panic!("no frame after 50 tries")
}

pub fn spec(w: u32, h: u32, color: ColorOrder) -> PreprocessSpec {
    PreprocessSpec {
        roi: None,
        fit: Fit::Stretch,
        crop_fraction: 1.0,
        pad_value: 0,
        interpolation: Interpolation::Bilinear,
        color,
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
        layout: Layout::Nchw,
        width: w as usize,
        height: h as usize,
    }
}

/// Whether `addr` lies in a shared mapping of the emulated device's memfd.
pub fn in_device_mapping(addr: usize) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines().any(|l| {
        let Some((range, rest)) = l.split_once(' ') else {
            return false;
        };
        let Some((a, b)) = range.split_once('-') else {
            return false;
        };
        let (a, b) = (
            usize::from_str_radix(a, 16).unwrap_or(0),
            usize::from_str_radix(b, 16).unwrap_or(0),
        );
        (a..b).contains(&addr) && rest.contains("memfd:lineside-emulated-video")
    })
}

pub fn write_scenario(dir: &std::path::Path, source: &str, rest: &str) -> PathBuf {
    let p = dir.join("camera.toml");
    let text = format!("[scenario]\nid = \"cam\"\n\n[source]\n{source}\n{rest}");
    std::fs::write(&p, text).expect("write scenario");
    p
}

pub const NO_MODEL: &str = "[model]\npath = \"none.onnx\"\n\n[head]\nkind = \"classify\"\n";
