//! A fixed-size latency histogram (1% relative resolution, 1 µs to ~100 s), so
//! percentiles of a run of any length need bounded memory.

use std::time::Duration;

const MIN_US: f64 = 1.0;
const GROWTH: f64 = 1.01;
const BUCKETS: usize = 1900;

#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: Duration,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: Duration::ZERO,
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        let i = if us <= MIN_US {
            0
        } else {
            ((us / MIN_US).ln() / GROWTH.ln()).ceil() as usize
        };
        self.counts[i.min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(d);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) in milliseconds, within 1%; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let upper_ms = MIN_US * GROWTH.powi(i as i32) / 1000.0;
                return Some(upper_ms.min(self.max.as_secs_f64() * 1000.0));
            }
        }
        Some(self.max.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_one_percent() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_ms(0.5).unwrap();
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 < 0.011, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.011, "{p99}");
        assert_eq!(h.quantile_ms(1.0).unwrap(), 100.0);
    }
}
