//! Scenario files: loading with located errors, the common sections (`scenario`, `model`,
//! `preprocess`, `fit`, `output`), and the one check of which `[head]`/`[rules]` keys
//! belong to which head kinds. Heads and sources read their own sections through
//! [`ScenarioFile::section`]; `scenario` puts the whole plan together.

mod common;
mod diagnostic;
mod file;
mod keys;
pub mod schema;
mod station;

pub use common::{check_id, labels, preprocess_spec, providers, threads};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use file::ScenarioFile;
pub use keys::{foreign_keys, KeyOwner};
pub use station::{Shift, Station, StationError, DEFAULT_STATION_FILE};
