//! The contract between the pipeline and whatever consumes its verdicts: the ordered
//! [`Outcome`] stream, the [`RunSink`] trait every consumer implements, and its error.
//! It sits below both, so neither imports the other.

mod histogram;

pub use histogram::LatencyHistogram;

use std::time::{Duration, Instant, SystemTime};

use crate::evidence::Slot;
use crate::frame::FrameOrigin;
use crate::pool::Pooled;
use crate::verdict::Inspection;

/// Time spent in each stage for one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub infer: Duration,
    pub head: Duration,
}

/// What the ordering stage receives for each sequence number.
pub struct Outcome {
    pub seq: u64,
    pub origin: FrameOrigin,
    pub captured: Instant,
    pub decided: SystemTime,
    pub result: OutcomeKind,
    /// The part this frame was taken for, when the scenario is triggered or has a
    /// deadline (set by the ordering stage).
    pub part: Option<Part>,
    /// The evidence image: captured by the worker, then queued or dropped by the ordering
    /// stage before the sinks see it (`[evidence]`).
    pub evidence: Slot,
}

/// A part: what triggered it and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The id the PLC gave the part (PLC triggers with part-id registers).
    pub id: Option<u32>,
    /// The trigger (or, untriggered, the capture): the deadline runs from here.
    pub triggered: Instant,
    pub triggered_wall: SystemTime,
}

// Inspected outcomes are the common case; boxing the inspection would allocate per frame.
#[allow(clippy::large_enum_variant)]
pub enum OutcomeKind {
    Inspected {
        inspection: Pooled<Inspection>,
        times: StageTimes,
        latency: Duration,
    },
    /// The frame could not be inspected; the message says why.
    Failed(String),
    /// A live source dropped the frame because inference was behind.
    Dropped,
    /// No verdict within the part's deadline; the late result, if any, is discarded.
    TimedOut { deadline: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The source could not record a logged verdict (a watched folder's ledger).
    #[error("{0}")]
    Source(String),
    #[error("defect log {path}: {source}")]
    Log {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "output folder {dir}: {file} is a file, not a folder\n\
         Fix: point [output] dir at a folder (or move that file away)",
        dir = dir.display(),
        file = file.display()
    )]
    NotAFolder {
        dir: std::path::PathBuf,
        file: std::path::PathBuf,
    },
    #[error("the plc sink needs the scenario's [plc] section (its PLC link was not started)")]
    NoPlc,
    /// A link to another system (an MQTT broker and its spool) failed to start or stop.
    #[error("{0}")]
    Link(String),
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(
        "output folder {} is in use by {}; wait for that run to finish, or give this scenario \
         its own [output] dir",
        dir.display(),
        holder_text(*holder)
    )]
    Locked {
        dir: std::path::PathBuf,
        /// The pid the holder wrote into the lock file, when it could be read.
        holder: Option<u32>,
    },
    #[error(
        "{} is a symbolic link; lineside does not write through links (a link could point at \
         any file): remove it, or point [output] dir at the real folder",
        path.display()
    )]
    Symlink { path: std::path::PathBuf },
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) if pid == std::process::id() => {
            "another scenario of this same run (two scenarios cannot share a folder)".into()
        }
        Some(pid) => format!("another lineside process (pid {pid})"),
        None => "another lineside process".into(),
    }
}

/// Receives every outcome of a run in sequence order.
pub trait RunSink: Send {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError>;
    /// Called once after the last outcome: flush and sync.
    fn finish(&mut self) -> Result<(), SinkError>;
}

/// Several sinks fed the same stream, in the order given.
impl RunSink for Vec<Box<dyn RunSink>> {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.iter_mut().try_for_each(|s| s.deliver(outcome))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        // Every sink gets to finish; the first error is reported.
        let mut first = Ok(());
        for s in self.iter_mut() {
            let r = s.finish();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}
