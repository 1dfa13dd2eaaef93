//! `lineside record`: frames from a camera into a raw file plus the JSON sidecar the raw
//! replay source reads, so a line can be recorded once and tuned offline.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::{CaptureStats, V4l2Config, V4l2Error, V4l2Source};
use crate::frame::{BufferPool, PixelBuf};
use crate::source::{Next, RawSidecar, Source, SourceEvent};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Camera(#[from] V4l2Error),
    #[error("cannot write {path}: {source} (is the output folder writable and the disk not full?)", path = path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stopped after {got} of {want} frames: {reason}")]
    Incomplete { got: u64, want: u64, reason: String },
    #[error("{0}")]
    Scenario(crate::config::Diagnostics),
    #[error("{path}: `lineside record` needs a camera scenario ([source] kind = \"v4l2\")", path = path.display())]
    NotCamera { path: PathBuf },
}

/// `lineside record SCENARIO --frames N --out DIR`: the scenario's `[source]` is checked
/// (no model is needed) and its camera recorded.
pub fn record_scenario(
    scenario: &Path,
    frames: u64,
    out: &Path,
    stop: &AtomicBool,
) -> Result<RecordSummary, RecordError> {
    let plan = crate::source::check_source(scenario)
        .map_err(|d| RecordError::Scenario(crate::config::Diagnostics(d)))?;
    let Some(cfg) = plan.v4l2 else {
        return Err(RecordError::NotCamera {
            path: scenario.to_path_buf(),
        });
    };
    record(&cfg, frames, out, stop)
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordSummary {
    pub raw: PathBuf,
    pub sidecar: PathBuf,
    pub frames: u64,
    pub sidecar_json: String,
    #[serde(skip)]
    pub stats: CaptureStats,
}

/// Records `frames` frames from the camera into `out/frames.raw` (+ `.json`).
/// MJPEG is stored decoded (RGB24), since replays read raw pixels. Stops early (with an
/// error) when `stop` is set or the camera stays away for `max_events` reports.
pub fn record(
    cfg: &V4l2Config,
    frames: u64,
    out: &Path,
    stop: &AtomicBool,
) -> Result<RecordSummary, RecordError> {
    let write_err = |path: &Path, source| RecordError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    let mut source = V4l2Source::open(cfg)?;
    let layout = source.frame_layout();
    let frame_bytes = layout.frame_len();
    let pool = BufferPool::new(2, || PixelBuf::with_capacity(frame_bytes));
    let raw = out.join("frames.raw");
    let sidecar = RawSidecar::sidecar_path(&raw);
    let meta = RawSidecar {
        width: layout.width,
        height: layout.height,
        fourcc: layout.format.fourcc().to_string(),
        stride: Some(layout.stride),
        frame_bytes: Some(frame_bytes),
    };
    let sidecar_json = serde_json::to_string(&meta).unwrap_or_default();
    std::fs::write(&sidecar, &sidecar_json).map_err(|e| write_err(&sidecar, e))?;
    let mut w = BufWriter::new(File::create(&raw).map_err(|e| write_err(&raw, e))?);
    let mut got = 0u64;
    let mut seq = 0u64;
    let mut quiet = 0u32;
    while got < frames {
        if stop.load(Ordering::Relaxed) {
            return Err(RecordError::Incomplete {
                got,
                want: frames,
                reason: "stopped".into(),
            });
        }
        match source.next(seq, &pool) {
            Next::Frame(f) => {
                let bytes = f.bytes();
                w.write_all(&bytes[..frame_bytes.min(bytes.len())])
                    .map_err(|e| write_err(&raw, e))?;
                got += 1;
                seq += 1;
                quiet = 0;
            }
            Next::Skipped { error, .. } => {
                tracing::warn!("not recorded: {error}");
                seq += 1;
            }
            Next::Lost { count, .. } => {
                tracing::warn!("the driver dropped {count} frame(s)");
                seq += count;
            }
            Next::Event(SourceEvent::Waiting) => {}
            Next::Event(e) => {
                tracing::warn!("{e:?}");
                quiet += 1;
                if quiet >= 30 {
                    return Err(RecordError::Incomplete {
                        got,
                        want: frames,
                        reason: format!("{e:?}"),
                    });
                }
            }
            Next::End => break,
        }
    }
    w.flush().map_err(|e| write_err(&raw, e))?;
    Ok(RecordSummary {
        raw,
        sidecar,
        frames: got,
        sidecar_json,
        stats: source.stats().clone(),
    })
}
