//! Per-scenario run statistics, printed as a table and written as JSON beside the
//! defect log, from the same numbers.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{RunSink, SinkError, SinkKind};
use crate::outcome::{LatencyHistogram, Outcome, OutcomeKind};
use crate::verdict::Verdict;

pub struct RunStats {
    started: Instant,
    ok: u64,
    ng: u64,
    errors: u64,
    dropped: u64,
    total: LatencyHistogram,
    preprocess: LatencyHistogram,
    infer: LatencyHistogram,
    head: LatencyHistogram,
}

impl Default for RunStats {
    fn default() -> Self {
        RunStats {
            started: Instant::now(),
            ok: 0,
            ng: 0,
            errors: 0,
            dropped: 0,
            total: LatencyHistogram::default(),
            preprocess: LatencyHistogram::default(),
            infer: LatencyHistogram::default(),
            head: LatencyHistogram::default(),
        }
    }
}

impl RunStats {
    pub fn add(&mut self, o: &Outcome) {
        match &o.result {
            OutcomeKind::Dropped => self.dropped += 1,
            OutcomeKind::Failed(_) => self.errors += 1,
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

    pub fn summary(&self, scenario: &str, defect_log: &Path, workers: usize) -> Summary {
        let elapsed = self.started.elapsed();
        let frames = self.ok + self.ng + self.errors;
        let p = |h: &LatencyHistogram, q| h.quantile_ms(q).map(round3);
        Summary {
            scenario: scenario.to_string(),
            frames,
            ok: self.ok,
            ng: self.ng,
            errors: self.errors,
            dropped: self.dropped,
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
    /// Frames with a verdict (OK + NG + errors).
    pub frames: u64,
    pub ok: u64,
    pub ng: u64,
    pub errors: u64,
    /// Frames a live source dropped because inference was behind.
    pub dropped: u64,
    pub elapsed_s: f64,
    pub fps: f64,
    /// Capture-to-verdict latency, queueing included.
    pub latency_ms: Percentiles,
    pub stage_p50_ms: Stages,
    pub workers: usize,
    pub defect_log: String,
}

impl Summary {
    /// Writes `summary.json` atomically (temp file + rename).
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, self)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        std::fs::rename(tmp, path)
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
        Ok(Box::new(SummarySink {
            stats: RunStats::default(),
            scenario: ctx.scenario.to_string(),
            path: ctx.output_dir.join("summary.json"),
            defect_log: ctx.output_dir.join("defects.jsonl"),
            workers: ctx.workers,
        }))
    },
};

struct SummarySink {
    stats: RunStats,
    scenario: String,
    path: std::path::PathBuf,
    defect_log: std::path::PathBuf,
    workers: usize,
}

impl RunSink for SummarySink {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.stats.add(outcome);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let summary = self
            .stats
            .summary(&self.scenario, &self.defect_log, self.workers);
        summary
            .write_json(&self.path)
            .map_err(|source| SinkError::Write {
                path: self.path.clone(),
                source,
            })
    }
}
