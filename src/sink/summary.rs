//! Per-scenario run statistics, printed as a table and written as JSON beside the
//! defect log, from the same numbers.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{output_dir, RunSink, SinkError, SinkKind};
use crate::outcome::{LatencyHistogram, Outcome, OutcomeKind};
use crate::plc::{PlcLink, PlcStats};
use crate::status::ScenarioStatus;
use crate::verdict::Verdict;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Default)]
pub struct RunStats {
    /// When the first frame was captured: the run's clock starts there, so opening the
    /// sessions (seconds for a large model) does not count against its rate.
    started: Option<Instant>,
    ok: u64,
    ng: u64,
    errors: u64,
    dropped: u64,
    timeouts: u64,
    total: LatencyHistogram,
    preprocess: LatencyHistogram,
    infer: LatencyHistogram,
    head: LatencyHistogram,
}

impl RunStats {
    pub fn add(&mut self, o: &Outcome) {
        self.started.get_or_insert(o.captured);
        match &o.result {
            OutcomeKind::Dropped => self.dropped += 1,
            OutcomeKind::Failed(_) => self.errors += 1,
            OutcomeKind::TimedOut { .. } => self.timeouts += 1,
            OutcomeKind::Inspected {
                inspection,
                times,
                latency,
            } => {
                match inspection.verdict {
                    Verdict::Ok => self.ok += 1,
                    Verdict::Ng => self.ng += 1,
                    Verdict::Error | Verdict::Timeout => self.errors += 1,
                }
                self.total.record(*latency);
                self.preprocess.record(times.preprocess);
                self.infer.record(times.infer);
                self.head.record(times.head);
            }
        }
    }

    pub fn summary(
        &self,
        scenario: &str,
        run_id: &str,
        defect_log: &Path,
        workers: usize,
    ) -> Summary {
        let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        let frames = self.ok + self.ng + self.errors + self.timeouts;
        let p = |h: &LatencyHistogram, q| h.quantile_ms(q).map(round3);
        Summary {
            scenario: scenario.to_string(),
            run_id: run_id.to_string(),
            frames,
            ok: self.ok,
            ng: self.ng,
            errors: self.errors,
            dropped: self.dropped,
            timeouts: self.timeouts,
            late_verdicts: 0,
            evidence: None,
            plc: None,
            elapsed_s: round3(elapsed.as_secs_f64()),
            fps: round3(if elapsed > Duration::ZERO {
                frames as f64 / elapsed.as_secs_f64()
            } else {
                0.0
            }),
            latency_ms: Percentiles {
                p50: p(&self.total, 0.5),
                p99: p(&self.total, 0.99),
            },
            stage_p50_ms: Stages {
                preprocess: p(&self.preprocess, 0.5),
                infer: p(&self.infer, 0.5),
                head: p(&self.head, 0.5),
            },
            workers,
            provider: None,
            defect_log: defect_log.display().to_string(),
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    pub preprocess: Option<f64>,
    pub infer: Option<f64>,
    pub head: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    /// The run these figures are of: the `run_id` of its defect-log records.
    pub run_id: String,
    /// Frames with a verdict (OK + NG + errors + timeouts).
    pub frames: u64,
    pub ok: u64,
    pub ng: u64,
    pub errors: u64,
    /// Frames a live source dropped because inference was behind.
    pub dropped: u64,
    /// Parts without a verdict by their deadline (`[trigger] deadline_ms`): TIMEOUT.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeouts: u64,
    /// Verdicts that came after their part had gone out as TIMEOUT (discarded).
    #[serde(skip_serializing_if = "is_zero")]
    pub late_verdicts: u64,
    /// Evidence images (`[evidence]`): written, dropped, failed, deleted by retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceStats>,
    /// The PLC link's counts (`[plc]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plc: Option<PlcStats>,
    pub elapsed_s: f64,
    pub fps: f64,
    /// Capture-to-verdict latency, queueing included.
    pub latency_ms: Percentiles,
    pub stage_p50_ms: Stages,
    pub workers: usize,
    /// The execution provider that ran the model (`[model] providers`), e.g. "openvino (CPU)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub defect_log: String,
}

/// What became of the evidence images due in a run; written + dropped + failed = due.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct EvidenceStats {
    pub written: u64,
    pub dropped_queue_full: u64,
    pub dropped_no_buffer: u64,
    /// Encoding or writing failed (disk full, permissions).
    pub failed: u64,
    /// Files deleted by retention (`max_mb`, `max_days`), earlier runs' included.
    pub deleted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Names the execution provider that ran the model.
    pub fn with_provider(mut self, provider: &str) -> Summary {
        self.provider = Some(provider.to_string());
        self
    }

    /// Adds what the scenario's status and PLC link counted beside the outcome stream.
    pub fn with_line_side(mut self, status: &ScenarioStatus, plc: Option<&PlcLink>) -> Summary {
        self.late_verdicts = status.late_verdicts.load(Ordering::Relaxed);
        let e = &status.evidence;
        self.evidence = e.enabled.load(Ordering::Relaxed).then(|| EvidenceStats {
            written: e.written.load(Ordering::Relaxed),
            dropped_queue_full: e.dropped_queue.load(Ordering::Relaxed),
            dropped_no_buffer: e.dropped_no_buffer.load(Ordering::Relaxed),
            failed: e.failed.load(Ordering::Relaxed),
            deleted: e.deleted.load(Ordering::Relaxed),
        });
        self.plc = plc.map(PlcLink::stats);
        self
    }

    /// Writes `summary.json` atomically (temp file + rename), creating it with `mode`.
    /// Neither the temp file nor `summary.json` may be a symbolic link.
    pub fn write_json(&self, path: &Path, mode: u32) -> Result<(), SinkError> {
        let tmp = path.with_extension("json.tmp");
        output_dir::refuse_link(path)?;
        let write_err = |p: &Path| {
            let p = p.to_path_buf();
            move |source| SinkError::Write { path: p, source }
        };
        let mut f = output_dir::options(mode)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| output_dir::open_error(&tmp, e))?;
        serde_json::to_writer_pretty(&mut f, self)
            .map_err(std::io::Error::from)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_data())
            .map_err(write_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(write_err(path))
    }

    /// A fixed-width table of several summaries.
    pub fn table(summaries: &[Summary]) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let mut s = format!(
            "{:<24} {:>7} {:>7} {:>7} {:>6} {:>8} {:>8} {:>9} {:>9}\n",
            "scenario", "frames", "OK", "NG", "error", "dropped", "frames/s", "p50 ms", "p99 ms"
        );
        for r in summaries {
            s.push_str(&format!(
                "{:<24} {:>7} {:>7} {:>7} {:>6} {:>8} {:>8.1} {:>9} {:>9}\n",
                r.scenario,
                r.frames,
                r.ok,
                r.ng,
                r.errors,
                r.dropped,
                r.fps,
                opt(r.latency_ms.p50),
                opt(r.latency_ms.p99)
            ));
        }
        s
    }
}

/// The `summary` sink: `summary.json` beside the defect log, written when the run ends.
pub const KIND: SinkKind = SinkKind {
    name: "summary",
    open: |ctx| {
        let path = ctx.output_dir.join("summary.json");
        // Refused now, not after the run: a link found at the end would cost its summary.
        output_dir::refuse_link(&path)?;
        output_dir::refuse_link(&path.with_extension("json.tmp"))?;
        Ok(Box::new(SummarySink {
            stats: RunStats::default(),
            scenario: ctx.scenario.to_string(),
            run_id: ctx.run_id.to_string(),
            path,
            defect_log: ctx.output_dir.join("defects.jsonl"),
            workers: ctx.workers,
            provider: ctx.provider.to_string(),
            file_mode: ctx.file_mode,
            status: Arc::clone(&ctx.status),
            plc: ctx.plc.clone(),
            every: ctx.summary_every,
            written: Instant::now(),
        }))
    },
};

struct SummarySink {
    stats: RunStats,
    scenario: String,
    run_id: String,
    file_mode: u32,
    path: std::path::PathBuf,
    defect_log: std::path::PathBuf,
    workers: usize,
    provider: String,
    status: Arc<ScenarioStatus>,
    plc: Option<Arc<PlcLink>>,
    /// Rewrite period while running (`[output] summary_every_s`).
    every: Option<Duration>,
    written: Instant,
}

impl SummarySink {
    fn write(&self) -> Result<(), SinkError> {
        let summary = self
            .stats
            .summary(&self.scenario, &self.run_id, &self.defect_log, self.workers)
            .with_line_side(&self.status, self.plc.as_deref())
            .with_provider(&self.provider);
        summary.write_json(&self.path, self.file_mode)
    }
}

impl RunSink for SummarySink {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.stats.add(outcome);
        if self
            .every
            .is_some_and(|every| self.written.elapsed() >= every)
        {
            self.written = Instant::now();
            // A missed rewrite costs a stale file, not the line: the final one still counts.
            if let Err(e) = self.write() {
                tracing::warn!(scenario = %self.scenario, "cannot rewrite the summary: {e}");
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_7_symlinked_summary_tmp_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious.txt");
        std::fs::write(&target, b"keep me").unwrap();
        let path = dir.path().join("summary.json");
        std::os::unix::fs::symlink(&target, path.with_extension("json.tmp")).unwrap();
        let summary = RunStats::default().summary("s", "r", &dir.path().join("d"), 1);
        match summary.write_json(&path, 0o640) {
            Err(SinkError::Symlink { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        // A link as summary.json itself is refused too.
        std::fs::remove_file(path.with_extension("json.tmp")).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(
            summary.write_json(&path, 0o640),
            Err(SinkError::Symlink { .. })
        ));
    }
}
