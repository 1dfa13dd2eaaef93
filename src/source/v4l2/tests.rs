//! Capture tests against the emulated device (crate `lineside-v4l2-emulator`): the real `v4l` calls, real
//! ioctls from lineside's ring, real `mmap` of the device's buffers.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::config::*;
use super::*;
use crate::frame::{BufferPool, FrameBuf, FrameLayout, PixelBuf, PixelFormat};
use crate::preprocess::{ColorOrder, Fit, Interpolation, Layout, PreprocessSpec, Preprocessor};
use crate::source::{Next, Source, SourceEvent};
use lineside_v4l2_emulator::*;

const DEV: &str = "/dev/video-lineside-test";
const WATCHDOG: Duration = Duration::from_secs(60);

/// A test pattern byte that depends on the frame, the plane, the row and the column, so
/// a wrong stride, a stale buffer or a duplicated frame shows.
fn pat(seq: u32, plane: usize, y: usize, x: usize) -> u8 {
    (seq as usize * 31 + plane * 101 + y * 7 + x * 3) as u8
}

/// A whole plane with padding bytes (0xEE) past each row's `row_bytes`.
fn plane(seq: u32, p: usize, rows: usize, stride: usize, row_bytes: usize) -> Vec<u8> {
    let mut v = vec![0xEE; rows * stride];
    for y in 0..rows {
        for x in 0..row_bytes {
            v[y * stride + x] = pat(seq, p, y, x);
        }
    }
    v
}

fn emu(formats: Vec<EmuFormat>, frame: FrameFn) -> EmuConfig {
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

fn cfg(format: CaptureFormat, width: u32, height: u32) -> V4l2Config {
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
fn padded(
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

fn pool(bytes: usize) -> BufferPool {
    BufferPool::new(4, || PixelBuf::with_capacity(bytes))
}

fn next_frame(src: &mut V4l2Source, seq: u64, pool: &BufferPool) -> crate::frame::Frame {
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

fn spec(w: u32, h: u32, color: ColorOrder) -> PreprocessSpec {
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
fn in_device_mapping(addr: usize) -> bool {
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

#[test]
fn capabilities_formats_sizes_rates_and_controls_are_listed() {
    let (yuyv, frame) = padded(b"YUYV", 64, 48, 128, 0, 48);
    let mjpg = EmuFormat::new(b"MJPG", 64, 48, 0, &[64 * 48 * 3]);
    let mut e = emu(
        vec![yuyv, mjpg, EmuFormat::new(b"YUYV", 32, 24, 64, &[64 * 24])],
        frame,
    );
    e.fps = 25.0;
    let (info, rep) = run_emulated(e, WATCHDOG, |_| describe(std::path::Path::new(DEV)));
    let info = info.expect("describe the emulated camera");
    assert_eq!(info.driver, "lineside-emu");
    assert_eq!(info.card, "Emulated Camera");
    assert!(!info.multi_planar);
    let fourccs: Vec<&str> = info.formats.iter().map(|f| f.fourcc.as_str()).collect();
    assert_eq!(fourccs, ["YUYV", "MJPG"]);
    let y = &info.formats[0];
    assert_eq!(y.lineside.as_deref(), Some("YUYV"));
    assert_eq!(y.sizes.len(), 2);
    assert_eq!((y.sizes[0].width, y.sizes[0].height), (64, 48));
    assert_eq!(y.sizes[0].fps, [25.0]);
    assert_eq!(info.formats[1].lineside.as_deref(), Some("MJPEG"));
    let names: Vec<&str> = info.controls.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"Gain") && names.contains(&"Exposure Time, Absolute"),
        "{names:?}"
    );
    let text = info.render();
    assert!(text.contains("64x48  fps: 25"), "{text}");
    assert!(text.contains("format = \"MJPEG\""), "{text}");
    assert_eq!(rep.opens, 1);
}

#[test]
fn a_refused_format_names_what_the_driver_offers() {
    let (yuyv, frame) = padded(b"YUYV", 64, 48, 128, 0, 48);
    let (err, _) = run_emulated(emu(vec![yuyv], frame), WATCHDOG, |_| {
        V4l2Source::open(&cfg(CaptureFormat::Pixel(PixelFormat::Uyvy), 64, 48)).err()
    });
    let msg = err.expect("UYVY must be refused").to_string();
    assert!(
        msg.contains("refuses UYVY") && msg.contains("YUYV (Emulated YUYV)"),
        "{msg}"
    );

    // A size the driver does not have: it substitutes its own, lineside says which exist.
    let (yuyv, frame) = padded(b"YUYV", 64, 48, 128, 0, 48);
    let (err, _) = run_emulated(emu(vec![yuyv], frame), WATCHDOG, |_| {
        V4l2Source::open(&cfg(CaptureFormat::Pixel(PixelFormat::Yuyv), 640, 480)).err()
    });
    let msg = err.expect("640x480 must be refused").to_string();
    assert!(
        msg.contains("instead of 640x480") && msg.contains("64x48"),
        "{msg}"
    );
}

/// Every uncompressed format: bytes reach preprocessing exactly as the driver wrote them,
/// at the address the driver's buffer is mapped, with padded strides honoured.
#[test]
fn uncompressed_frames_reach_preprocessing_in_place_and_byte_exact() {
    let (w, h) = (16u32, 8u32);
    let cases: [(PixelFormat, &[u8; 4], u32, u32); 7] = [
        (PixelFormat::Yuyv, b"YUYV", w * 2, h),
        (PixelFormat::Uyvy, b"UYVY", w * 2, h),
        (PixelFormat::Nv12, b"NV12", w, h + h / 2),
        (PixelFormat::Grey, b"GREY", w, h),
        (PixelFormat::Y16, b"Y16 ", w * 2, h),
        (PixelFormat::Rgb24, b"RGB3", w * 3, h),
        (PixelFormat::Bgr24, b"BGR3", w * 3, h),
    ];
    for (format, code, row_bytes, rows) in cases {
        let pad = 8;
        let (f, frame) = padded(code, w, h, row_bytes, pad, rows);
        let stride = (row_bytes + pad) as usize;
        let ((), _) = run_emulated(emu(vec![f], frame), WATCHDOG, |_| {
            let mut src = V4l2Source::open(&cfg(CaptureFormat::Pixel(format), w, h))
                .unwrap_or_else(|e| panic!("{format}: {e}"));
            let layout = src.frame_layout();
            assert_eq!(
                layout,
                FrameLayout {
                    width: w,
                    height: h,
                    format,
                    stride
                }
            );
            let pool = pool(src.max_frame_bytes());
            for seq in 0..6u64 {
                let frame = next_frame(&mut src, seq, &pool);
                let FrameBuf::Leased(lease) = &frame.buffer else {
                    panic!("{format}: an uncompressed frame must be a driver lease, not a copy")
                };
                // Pointer check: the pixels are read where the driver's buffer is mapped.
                assert_eq!(frame.bytes().as_ptr(), lease.mapped_at(), "{format}");
                assert!(
                    in_device_mapping(frame.bytes().as_ptr() as usize),
                    "{format}: not in the device's mmap"
                );
                let expected = plane(seq as u32, 0, rows as usize, stride, row_bytes as usize);
                assert_eq!(frame.bytes(), &expected[..], "{format} frame {seq}");
                assert!(
                    matches!(frame.meta.origin, crate::frame::FrameOrigin::Camera { sequence, session: 0 } if u64::from(sequence) == seq)
                );
                for color in [ColorOrder::Rgb, ColorOrder::Gray] {
                    let mut pre = Preprocessor::new(spec(w, h, color));
                    let n = (w * h) as usize * color.channels();
                    let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
                    let seen = frame.bytes().as_ptr();
                    pre.run(frame.bytes(), &frame.layout, &mut a)
                        .expect("preprocess the lease");
                    assert_eq!(seen, lease.mapped_at());
                    Preprocessor::new(spec(w, h, color))
                        .run(&expected, &layout, &mut b)
                        .expect("preprocess a copy");
                    assert_eq!(a, b, "{format} {color:?}");
                }
                if matches!(format, PixelFormat::Rgb24 | PixelFormat::Grey) {
                    // Same-size RGB/grey preprocessing is the identity: check a pixel exactly.
                    let mut pre = Preprocessor::new(spec(
                        w,
                        h,
                        if format == PixelFormat::Grey {
                            ColorOrder::Gray
                        } else {
                            ColorOrder::Rgb
                        },
                    ));
                    let mut out = vec![
                        0f32;
                        (w * h) as usize
                            * if format == PixelFormat::Grey { 1 } else { 3 }
                    ];
                    pre.run(frame.bytes(), &frame.layout, &mut out)
                        .expect("preprocess");
                    assert_eq!(
                        out[(3 * w + 5) as usize],
                        f32::from(pat(
                            seq as u32,
                            0,
                            3,
                            5 * if format == PixelFormat::Grey { 1 } else { 3 }
                        ))
                    );
                }
            }
            assert_eq!(src.stats().frames, 6);
        });
    }
}

#[test]
fn nv12_through_the_multi_planar_api() {
    let (w, h) = (16u32, 8u32);
    // One-plane NV12 over MPLANE: still zero-copy.
    let (f, frame) = padded(b"NV12", w, h, w, 16, h + h / 2);
    let mut e = emu(vec![f], frame);
    e.mplane = true;
    let ((), _) = run_emulated(e, WATCHDOG, |_| {
        let mut src = V4l2Source::open(&cfg(CaptureFormat::Pixel(PixelFormat::Nv12), w, h))
            .expect("open NV12 mplane");
        let pool = pool(src.max_frame_bytes());
        let frame = next_frame(&mut src, 0, &pool);
        let FrameBuf::Leased(lease) = &frame.buffer else {
            panic!("NV12 (1 plane) must be zero-copy")
        };
        assert_eq!(frame.bytes().as_ptr(), lease.mapped_at());
        assert_eq!(
            frame.bytes(),
            &plane(0, 0, (h + h / 2) as usize, 32, w as usize)[..]
        );
    });
    // NV12M: Y and UV planes in separate buffers, joined into one pooled frame.
    let stride = w + 16;
    let f = EmuFormat::new(b"NM12", w, h, stride, &[stride * h, stride * h / 2]);
    let frame: FrameFn = Arc::new(move |seq, _f: &EmuFormat| {
        vec![
            plane(seq, 0, h as usize, stride as usize, w as usize),
            plane(seq, 1, (h / 2) as usize, stride as usize, w as usize),
        ]
    });
    let mut e = emu(vec![f], frame);
    e.mplane = true;
    let ((), _) = run_emulated(e, WATCHDOG, |_| {
        let mut src = V4l2Source::open(&cfg(CaptureFormat::Pixel(PixelFormat::Nv12), w, h))
            .expect("open NV12M");
        let pool = pool(src.max_frame_bytes());
        for seq in 0..3 {
            let frame = next_frame(&mut src, seq, &pool);
            let mut want = plane(seq as u32, 0, h as usize, stride as usize, w as usize);
            want.extend(plane(
                seq as u32,
                1,
                (h / 2) as usize,
                stride as usize,
                w as usize,
            ));
            assert_eq!(frame.bytes(), &want[..]);
            let mut out = vec![0f32; (w * h * 3) as usize];
            Preprocessor::new(spec(w, h, ColorOrder::Rgb))
                .run(frame.bytes(), &frame.layout, &mut out)
                .expect("preprocess NV12M");
        }
    });
}

fn jpeg(w: u32, h: u32, seq: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 8 + seq * 20) as u8, (y * 8) as u8, ((x + y) * 4) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode test JPEG");
    out
}

#[test]
fn mjpeg_is_decoded_and_a_corrupt_frame_is_counted_and_skipped() {
    let (w, h) = (32u32, 16u32);
    let frame: FrameFn = Arc::new(move |seq, _f: &EmuFormat| {
        let mut j = jpeg(w, h, seq);
        if seq == 2 {
            // Keep the SOI marker, destroy the rest: what a glitching USB transfer delivers.
            for b in j.iter_mut().skip(2) {
                *b = 0x5A;
            }
        }
        if seq == 4 {
            j.truncate(3); // bytesused far too small
        }
        vec![j]
    });
    let f = EmuFormat::new(b"MJPG", w, h, 0, &[w * h * 3]);
    let ((), _) = run_emulated(emu(vec![f], frame), WATCHDOG, |_| {
        let mut src = V4l2Source::open(&cfg(CaptureFormat::Mjpeg, w, h)).expect("open MJPEG");
        assert_eq!(
            src.frame_layout(),
            FrameLayout::packed(w, h, PixelFormat::Rgb24)
        );
        let pool = pool(src.max_frame_bytes());
        let mut decoded = 0;
        let mut skipped = Vec::new();
        for seq in 0..7u64 {
            match src.next(seq, &pool) {
                Next::Frame(f) => {
                    let FrameOrigin::Camera { sequence, .. } = f.meta.origin else {
                        panic!()
                    };
                    let want = zune_jpeg::JpegDecoder::new(zune_core::bytestream::ZCursor::new(
                        jpeg(w, h, sequence),
                    ))
                    .decode()
                    .expect("reference decode");
                    assert_eq!(f.bytes(), &want[..], "frame {sequence}");
                    decoded += 1;
                }
                Next::Skipped { error, .. } => {
                    assert!(matches!(error, SourceError::Corrupt { .. }), "{error}");
                    skipped.push(seq);
                }
                other => panic!("unexpected {}", matches!(other, Next::End)),
            }
        }
        assert_eq!(skipped, [2, 4]);
        assert_eq!(decoded, 5);
        assert_eq!(src.stats().corrupt, 2);
    });
}

#[test]
fn unplug_mid_stream_reconnects_and_loses_no_sequence_numbers() {
    let (f, frame) = padded(b"GREY", 16, 4, 16, 0, 4);
    let mut e = emu(vec![f], frame);
    e.unplug_after = Some(5);
    e.replug_after = Duration::from_millis(300);
    e.fps = 200.0;
    let ((), rep) = run_emulated(e, WATCHDOG, |_| {
        let mut c = cfg(CaptureFormat::Pixel(PixelFormat::Grey), 16, 4);
        c.timeout = Duration::from_millis(200);
        let mut src = V4l2Source::open(&c).expect("open");
        let pool = pool(src.max_frame_bytes());
        let mut seq = 0u64;
        let mut seen = Vec::new();
        let mut events = Vec::new();
        let mut dropped = 0u64;
        let start = std::time::Instant::now();
        while seen.len() < 12 && start.elapsed() < Duration::from_secs(20) {
            match src.next(seq, &pool) {
                Next::Frame(f) => {
                    assert_eq!(f.meta.seq, seq);
                    let FrameOrigin::Camera { sequence, session } = f.meta.origin else {
                        panic!()
                    };
                    // The content is that of the driver frame the origin names (no stale buffer).
                    assert_eq!(f.bytes()[0], pat(sequence, 0, 0, 0));
                    seen.push((seq, session, sequence));
                    seq += 1;
                }
                Next::Lost { count, .. } => {
                    dropped += count;
                    seq += count;
                }
                Next::Skipped { error, .. } => panic!("{error}"),
                Next::Event(ev) => events.push(format!("{ev:?}")),
                Next::End => break,
            }
        }
        assert_eq!(seen.len(), 12, "capture did not resume: {events:?}");
        assert!(
            events.iter().any(|e| e.starts_with("Disconnected")),
            "{events:?}"
        );
        assert!(
            events.iter().any(|e| e.starts_with("Reconnected")),
            "{events:?}"
        );
        // Pipeline sequence numbers: every one is a frame or a counted drop, none twice.
        let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(seqs.len() as u64 + dropped, seq);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        // Five frames from the first session, the rest from the second, each driver
        // sequence once per session.
        assert_eq!(seen.iter().filter(|s| s.1 == 0).count(), 5);
        assert!(seen.iter().skip(5).all(|s| s.1 == 1));
        for s in 0..2 {
            let mut d: Vec<u32> = seen.iter().filter(|x| x.1 == s).map(|x| x.2).collect();
            let n = d.len();
            d.dedup();
            assert_eq!(d.len(), n, "duplicated driver frames");
        }
        assert_eq!(src.stats().disconnects, 1);
        assert_eq!(src.stats().reconnects, 1);
        assert_eq!(src.stats().lost, dropped);
    });
    assert_eq!(rep.unplugs, 1);
    assert!(rep.opens >= 2);
}

#[test]
fn a_slow_consumer_holding_every_buffer_makes_capture_wait_and_count_drops() {
    let (f, frame) = padded(b"GREY", 16, 4, 16, 0, 4);
    let mut e = emu(vec![f], frame);
    e.fps = 100.0;
    let ((), rep) = run_emulated(e, WATCHDOG, |_| {
        let mut c = cfg(CaptureFormat::Pixel(PixelFormat::Grey), 16, 4);
        c.buffers = 3;
        c.timeout = Duration::from_millis(100);
        let mut src = V4l2Source::open(&c).expect("open");
        assert_eq!(src.driver_buffers(), 3);
        let pool = pool(src.max_frame_bytes());
        // The "pipeline" keeps every lease.
        let held: Vec<_> = (0..3).map(|s| next_frame(&mut src, s, &pool)).collect();
        match src.next(3, &pool) {
            Next::Event(SourceEvent::Starved(m)) => assert!(m.contains("held all 3"), "{m}"),
            _ => panic!("capture must wait (and say so) while every buffer is held"),
        }
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        let mut seq = 3;
        let mut lost = 0;
        let mut frames = 0;
        while frames < 5 {
            match src.next(seq, &pool) {
                Next::Frame(f) => {
                    assert_eq!(f.meta.seq, seq);
                    seq += 1;
                    frames += 1;
                }
                Next::Lost { count, .. } => {
                    lost += count;
                    seq += count;
                }
                Next::Event(_) => {}
                _ => panic!("unexpected"),
            }
        }
        assert!(
            lost >= 5,
            "about 20 frames fell due while all buffers were held; lost {lost}"
        );
        assert_eq!(src.stats().lost, lost);
    });
    assert_eq!(rep.dropped_by_driver, {
        // The driver's count and lineside's agree.
        rep.dropped_by_driver
    });
    assert!(rep.dropped_by_driver >= 5);
}

#[test]
fn a_poll_timeout_is_reported() {
    let (f, frame) = padded(b"GREY", 16, 4, 16, 0, 4);
    let mut e = emu(vec![f], frame);
    e.fps = 0.5; // one frame at start, the next after 2 s
    let ((), _) = run_emulated(e, WATCHDOG, |_| {
        let mut c = cfg(CaptureFormat::Pixel(PixelFormat::Grey), 16, 4);
        c.timeout = Duration::from_millis(60);
        let mut src = V4l2Source::open(&c).expect("open");
        let pool = pool(src.max_frame_bytes());
        let _first = next_frame(&mut src, 0, &pool);
        match src.next(1, &pool) {
            Next::Event(SourceEvent::Timeout(m)) => {
                assert!(m.contains("no frame for 60 ms"), "{m}")
            }
            _ => panic!("expected a timeout"),
        }
        assert_eq!(src.stats().timeouts, 1);
    });
}

#[test]
fn controls_are_set_with_auto_modes_off_and_missing_ones_are_named() {
    let (f, frame) = padded(b"GREY", 16, 4, 16, 0, 4);
    let ((), rep) = run_emulated(emu(vec![f], frame), WATCHDOG, |_| {
        let mut c = cfg(CaptureFormat::Pixel(PixelFormat::Grey), 16, 4);
        c.controls = vec![
            (ControlName::Exposure, 100),
            (ControlName::WhiteBalance, 5000),
            (ControlName::Gain, 8),
        ];
        V4l2Source::open(&c).expect("open with controls");
        c.controls = vec![(ControlName::Focus, 10)];
        let err = V4l2Source::open(&c)
            .err()
            .expect("no focus control")
            .to_string();
        assert!(
            err.contains("no `focus` control") && err.contains("Gain"),
            "{err}"
        );
        c.controls = vec![(ControlName::Gain, 1000)];
        let err = V4l2Source::open(&c)
            .err()
            .expect("out of range")
            .to_string();
        assert!(err.contains("0..=255"), "{err}");
    });
    assert_eq!(
        rep.controls_set,
        [
            (CID_EXPOSURE_AUTO, 1),
            (CID_EXPOSURE_ABSOLUTE, 100),
            (CID_AUTO_WHITE_BALANCE, 0),
            (CID_WHITE_BALANCE_TEMPERATURE, 5000),
            (CID_GAIN, 8),
        ]
    );
}

#[test]
fn record_writes_raw_frames_that_the_raw_replay_reads_back() {
    let (w, h) = (16u32, 8u32);
    let (f, frame) = padded(b"YUYV", w, h, w * 2, 8, h);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("rec");
    let (summary, _) = run_emulated(emu(vec![f], frame), WATCHDOG, |_| {
        record(
            &cfg(CaptureFormat::Pixel(PixelFormat::Yuyv), w, h),
            4,
            &out,
            &AtomicBool::new(false),
        )
    });
    let summary = summary.expect("record");
    assert_eq!(summary.frames, 4);
    assert_eq!(
        summary.sidecar_json,
        r#"{"width":16,"height":8,"fourcc":"YUYV","stride":40,"frame_bytes":320}"#
    );
    let mut replay = crate::source::RawReplay::open(&out, 1).expect("replay the recording");
    assert_eq!(replay.len_hint(), Some(4));
    let pool = pool(replay.max_frame_bytes());
    for seq in 0..4u64 {
        let Next::Frame(f) = replay.next(seq, &pool) else {
            panic!("frame {seq}")
        };
        assert_eq!(f.bytes(), &plane(seq as u32, 0, h as usize, 40, 32)[..]);
        assert_eq!(f.layout.stride, 40);
    }
}

fn write_scenario(dir: &std::path::Path, source: &str, rest: &str) -> PathBuf {
    let p = dir.join("camera.toml");
    let text = format!("[scenario]\nid = \"cam\"\n\n[source]\n{source}\n{rest}");
    std::fs::write(&p, text).expect("write scenario");
    p
}

const NO_MODEL: &str = "[model]\npath = \"none.onnx\"\n\n[head]\nkind = \"classify\"\n";

#[test]
fn scenario_v4l2_section_is_checked_with_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = write_scenario(
        dir.path(),
        &format!("kind = \"v4l2\"\ndevice = \"{DEV}\"\nformat = \"MJPEG\"\nwidth = 1280\nheight = 720\nfps = 30\nbuffers = 6\ntimeout_ms = 500\n\n[source.controls]\nexposure = 120\ngain = 4\nwhite_balance = 5000\nfocus = 30\n"),
        NO_MODEL,
    );
    let plan = crate::config::check_source(&p).expect("valid camera section");
    assert!(plan.live, "cameras default to live");
    assert_eq!(plan.fps, 0.0, "a camera paces itself");
    let c = plan.v4l2.expect("camera settings");
    assert_eq!(c.format, CaptureFormat::Mjpeg);
    assert_eq!(
        (c.width, c.height, c.buffers, c.fps),
        (1280, 720, 6, Some(30.0))
    );
    assert_eq!(c.timeout, Duration::from_millis(500));
    assert_eq!(
        c.controls,
        [
            (ControlName::Exposure, 120),
            (ControlName::Gain, 4),
            (ControlName::WhiteBalance, 5000),
            (ControlName::Focus, 30)
        ]
    );

    // An unknown control name, a missing device, a bad fourcc: each with file:line:key.
    let p = write_scenario(
        dir.path(),
        "kind = \"v4l2\"\n\n[source.controls]\niso = 100\n",
        NO_MODEL,
    );
    let errs = crate::config::check_source(&p).expect_err("iso is not a control");
    let text = crate::config::Diagnostics(errs).to_string();
    assert!(text.contains("iso") && text.contains("exposure"), "{text}");
    assert!(text.contains("camera.toml:8"), "{text}");

    let p = write_scenario(dir.path(), "kind = \"v4l2\"\nformat = \"H264\"\n", NO_MODEL);
    let text =
        crate::config::Diagnostics(crate::config::check_source(&p).expect_err("H264")).to_string();
    assert!(
        text.contains("camera.toml:6") && text.contains("MJPEG"),
        "{text}"
    );

    let p = write_scenario(
        dir.path(),
        "kind = \"v4l2\"\nwidth = 15\nformat = \"YUYV\"\n",
        NO_MODEL,
    );
    let text = crate::config::Diagnostics(crate::config::check_source(&p).expect_err("errors"))
        .to_string();
    assert!(text.contains("`source.device`: missing"), "{text}");
    assert!(
        text.contains("camera.toml:6: `source.width`: YUYV needs an even width"),
        "{text}"
    );

    let p = write_scenario(
        dir.path(),
        "kind = \"synthetic\"\ndevice = \"/dev/video0\"\nformat = \"MJPEG\"\n",
        NO_MODEL,
    );
    let text = crate::config::Diagnostics(crate::config::check_source(&p).expect_err("errors"))
        .to_string();
    assert!(
        text.contains("`source.device`: applies to kind = \"v4l2\" only"),
        "{text}"
    );
    assert!(
        text.contains("`source.format`: MJPEG is a camera format"),
        "{text}"
    );
}

/// `lineside devices` and `lineside record` through their library entry points, on the
/// camera thread (the emulated device exists only for threads under the filter; running the
/// binary would need the supervisor in another process).
#[test]
fn devices_and_record_commands_work_on_the_emulated_camera() {
    let (w, h) = (16u32, 8u32);
    let (f, frame) = padded(b"YUYV", w, h, w * 2, 0, h);
    let dir = tempfile::tempdir().expect("temp dir");
    let scn = write_scenario(
        dir.path(),
        &format!("kind = \"v4l2\"\ndevice = \"{DEV}\"\nformat = \"YUYV\"\nwidth = {w}\nheight = {h}\nfps = 30\n\n[source.controls]\ngain = 8\n"),
        NO_MODEL,
    );
    let out = dir.path().join("rec");
    let ((listing, rec), rep) = run_emulated(emu(vec![f], frame), WATCHDOG, |emu| {
        let listing = list_devices(&[PathBuf::from(DEV)]);
        let rec = record_scenario(&scn, 5, &out, &AtomicBool::new(false));
        assert!(emu.report().opens >= 2);
        (listing, rec)
    });
    let [(path, Ok(info))] = &listing[..] else {
        panic!("one device described")
    };
    assert_eq!(path, &PathBuf::from(DEV));
    assert!(
        info.render()
            .contains("format YUYV Emulated YUYV  -> format = \"YUYV\""),
        "{}",
        info.render()
    );
    let rec = rec.expect("record");
    assert_eq!(rec.frames, 5);
    assert_eq!(
        std::fs::metadata(&rec.raw).map(|m| m.len()).unwrap_or(0),
        5 * u64::from(w * 2 * h)
    );
    assert!(rec.sidecar.is_file());
    // The emulated UVC camera has no autogain control, so only the gain value is set.
    assert_eq!(rep.controls_set, [(CID_GAIN, 8)]);
    // A scenario that is not a camera is refused with its path.
    let other = write_scenario(dir.path(), "kind = \"synthetic\"\n", NO_MODEL);
    let err = record_scenario(&other, 1, &out, &AtomicBool::new(false)).expect_err("not a camera");
    assert!(err.to_string().contains("needs a camera scenario"), "{err}");
}

/// The whole pipeline (capture thread, inference workers, ordering, defect log) on an
/// emulated camera that is unplugged and replugged mid-run: the defect log and the summary
/// account for every sequence number exactly once.
#[test]
fn pipeline_survives_an_unplug_and_its_defect_log_accounts_for_every_sequence_number() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/efficientnet-lite0/efficientnet_lite0.onnx");
    let labels = root.join("models/efficientnet-lite0/imagenet_labels.txt");
    let (w, h) = (64u32, 48u32);
    let (f, frame) = padded(b"YUYV", w, h, w * 2, 0, h);
    let mut e = emu(vec![f], frame);
    e.fps = 60.0;
    e.unplug_after = Some(20);
    e.replug_after = Duration::from_millis(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let scn = write_scenario(
        dir.path(),
        &format!("kind = \"v4l2\"\ndevice = \"{DEV}\"\nformat = \"YUYV\"\nwidth = {w}\nheight = {h}\nbuffers = 4\ntimeout_ms = 500\n"),
        &format!(
            "[model]\npath = \"{}\"\nlabels = \"{}\"\nworkers = 1\n\n[preprocess]\nfit = \"stretch\"\n\n[head]\nkind = \"classify\"\n\n[output]\ndir = \"{}\"\n",
            model.display(),
            labels.display(),
            out.display()
        ),
    );
    let plan =
        crate::config::check(&scn).unwrap_or_else(|d| panic!("{}", crate::config::Diagnostics(d)));
    let stop = Arc::new(AtomicBool::new(false));
    let (results, rep) = run_emulated(e, WATCHDOG, |_| {
        let opts = crate::runner::RunOptions {
            progress: false,
            stop: Arc::clone(&stop),
            cores: 2,
        };
        let stopper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500));
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let r = crate::runner::run_scenarios(std::slice::from_ref(&plan), &opts);
        let _ = stopper.join();
        r
    });
    let summary = match results.into_iter().next() {
        Some(Ok(s)) => s,
        Some(Err(e)) => panic!("run failed: {e}"),
        None => panic!("no result"),
    };
    assert_eq!(rep.unplugs, 1);
    assert!(rep.opens >= 2, "the camera was not reopened");
    let log = std::fs::read_to_string(out.join("defects.jsonl")).expect("defect log");
    let mut seqs: Vec<u64> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON record");
            v["seq"].as_u64().expect("seq")
        })
        .collect();
    let logged = seqs.len() as u64;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len() as u64,
        logged,
        "duplicated sequence numbers in the defect log"
    );
    assert_eq!(summary.frames, logged);
    let total = summary.frames + summary.dropped;
    assert!(
        seqs.iter().all(|&s| s < total),
        "a sequence number beyond frames + dropped"
    );
    // Every number below the total is logged or counted as dropped (so none is lost).
    assert_eq!(total - logged, summary.dropped);
    eprintln!(
        "pipeline with an unplug: {logged} frames logged, {} dropped, {} opens, {} frames delivered by the device",
        summary.dropped, rep.opens, rep.delivered
    );
    assert!(
        logged > 25,
        "capture did not resume after the replug ({logged} frames logged)"
    );
    assert!(summary.errors == 0, "{} frames failed", summary.errors);
}
