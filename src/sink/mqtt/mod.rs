//! The `mqtt` sink: one message per part on `<prefix>/<station>/<scenario>/result` (the
//! defect-log record), a retained `status` (`online`, `offline`, and `offline` as the last
//! will), periodic `stats` and the scenario's alarms on `alarm`.
//!
//! `deliver` runs on the ordering thread and never touches the network: it appends the
//! record to the disk spool ([`spool`]) and wakes the link thread ([`link`]), which sends
//! the spool in order at QoS 1 and removes what the broker acknowledged.

mod link;
pub mod settings;
pub mod spool;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

pub use link::Topics;
pub use settings::{host_name, settings, MqttSettings, TlsFiles};

use super::{Record, RecordContext, RunSink, SinkError, SinkKind};
use crate::outcome::{Outcome, OutcomeKind};
use crate::verdict::Verdict;
use link::{Counts, Shared};
use spool::Spool;

/// The name of the link in [`crate::status::ScenarioStatus`].
pub const LINK: &str = "mqtt";

pub const KIND: SinkKind = SinkKind {
    name: "mqtt",
    open: |ctx| {
        let Some(settings) = ctx.mqtt else {
            return Err(SinkError::Link(
                "the mqtt sink needs an [mqtt] section (broker host, port, ...)".into(),
            ));
        };
        MqttSink::open(settings.clone(), ctx).map(|s| Box::new(s) as Box<dyn RunSink>)
    },
};

pub struct MqttSink {
    shared: Arc<Shared>,
    wake: Sender<()>,
    thread: Option<JoinHandle<link::LinkEnd>>,
    record: Arc<RecordContext>,
    line: Vec<u8>,
    /// Set once a spool overflow has raised its alarm, until the spool drains.
    overflow_alarmed: bool,
    /// Held while the sink lives, when the spool has a folder of its own.
    _lock: Option<super::OutputLock>,
}

impl MqttSink {
    pub fn open(
        settings: MqttSettings,
        ctx: &super::SinkContext<'_>,
    ) -> Result<MqttSink, SinkError> {
        let dir = settings
            .spool_dir
            .clone()
            .unwrap_or_else(|| ctx.output_dir.join("mqtt-spool"));
        // The default spool sits in the output folder, locked for the run; a spool folder of
        // its own gets its own lock, so two runs never share one.
        let lock = match &settings.spool_dir {
            None => None,
            Some(_) => Some(
                super::output_dir::lock(&dir, ctx.file_mode).map_err(|e| match e {
                    SinkError::Locked { holder, .. } => SinkError::Link(format!(
                    "MQTT spool {} is in use by {}; give each scenario its own [mqtt] spool_dir",
                    dir.display(),
                    holder.map_or_else(|| "another run".into(), |pid| format!("process {pid}"))
                )),
                    e => e,
                })?,
            ),
        };
        let spool_err = |e: spool::SpoolError| SinkError::Link(e.to_string());
        let (spool, recovery) = Spool::open(&dir, settings.spool_max_bytes).map_err(spool_err)?;
        if recovery.pending > 0 {
            // A warning: these results are late, and someone may be waiting for them.
            tracing::warn!(
                scenario = ctx.scenario,
                "MQTT spool {}: {} results from an earlier run go out first",
                dir.display(),
                recovery.pending
            );
        }
        let topics = Topics::new(&settings.topic_prefix, &settings.station, ctx.scenario);
        let link = ctx.status.link(LINK);
        link.backlog.store(spool.depth(), Ordering::Relaxed);
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            stop: AtomicBool::new(false),
            counts: Counts::default(),
            link,
            status: Arc::clone(&ctx.status),
            topics,
            run_id: ctx.run_id.to_string(),
        });
        let client_id = settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("lineside-{}-{}", settings.station, ctx.scenario));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("mqtt-{}", ctx.scenario))
                .spawn(move || link::run(shared, settings, client_id, woken))
                .map_err(|e| SinkError::Link(format!("cannot start the MQTT thread: {e}")))?
        };
        Ok(MqttSink {
            shared,
            wake,
            thread: Some(thread),
            record: Arc::clone(&ctx.record),
            line: Vec::with_capacity(2048),
            overflow_alarmed: false,
            _lock: lock,
        })
    }

    fn count(&self, outcome: &Outcome) {
        let c = &self.shared.counts;
        let counter = match &outcome.result {
            OutcomeKind::Dropped => &c.skipped,
            OutcomeKind::Failed(_) => &c.error,
            OutcomeKind::TimedOut { .. } => &c.timeout,
            OutcomeKind::Inspected { inspection, .. } => match inspection.verdict {
                Verdict::Ok => &c.ok,
                Verdict::Ng => &c.ng,
                Verdict::Error => &c.error,
                Verdict::Timeout => &c.timeout,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl RunSink for MqttSink {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.count(outcome);
        let Some(record) = Record::from_outcome(&self.record, outcome) else {
            return Ok(());
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &record)?;
        let (dropped, depth) = {
            let mut spool = self.shared.spool();
            let dropped = spool
                .append(&self.shared.topics.result, &self.line)
                .map_err(|e| SinkError::Link(e.to_string()))?;
            (dropped, spool.depth())
        };
        self.shared.link.backlog.store(depth, Ordering::Relaxed);
        if depth <= 1 {
            // The spool had drained: the next overflow is news again.
            self.overflow_alarmed = false;
        }
        if dropped > 0 {
            self.shared
                .link
                .dropped
                .fetch_add(dropped, Ordering::Relaxed);
            let message = format!(
                "MQTT spool full: dropped the {dropped} oldest unsent results (raise [mqtt] spool_max_bytes, or bring the broker back)"
            );
            // One alarm per outage (it also logs); every later drop is logged and counted.
            if self.overflow_alarmed {
                tracing::warn!(scenario = %self.shared.status.id, "{message}");
            } else {
                self.overflow_alarmed = true;
                self.shared.status.raise("mqtt_spool_full", message);
            }
        }
        // Full means a wake-up is already pending.
        let _ = self.wake.try_send(());
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let end = thread
            .join()
            .map_err(|_| SinkError::Link("the MQTT thread failed".into()))?;
        if end.left_in_spool > 0 {
            tracing::warn!(
                scenario = %self.shared.status.id,
                "MQTT: {} results not yet acknowledged by the broker stay in the spool {}; they go out first on the next start",
                end.left_in_spool,
                self.shared.spool().dir().display()
            );
        }
        Ok(())
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        // A run that ends without `finish` (an error elsewhere) still stops the thread.
        if self.thread.is_some() {
            let _ = self.finish();
        }
    }
}
