//! Figures of one bench run, read back from the defect log it wrote: when each verdict was
//! decided and its per-stage times.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Stages {
    pub preprocess: f64,
    pub infer: f64,
    pub head: f64,
    pub total: f64,
}

#[derive(Deserialize)]
struct Line {
    time: String,
    latency_ms: Option<Stages>,
}

/// A run's verdict times (ms since the epoch) and stage times, in log order.
pub struct LoggedRun {
    decided_ms: Vec<f64>,
    stages: Vec<Stages>,
}

fn spread(mut v: Vec<f64>) -> Spread {
    if v.is_empty() {
        return Spread::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Spread {
        p50: at(0.5),
        p99: at(0.99),
    }
}

impl LoggedRun {
    pub fn read(log: &Path) -> std::io::Result<LoggedRun> {
        let text = std::fs::read_to_string(log)?;
        let mut run = LoggedRun {
            decided_ms: Vec::new(),
            stages: Vec::new(),
        };
        for line in text.lines() {
            let l: Line = serde_json::from_str(line)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if let Ok(t) = l.time.parse::<jiff::Timestamp>() {
                run.decided_ms.push(t.as_millisecond() as f64);
            }
            run.stages.extend(l.latency_ms);
        }
        Ok(run)
    }

    /// Verdicts per second from the first verdict to the last: start-up (opening sessions,
    /// the first frame's wait) is not counted.
    pub fn steady_fps(&self) -> f64 {
        let first = self
            .decided_ms
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let last = self
            .decided_ms
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let n = self.decided_ms.len();
        if n < 2 || last <= first {
            return 0.0;
        }
        (n - 1) as f64 / ((last - first) / 1e3)
    }

    pub fn stage(&self, pick: impl Fn(&Stages) -> f64) -> Spread {
        spread(self.stages.iter().map(pick).collect())
    }

    /// Capture to verdict.
    pub fn total(&self) -> Spread {
        self.stage(|s| s.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_counts_intervals_between_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("defects.jsonl");
        let lines: String = (0..5)
            .map(|i| {
                format!(
                    "{{\"time\":\"2026-12-01T00:00:0{i}.000Z\",\"latency_ms\":{{\"preprocess\":1,\
                     \"infer\":{},\"head\":0.1,\"total\":5}}}}\n",
                    i + 1
                )
            })
            .collect();
        std::fs::write(&log, lines).unwrap();
        let run = LoggedRun::read(&log).unwrap();
        // 5 verdicts over 4 s: 4 intervals.
        assert_eq!(run.steady_fps(), 1.0);
        let infer = run.stage(|s| s.infer);
        assert_eq!((infer.p50, infer.p99), (3.0, 5.0));
    }
}
