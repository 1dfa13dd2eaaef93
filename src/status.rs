//! Live state of a running scenario, shared by the parts that change it (capture, the
//! ordering stage, links to a PLC or broker) and the parts that show it (`/healthz`,
//! `/metrics`, MQTT `stats`). Everything is an atomic or a short lock: writers on the
//! hot path never wait on readers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Alarms kept for late readers; older ones are counted, not kept.
const ALARMS_KEPT: usize = 64;

/// A connection to something on the line (a PLC, an MQTT broker).
#[derive(Debug, Default)]
pub struct LinkStatus {
    pub connected: AtomicBool,
    /// Times the link was re-established after a loss.
    pub reconnects: AtomicU64,
    /// Items waiting to go out (an MQTT spool's depth).
    pub backlog: AtomicU64,
    /// Items given up (a full spool's oldest records), never silently.
    pub dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl LinkStatus {
    pub fn set_connected(&self, up: bool) {
        let was = self.connected.swap(up, Ordering::SeqCst);
        if up && !was {
            *lock(&self.last_error) = None;
        }
    }

    pub fn set_error(&self, message: impl Into<String>) {
        self.connected.store(false, Ordering::SeqCst);
        *lock(&self.last_error) = Some(message.into());
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }
}

/// Something an operator must look at (a missed PLC acknowledge, a spool overflow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    /// 1, 2, 3, … per scenario, so readers can tell which alarms they have seen.
    pub number: u64,
    /// Short machine-readable kind, e.g. `plc_ack_missed`.
    pub kind: String,
    pub message: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// What became of the evidence images due (`[evidence]`): every part whose evidence was
/// due ends in exactly one of written, dropped (queue full, no free buffer) or failed.
#[derive(Debug, Default)]
pub struct EvidenceCounts {
    /// Set when the scenario writes evidence.
    pub enabled: AtomicBool,
    pub written: AtomicU64,
    /// The writer's queue was full: the record says `{"dropped": "queue full"}`.
    pub dropped_queue: AtomicU64,
    /// Every capture buffer was in use when the part was inspected.
    pub dropped_no_buffer: AtomicU64,
    /// Encoding or writing failed (disk full, permissions).
    pub failed: AtomicU64,
    /// Files deleted by retention (`max_mb`, `max_days`).
    pub deleted: AtomicU64,
}

/// One scenario's live state.
#[derive(Debug, Default)]
pub struct ScenarioStatus {
    pub id: String,
    /// Unix milliseconds of the last frame the source delivered (0: none yet).
    pub last_frame_ms: AtomicU64,
    /// Frames queued for the workers.
    pub queue_depth: AtomicU64,
    /// Cleared when the source has ended or failed, and while it is disconnected (a
    /// camera unplugged, a watched folder that cannot be listed).
    pub source_alive: AtomicBool,
    /// Verdicts that came after their part's deadline (the part went out as TIMEOUT).
    pub late_verdicts: AtomicU64,
    /// Set once every session is open and capture has started (systemd READY=1).
    pub started: AtomicBool,
    /// Bumped by SIGHUP: file sinks reopen their files (logrotate) before the next record.
    pub reopen_files: AtomicU64,
    /// The plan generation frames are now decided under (1 + successful reloads).
    pub plan_generation: AtomicU64,
    /// Evidence images written, dropped, failed and deleted.
    pub evidence: EvidenceCounts,
    links: Mutex<Vec<(String, Arc<LinkStatus>)>>,
    alarms: Mutex<VecDeque<Alarm>>,
    alarms_raised: AtomicU64,
}

impl ScenarioStatus {
    pub fn new(id: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            id: id.into(),
            source_alive: AtomicBool::new(true),
            plan_generation: AtomicU64::new(1),
            ..Self::default()
        })
    }

    pub fn frame_arrived(&self) {
        self.last_frame_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The status of the link named `name` (`plc`, `mqtt`), created on first use.
    pub fn link(&self, name: &str) -> Arc<LinkStatus> {
        let mut links = lock(&self.links);
        if let Some((_, l)) = links.iter().find(|(n, _)| n == name) {
            return Arc::clone(l);
        }
        let l = Arc::new(LinkStatus::default());
        links.push((name.to_owned(), Arc::clone(&l)));
        l
    }

    pub fn links(&self) -> Vec<(String, Arc<LinkStatus>)> {
        lock(&self.links).clone()
    }

    /// Raises an alarm: logged at warn, counted, and kept for readers.
    pub fn raise(&self, kind: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(scenario = %self.id, alarm = kind, "{message}");
        let number = self.alarms_raised.fetch_add(1, Ordering::SeqCst) + 1;
        let mut alarms = lock(&self.alarms);
        if alarms.len() == ALARMS_KEPT {
            alarms.pop_front();
        }
        alarms.push_back(Alarm {
            number,
            kind: kind.to_owned(),
            message,
            at_ms: now_ms(),
        });
    }

    /// Alarms numbered above `seen`, oldest first (those still kept).
    pub fn alarms_since(&self, seen: u64) -> Vec<Alarm> {
        lock(&self.alarms)
            .iter()
            .filter(|a| a.number > seen)
            .cloned()
            .collect()
    }

    pub fn alarms_raised(&self) -> u64 {
        self.alarms_raised.load(Ordering::SeqCst)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A poisoned lock only means another thread panicked while holding it; the data (counters,
/// strings) is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_shared_by_name_and_alarms_are_numbered() {
        let s = ScenarioStatus::new("a");
        let plc = s.link("plc");
        plc.set_error("refused");
        assert!(Arc::ptr_eq(&plc, &s.link("plc")));
        assert_eq!(s.link("plc").last_error().as_deref(), Some("refused"));
        plc.set_connected(true);
        assert_eq!(plc.last_error(), None);
        for i in 0..(ALARMS_KEPT + 3) {
            s.raise("test", format!("alarm {i}"));
        }
        assert_eq!(s.alarms_raised(), (ALARMS_KEPT + 3) as u64);
        let kept = s.alarms_since(0);
        assert_eq!(kept.len(), ALARMS_KEPT);
        assert_eq!(kept[0].number, 4);
        assert_eq!(s.alarms_since(s.alarms_raised() - 1).len(), 1);
    }
}
