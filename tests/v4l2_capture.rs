//! Capture against the emulated camera: what the driver offers, formats it refuses, and
//! every pixel format reaching preprocessing in place (uncompressed) or decoded (MJPEG).

mod v4l2;

use std::sync::Arc;

use lineside::frame::{FrameBuf, FrameLayout, FrameOrigin, PixelFormat};
use lineside::preprocess::{ColorOrder, Preprocessor};
use lineside::source::v4l2::{describe, CaptureFormat, V4l2Source};
use lineside::source::{Next, Source, SourceError};
use lineside_v4l2_emulator::{run_emulated, EmuFormat, FrameFn};
use v4l2::*;

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
                    matches!(frame.meta.origin, lineside::frame::FrameOrigin::Camera { sequence, session: 0 } if u64::from(sequence) == seq)
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
