//! Scenario files: schema, loading with located errors, and the checks that turn a file
//! plus its model into a runnable [`ScenarioPlan`].

mod detect_plan;
mod diagnostic;
mod file;
mod heads_plan;
mod patchcore;
mod plan;
pub mod schema;
mod segment_plan;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use file::ScenarioFile;
pub use patchcore::{fit_plan, FitPlan};
pub use plan::{check, check_source, HeadPlan, ScenarioPlan, SourcePlan};
