//! Consumers of the ordered verdict stream: the defect log, the run summary, progress.

mod defect_log;
mod record;
mod summary;

pub use defect_log::DefectLog;
pub use record::{rfc3339, Record, RecordContext};
pub use summary::{RunStats, Summary};

use crate::pipeline::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("defect log {path}: {source}")]
    Log {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Receives every outcome of a run in sequence order.
pub trait RunSink: Send {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError>;
    /// Called once after the last outcome: flush and sync.
    fn finish(&mut self) -> Result<(), SinkError>;
}

/// The standard sink of `lineside run`: defect log + statistics + an optional progress bar.
pub struct ScenarioSink {
    pub log: DefectLog,
    pub stats: RunStats,
    pub ctx: RecordContext,
    pub progress: Option<indicatif::ProgressBar>,
}

impl RunSink for ScenarioSink {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.stats.add(outcome);
        if let Some(record) = Record::from_outcome(&self.ctx, outcome) {
            self.log.append(&record)?;
        }
        if let Some(p) = &self.progress {
            p.inc(1);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
        self.log.sync()
    }
}
