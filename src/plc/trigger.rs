//! `[trigger]`: what makes a part (every frame, a PLC trigger, the camera's trigger line)
//! and how long a part may take from trigger to verdict.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use crate::config::{Diagnostic, ScenarioFile};
use crate::verdict::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TriggerMode {
    /// Every frame is a part (the default).
    #[default]
    Free,
    /// Capture waits for the PLC's trigger counter, then takes the next frame.
    Plc,
    /// The camera is triggered by a hardware line: every frame that arrives is a part.
    Camera,
}

/// What the PLC is told about a part without a verdict in time (TIMEOUT) or that could
/// not be inspected (ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailSafe {
    /// Their own codes (`[plc.codes] timeout`/`error`), which the PLC rejects.
    #[default]
    Reject,
    /// The NG code, for PLC programs that know only OK and NG.
    Ng,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TriggerSection {
    pub mode: Option<TriggerMode>,
    /// Trigger (or capture) to verdict, in ms; a part without a verdict by then is TIMEOUT.
    pub deadline_ms: Option<u64>,
    pub fail_safe: Option<FailSafe>,
}

/// A checked `[trigger]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TriggerPlan {
    pub mode: TriggerMode,
    pub deadline: Option<Duration>,
    pub fail_safe: FailSafe,
}

impl TriggerPlan {
    /// Whether the ordering stage must know each part's trigger time and deadline.
    pub fn tracks_parts(&self) -> bool {
        self.mode != TriggerMode::Free || self.deadline.is_some()
    }

    /// The verdict the PLC is sent for `v`.
    pub fn sent(&self, v: Verdict) -> Verdict {
        match (self.fail_safe, v) {
            (FailSafe::Ng, Verdict::Error | Verdict::Timeout) => Verdict::Ng,
            _ => v,
        }
    }
}

/// One trigger from the PLC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    /// The part id the PLC set before triggering (0 when the map has no part-id registers).
    pub part_id: u32,
    /// The trigger counter's new value.
    pub counter: u16,
    /// When lineside saw the trigger.
    pub at: Instant,
    pub wall: SystemTime,
}

/// The longest deadline accepted: ten minutes is already far beyond any conveyor.
const MAX_DEADLINE_MS: u64 = 600_000;

pub fn trigger_plan(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> TriggerPlan {
    let s = match f.section::<TriggerSection>("trigger", &[]) {
        Ok(s) => s,
        Err(d) => {
            errs.push(d);
            return TriggerPlan::default();
        }
    };
    let deadline = match s.deadline_ms {
        Some(0) => {
            errs.push(f.diag(
                "trigger.deadline_ms",
                "is 0; give the time from trigger to verdict in ms (e.g. 150), or leave it out for no deadline",
            ));
            None
        }
        Some(ms) if ms > MAX_DEADLINE_MS => {
            errs.push(f.diag(
                "trigger.deadline_ms",
                format!("{ms} ms is more than {MAX_DEADLINE_MS}; give the conveyor's budget from trigger to reject gate"),
            ));
            None
        }
        Some(ms) => Some(Duration::from_millis(ms)),
        None => None,
    };
    TriggerPlan {
        mode: s.mode.unwrap_or_default(),
        deadline,
        fail_safe: s.fail_safe.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_safe_ng_sends_timeout_and_error_as_ng_and_leaves_ok_alone() {
        let ng = TriggerPlan {
            fail_safe: FailSafe::Ng,
            ..TriggerPlan::default()
        };
        assert_eq!(ng.sent(Verdict::Timeout), Verdict::Ng);
        assert_eq!(ng.sent(Verdict::Error), Verdict::Ng);
        assert_eq!(ng.sent(Verdict::Ok), Verdict::Ok);
        let reject = TriggerPlan::default();
        assert_eq!(reject.sent(Verdict::Timeout), Verdict::Timeout);
        assert!(!reject.tracks_parts());
        let timed = TriggerPlan {
            deadline: Some(Duration::from_millis(5)),
            ..TriggerPlan::default()
        };
        assert!(timed.tracks_parts());
    }
}
