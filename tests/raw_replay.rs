//! Raw replay lends frames from its file's mapping: no copy, no pool buffer, the bytes
//! exactly the file's, and a short tail still reported as a truncated frame.

use std::path::Path;

use lineside::frame::{FrameBuf, FrameError, PixelBuf};
use lineside::pool::Pool;
use lineside::source::{Next, RawReplay, Source, SourceError};

/// Three 4x2 YUYV frames (16 bytes each), every byte distinct, plus `tail` stray bytes.
fn recording(dir: &Path, tail: usize) -> (std::path::PathBuf, Vec<u8>) {
    let bytes: Vec<u8> = (0..(3 * 16 + tail)).map(|i| i as u8).collect();
    let raw = dir.join("line.raw");
    std::fs::write(&raw, &bytes).unwrap();
    std::fs::write(
        dir.join("line.raw.json"),
        r#"{"width":4,"height":2,"fourcc":"YUYV"}"#,
    )
    .unwrap();
    (raw, bytes)
}

#[test]
fn frames_are_lent_from_the_mapping_without_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, bytes) = recording(dir.path(), 0);
    let mut source = RawReplay::open(&raw, 2).unwrap();
    assert_eq!(source.max_frame_bytes(), 0, "the pool needs no pixel room");
    // An empty pool: replay must not need a buffer from it.
    let pool = Pool::new(1, || PixelBuf::with_capacity(0));
    let _held = pool.take();
    let mut frames = Vec::new();
    for seq in 0.. {
        match source.next(seq, &pool) {
            Next::Frame(f) => frames.push(f),
            Next::End => break,
            _ => panic!("frame {seq}: not a frame"),
        }
    }
    assert_eq!(frames.len(), 6, "three frames, two passes");
    for (i, f) in frames.iter().enumerate() {
        let k = i % 3;
        assert_eq!(f.bytes(), &bytes[k * 16..(k + 1) * 16], "frame {i}");
        let FrameBuf::Leased(lease) = &f.buffer else {
            panic!("frame {i} was copied into a buffer");
        };
        assert_eq!(f.bytes().as_ptr(), lease.mapped_at(), "frame {i}");
    }
    // Within one pass the frames sit back to back in one mapping.
    let base = frames[0].bytes().as_ptr() as usize;
    assert_eq!(frames[1].bytes().as_ptr() as usize - base, 16);
    assert_eq!(frames[2].bytes().as_ptr() as usize - base, 32);
    // The leases keep the mapping alive after the source is gone.
    drop(source);
    assert_eq!(frames[5].bytes(), &bytes[32..48]);
}

#[test]
fn a_short_tail_is_a_truncated_frame_not_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = recording(dir.path(), 5);
    let mut source = RawReplay::open(&raw, 1).unwrap();
    let pool = Pool::new(1, || PixelBuf::with_capacity(0));
    let mut seen = Vec::new();
    for seq in 0.. {
        match source.next(seq, &pool) {
            Next::Frame(_) => seen.push("frame".to_string()),
            Next::Skipped {
                error:
                    SourceError::Frame {
                        source: FrameError::Truncated { have, need },
                        ..
                    },
                ..
            } => seen.push(format!("truncated {have}/{need}")),
            Next::Skipped { error, .. } => panic!("{error}"),
            Next::End => break,
            _ => panic!("neither a frame nor a skip"),
        }
    }
    assert_eq!(seen, ["frame", "frame", "frame", "truncated 5/16"]);
}
