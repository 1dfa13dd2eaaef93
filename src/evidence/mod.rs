//! Evidence images: for NG and ERROR parts (and one OK part in `ok_every`) a JPEG of the
//! frame with the head's findings drawn on it, plus a crop per defect region.
//!
//! ```text
//! worker ──copies frame + map into a pooled Capture (never waits)──▶ Outcome.evidence
//! ordering stage ──Router::route: names the files, try_send (never waits)──▶ writer thread
//! writer ──RGB, overlays, JPEG, temp + rename, retention──▶ <output dir>/evidence/
//! ```
//!
//! Inspection never waits for evidence: no free capture buffer or a full queue drops the
//! evidence (counted, and the record says so), never the verdict.

mod capture;
mod overlay;
mod plan;
mod retention;
mod writer;

pub use capture::{Capture, Slot, Tap};
pub use overlay::{crop, jet, render, Drawing, Mark};
pub use plan::{evidence_plan, EvidencePlan};
pub use retention::Ledger;
pub use writer::{Decided, Router};
