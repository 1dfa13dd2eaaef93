//! Where frames come from: image-folder and raw-frame replays and a synthetic pattern
//! (V4L2 cameras plug in here too). A source fills pooled buffers; it never allocates per
//! frame once warm, except to decode compressed image files.

mod images;
pub mod jpeg;
mod raw;
mod spec;
mod synthetic;
pub mod v4l2;

pub use images::{header_size, ImageFolder, EXTENSIONS as IMAGE_EXTENSIONS};
pub use raw::{RawReplay, RawSidecar};
pub use synthetic::{encode, Synthetic};

use std::path::PathBuf;

use crate::frame::{BufferPool, Frame, FrameError, FrameOrigin, LimitError};
pub use spec::{
    check_source, source_plan, ControlsSection, Pattern, SourceKind, SourcePlan, SourceSection,
};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "{path}: cannot decode image: {reason} (is the file complete and a PNG, JPEG or BMP?)"
    )]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Frame { path: PathBuf, source: FrameError },
    /// A file whose header declares a frame larger than `[source] max_pixels` /
    /// `max_frame_bytes`; refused before anything is allocated for it.
    #[error("{path}: refused: {source}")]
    TooLarge { path: PathBuf, source: LimitError },
    /// A camera frame that cannot be used (undecodable MJPEG, short `bytesused`).
    #[error("camera frame {sequence}: {reason}")]
    Corrupt { sequence: u32, reason: String },
    #[error(transparent)]
    V4l2(#[from] v4l2::V4l2Error),
}

/// Something a live source reports between frames; the pipeline logs it and asks again
/// (checking for a stop request first). No sequence number is used.
#[derive(Debug)]
pub enum SourceEvent {
    /// No frame arrived within the source's timeout.
    Timeout(String),
    /// The device went away; the source is reopening it with backoff.
    Disconnected(String),
    Reconnected(String),
    /// The pipeline holds every capture buffer.
    Starved(String),
    /// Nothing to report yet (backoff, interrupted wait).
    Waiting,
}

/// What happened when a source was asked for a frame.
pub enum Next {
    Frame(Frame),
    /// This item could not be read; the pipeline logs it as an ERROR record and goes on.
    Skipped {
        item: usize,
        error: SourceError,
    },
    /// The source lost `count` frames before the next one (a camera's driver dropped them
    /// while every buffer was held); they get sequence numbers and are counted as dropped.
    Lost {
        count: u64,
        origin: FrameOrigin,
    },
    /// See [`SourceEvent`].
    Event(SourceEvent),
    End,
}

pub trait Source: Send {
    /// Produces frame `seq` into a buffer from `pool`.
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next;
    /// Names of the items frames refer to (file paths), for the defect log.
    fn item_names(&self) -> Vec<String>;
    /// Bytes the largest frame needs, to size the buffer pool.
    fn max_frame_bytes(&self) -> usize;
    /// Frames this source will produce, if known.
    fn len_hint(&self) -> Option<u64>;
    fn describe(&self) -> String;
}

/// What `validate` learns by opening a replay the way `run` would, without reading frames.
#[derive(Debug, Default)]
pub struct Probe {
    /// The size of the first frame, where it is known without a camera.
    pub frame_size: Option<(u32, u32)>,
    /// Items `run` would turn into ERROR records (image headers beyond the limits).
    pub refused: Vec<SourceError>,
}

/// Opens what `run` opens for this source (folder listing, sidecars, image headers) and
/// reports the first frame size; cameras are not opened (they may be in use).
pub fn probe(plan: &SourcePlan) -> Result<Probe, SourceError> {
    let path = || plan.path.clone().unwrap_or_default();
    Ok(match plan.kind {
        SourceKind::Images => {
            let s = ImageFolder::open_with(&path(), plan.repeat, plan.limits)?;
            Probe {
                frame_size: s.first_size(),
                refused: s.refused().collect(),
            }
        }
        SourceKind::Raw => Probe {
            frame_size: RawReplay::open_with(&path(), plan.repeat, plan.limits)?.first_size(),
            refused: Vec::new(),
        },
        SourceKind::Synthetic => Probe {
            frame_size: Some((plan.width, plan.height)),
            refused: Vec::new(),
        },
        SourceKind::V4l2 => Probe::default(),
    })
}

/// Opens the source a scenario describes.
pub fn open(plan: &SourcePlan) -> Result<Box<dyn Source>, SourceError> {
    let path = || plan.path.clone().unwrap_or_default();
    Ok(match plan.kind {
        SourceKind::Images => Box::new(ImageFolder::open_with(&path(), plan.repeat, plan.limits)?),
        SourceKind::Raw => Box::new(RawReplay::open_with(&path(), plan.repeat, plan.limits)?),
        SourceKind::Synthetic => Box::new(Synthetic::new(
            plan.width,
            plan.height,
            plan.format,
            plan.pattern,
            plan.frames,
        )),
        SourceKind::V4l2 => match &plan.v4l2 {
            Some(cfg) => Box::new(v4l2::V4l2Source::open(cfg)?),
            None => {
                return Err(SourceError::Open {
                    path: PathBuf::new(),
                    reason: "v4l2 source without camera settings (validate the scenario first)"
                        .into(),
                })
            }
        },
    })
}
