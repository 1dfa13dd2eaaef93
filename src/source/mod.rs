//! Where frames come from: image-folder and raw-frame replays, a watched folder, a
//! synthetic pattern and V4L2 cameras. A source fills pooled buffers; it never allocates
//! per frame once warm, except to decode compressed image files.
//!
//! Each kind is one file (or folder) with a `KIND` entry, and one line in [`KINDS`]:
//! `open` and `probe` dispatch through the registry and name no kind.

mod folder;
mod images;
pub mod jpeg;
mod raw;
mod spec;
mod synthetic;
pub mod v4l2;

pub use folder::{After, Existing, FolderConfig, Order, WatchedFolder};
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
    /// This item could not be read; the pipeline logs it as an ERROR record (naming
    /// `origin`) and goes on.
    Skipped {
        origin: FrameOrigin,
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
    /// Names of the items [`FrameOrigin::Item`] indexes (file paths), for the defect log.
    /// A source whose items are not known up front (a watched folder) returns none and
    /// names each frame in its origin instead ([`FrameOrigin::File`]).
    fn item_names(&self) -> Vec<String>;
    /// Bytes of the largest frame the source copies into a pool buffer, to size the pool
    /// (0 for a source that lends every frame in place, as raw replay does from its map).
    fn max_frame_bytes(&self) -> usize;
    /// Frames this source will produce, if known.
    fn len_hint(&self) -> Option<u64>;
    fn describe(&self) -> String;
    /// What must hear about each frame once its verdict is logged (a watched folder's
    /// ledger and its `after = "move"`); taken once, before the run starts.
    fn settle(&mut self) -> Option<Box<dyn Settle>> {
        None
    }
}

/// Told, on the ordering thread, about every frame whose verdict (or ERROR record) every
/// sink has taken, in sequence order. Not told about dropped frames or when a sink failed,
/// so nothing is marked done that was not logged.
pub trait Settle: Send {
    fn settled(&mut self, origin: &FrameOrigin) -> Result<(), SourceError>;
}

/// What the registry knows of one source kind.
pub struct SourceKindEntry {
    pub kind: SourceKind,
    /// The name `[source] kind` takes.
    pub name: &'static str,
    pub open: fn(&SourcePlan) -> Result<Box<dyn Source>, SourceError>,
    pub probe: fn(&SourcePlan) -> Result<Probe, SourceError>,
}

/// The source kinds lineside knows: one line per kind.
pub const KINDS: &[SourceKindEntry] = &[
    images::KIND,
    folder::KIND,
    raw::KIND,
    synthetic::KIND,
    v4l2::KIND,
];

/// The registry entry of `kind` (every [`SourceKind`] has one; `tests` check it).
pub fn kind(kind: SourceKind) -> Option<&'static SourceKindEntry> {
    KINDS.iter().find(|k| k.kind == kind)
}

fn unregistered(kind: SourceKind) -> SourceError {
    SourceError::Open {
        path: PathBuf::new(),
        reason: format!("source kind {kind:?} is not in source::KINDS (a build without it)"),
    }
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
    let k = kind(plan.kind).ok_or_else(|| unregistered(plan.kind))?;
    (k.probe)(plan)
}

/// Opens the source a scenario describes.
pub fn open(plan: &SourcePlan) -> Result<Box<dyn Source>, SourceError> {
    let k = kind(plan.kind).ok_or_else(|| unregistered(plan.kind))?;
    (k.open)(plan)
}

/// The `path` of a replay kind (checked present by `source_plan`).
fn plan_path(plan: &SourcePlan) -> PathBuf {
    plan.path.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once_under_its_serde_name() {
        for k in [
            SourceKind::Images,
            SourceKind::Folder,
            SourceKind::Raw,
            SourceKind::Synthetic,
            SourceKind::V4l2,
        ] {
            let entries: Vec<_> = KINDS.iter().filter(|e| e.kind == k).collect();
            assert_eq!(entries.len(), 1, "{k:?}");
            let toml = format!("kind = \"{}\"", entries[0].name);
            #[derive(serde::Deserialize)]
            struct K {
                kind: SourceKind,
            }
            let parsed: K = toml::from_str(&toml).unwrap();
            assert_eq!(parsed.kind, k);
        }
    }
}
