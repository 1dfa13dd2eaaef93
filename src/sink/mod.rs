//! Consumers of the ordered verdict stream. Each sink kind is one file and one line in
//! [`KINDS`]; `[output] sinks` names the ones a scenario uses.

mod defect_log;
pub mod mqtt;
pub mod output_dir;
mod plc;
mod record;
mod summary;

pub use defect_log::{file_in_the_way, DefectLog};
pub use output_dir::{OutputLock, DEFAULT_FILE_MODE};
pub use record::{new_run_id, rfc3339, Record, RecordContext};
pub use summary::{RunStats, Summary};

pub use crate::outcome::{RunSink, SinkError};

use std::path::Path;
use std::sync::Arc;

/// The sink kinds lineside knows: one line per kind.
pub const KINDS: &[SinkKind] = &[defect_log::KIND, summary::KIND, plc::KIND, mqtt::KIND];

/// The sinks of a scenario that names none.
pub const DEFAULT: &[&str] = &["defect_log", "summary"];

/// The kind named `name` in `[output] sinks`.
pub fn kind(name: &str) -> Option<&'static SinkKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// What the registry knows of one sink kind.
pub struct SinkKind {
    pub name: &'static str,
    pub open: fn(&SinkContext<'_>) -> Result<Box<dyn RunSink>, SinkError>,
}

/// What a sink is opened with, for one run of one scenario.
pub struct SinkContext<'a> {
    pub scenario: &'a str,
    pub output_dir: &'a Path,
    /// Mode of the files the sink creates (`[output] file_mode`).
    pub file_mode: u32,
    /// This run's id (`run_id` in records and the summary).
    pub run_id: &'a str,
    pub workers: usize,
    /// The execution provider the workers' sessions run on ("cpu", "openvino (CPU)").
    pub provider: &'a str,
    /// Shared by every record of the run.
    pub record: Arc<RecordContext>,
    /// The scenario's live state: a sink with a link (PLC, broker) reports it here.
    pub status: Arc<crate::status::ScenarioStatus>,
    /// The scenario's PLC link (`[plc]`), shared with the trigger.
    pub plc: Option<Arc<crate::plc::PlcLink>>,
    /// What makes a part, its deadline and fail-safe (`[trigger]`).
    pub trigger: crate::plc::TriggerPlan,
    /// How often the summary is rewritten while the run goes on (`None`: only at the end).
    pub summary_every: Option<std::time::Duration>,
    /// `[mqtt]`, when the scenario has one.
    pub mqtt: Option<&'a mqtt::MqttSettings>,
}

/// Opens the named sinks, in order.
pub fn open_all(names: &[&str], ctx: &SinkContext<'_>) -> Result<Vec<Box<dyn RunSink>>, SinkError> {
    names
        .iter()
        .filter_map(|n| kind(n))
        .map(|k| (k.open)(ctx))
        .collect()
}
