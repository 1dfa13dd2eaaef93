//! Capture when things go wrong: an unplug mid-stream, a consumer that holds every buffer,
//! a camera that stops sending, and controls the camera lacks or refuses.

mod v4l2;

use std::time::Duration;

use lineside::frame::{FrameOrigin, PixelFormat};
use lineside::source::v4l2::{CaptureFormat, ControlName, V4l2Source};
use lineside::source::{Next, Source, SourceEvent};
use lineside_v4l2_emulator::run_emulated;
use v4l2::*;

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
