//! `plc` sink: each part's result to the PLC (verdict code, part id echo, defects,
//! latency) through the scenario's [`PlcLink`]. It only queues: the link's own thread
//! does the network, so the ordering thread never waits on the PLC.

use std::sync::Arc;
use std::time::Instant;

use super::{RunSink, SinkContext, SinkError, SinkKind};
use crate::outcome::{Outcome, OutcomeKind};
use crate::plc::{PlcLink, PlcResult, TriggerMode, TriggerPlan};
use crate::verdict::Verdict;

pub const KIND: SinkKind = SinkKind { name: "plc", open };

fn open(ctx: &SinkContext<'_>) -> Result<Box<dyn RunSink>, SinkError> {
    let link = ctx.plc.clone().ok_or(SinkError::NoPlc)?;
    Ok(Box::new(PlcSink {
        link,
        trigger: ctx.trigger,
    }))
}

struct PlcSink {
    link: Arc<PlcLink>,
    trigger: TriggerPlan,
}

impl RunSink for PlcSink {
    fn deliver(&mut self, o: &Outcome) -> Result<(), SinkError> {
        // PLC-triggered: only triggered parts get a result (frames a camera lost between
        // triggers were never parts the PLC tracks).
        if self.trigger.mode == TriggerMode::Plc && o.part.is_none() {
            return Ok(());
        }
        let (verdict, defects) = match &o.result {
            OutcomeKind::Inspected { inspection, .. } => (
                inspection.verdict,
                u16::try_from(
                    inspection
                        .defects
                        .len()
                        .saturating_add(inspection.defects_truncated),
                )
                .unwrap_or(u16::MAX),
            ),
            // A dropped part got no verdict: the PLC must still reject it.
            OutcomeKind::Failed(_) | OutcomeKind::Dropped => (Verdict::Error, 0),
            OutcomeKind::TimedOut { .. } => (Verdict::Timeout, 0),
        };
        let since = o.part.map_or(o.captured, |p| p.triggered);
        let latency_ms = Instant::now().saturating_duration_since(since).as_millis();
        self.link.send(PlcResult {
            code: self.link.map().codes.of(self.trigger.sent(verdict)),
            part_id: o.part.and_then(|p| p.id).unwrap_or(0),
            defects,
            latency_ms: u16::try_from(latency_ms).unwrap_or(u16::MAX),
        });
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        // The runner shuts the link down (writing what is queued) after every sink.
        Ok(())
    }
}
