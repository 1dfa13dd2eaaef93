//! The report's tables, per scenario: verdict counts and yield, NG per rule and per defect
//! class, a trend per local hour, latency percentiles, and the worst parts.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::Serialize;

use super::records::{FailedRule, LogRecord};

/// Parts listed as the worst of each scenario.
pub const WORST: usize = 12;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub parts: usize,
    pub ok: usize,
    pub ng: usize,
    pub error: usize,
    pub timeout: usize,
}

impl Counts {
    fn add(&mut self, verdict: &str) {
        self.parts += 1;
        match verdict {
            "OK" => self.ok += 1,
            "NG" => self.ng += 1,
            "TIMEOUT" => self.timeout += 1,
            _ => self.error += 1,
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        self.parts += o.parts;
        self.ok += o.ok;
        self.ng += o.ng;
        self.error += o.error;
        self.timeout += o.timeout;
    }

    /// Share of parts passed.
    pub fn yield_ratio(&self) -> Option<f64> {
        (self.parts > 0).then(|| self.ok as f64 / self.parts as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorstPart {
    pub seq: u64,
    pub run_id: Option<String>,
    pub time_local: String,
    pub item: Option<String>,
    pub verdict: String,
    pub score: Option<f64>,
    pub severity: Option<f64>,
    pub why: String,
    /// The evidence image with overlays, resolved against the log's folder.
    pub evidence: Option<std::path::PathBuf>,
    /// Why a part that was due evidence has none (`queue full`).
    pub evidence_missing: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioStats {
    pub scenario: String,
    pub counts: Counts,
    pub yield_ratio: Option<f64>,
    pub runs: usize,
    pub first_local: String,
    pub last_local: String,
    /// NG and ERROR parts per failed rule (`rule` or `rule: name` for named rules); a part
    /// failing two rules counts under both.
    pub by_rule: BTreeMap<String, usize>,
    /// NG parts per defect class found on them.
    pub by_class: BTreeMap<String, usize>,
    /// Per local hour (`YYYY-MM-DD HH:00`).
    pub hourly: BTreeMap<String, Counts>,
    /// Capture-to-verdict latency, ms.
    pub latency_ms: Option<Percentiles>,
    pub worst: Vec<WorstPart>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tables {
    pub time_zone: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub shift: Option<String>,
    pub total: Counts,
    pub scenarios: Vec<ScenarioStats>,
}

/// `kind: name` for named rules, the kind alone otherwise. Schema 1 records named `count`
/// and `text` rules at the start of their detail (`` `screws`: at least ...``).
fn rule_label(f: &FailedRule) -> String {
    let kind = f.rule_kind.as_str();
    let named = match f.rule_name.as_deref() {
        Some(name) => Some(name),
        None if matches!(kind, "count" | "text") => f
            .detail
            .strip_prefix('`')
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name),
        None => None,
    };
    match named {
        Some(name) if name != kind => format!("{kind}: {name}"),
        _ => kind.to_string(),
    }
}

fn local(t: jiff::Timestamp, tz: &TimeZone, format: &str) -> String {
    t.to_zoned(tz.clone()).strftime(format).to_string()
}

fn percentiles(mut v: Vec<f64>) -> Option<Percentiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some(Percentiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: v[v.len() - 1],
    })
}

/// How bad a rejected part is, for ranking: an uninspected part first, then by
/// severity (schema 2) or, in older logs, by score.
fn badness(r: &LogRecord) -> (u8, f64) {
    let class = match r.verdict.as_str() {
        "ERROR" | "TIMEOUT" => 2,
        "NG" => 1,
        _ => 0,
    };
    (class, r.severity.or(r.score).unwrap_or(f64::NEG_INFINITY))
}

fn scenario_stats(id: &str, records: &[&LogRecord], tz: &TimeZone) -> ScenarioStats {
    let mut counts = Counts::default();
    let mut by_rule = BTreeMap::new();
    let mut by_class = BTreeMap::new();
    let mut hourly: BTreeMap<String, Counts> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut runs: Vec<&str> = Vec::new();
    for r in records {
        counts.add(&r.verdict);
        hourly
            .entry(local(r.time, tz, "%Y-%m-%d %H:00"))
            .or_default()
            .add(&r.verdict);
        for f in &r.failed {
            *by_rule.entry(rule_label(f)).or_insert(0) += 1;
        }
        if r.verdict == "NG" {
            let mut classes: Vec<&str> = r
                .defects
                .iter()
                .map(|d| d.class.as_deref().unwrap_or("(none)"))
                .collect();
            classes.sort_unstable();
            classes.dedup();
            for c in classes {
                *by_class.entry(c.to_string()).or_insert(0) += 1;
            }
        }
        if let Some(l) = r.latency_ms {
            latencies.push(l.total);
        }
        if let Some(run) = r.run_id.as_deref() {
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
    }
    let mut rejected: Vec<&&LogRecord> = records.iter().filter(|r| r.verdict != "OK").collect();
    rejected.sort_by(|a, b| {
        let (ca, sa) = badness(a);
        let (cb, sb) = badness(b);
        cb.cmp(&ca).then(sb.total_cmp(&sa))
    });
    let worst = rejected
        .iter()
        .take(WORST)
        .map(|r| WorstPart {
            seq: r.seq,
            run_id: r.run_id.clone(),
            time_local: local(r.time, tz, "%Y-%m-%d %H:%M:%S %:z"),
            item: r.item.clone(),
            verdict: r.verdict.clone(),
            score: r.score,
            severity: r.severity,
            evidence: r
                .evidence
                .as_ref()
                .and_then(|e| e.image.as_deref())
                .map(|p| r.log_dir.join(p)),
            evidence_missing: r.evidence.as_ref().and_then(|e| e.dropped.clone()),
            why: r.error.clone().unwrap_or_else(|| {
                r.failed
                    .iter()
                    .map(|f| match f.rule_name.as_deref() {
                        // Schema 2: the name beside the detail; schema 1 had it inside.
                        Some(name) if name != f.rule_kind => format!("{name}: {}", f.detail),
                        _ => f.detail.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        })
        .collect();
    let (first, last) = (
        records.iter().map(|r| r.time).min(),
        records.iter().map(|r| r.time).max(),
    );
    let when = |t: Option<jiff::Timestamp>| {
        t.map(|t| local(t, tz, "%Y-%m-%d %H:%M:%S %:z"))
            .unwrap_or_default()
    };
    ScenarioStats {
        scenario: id.to_string(),
        yield_ratio: counts.yield_ratio(),
        counts,
        runs: runs.len(),
        first_local: when(first),
        last_local: when(last),
        by_rule,
        by_class,
        hourly,
        latency_ms: percentiles(latencies),
        worst,
    }
}

/// The tables of every scenario found in `records` (already filtered), by scenario id.
pub fn tables(records: &[LogRecord], tz: &TimeZone) -> Vec<ScenarioStats> {
    let mut ids: Vec<&str> = records.iter().map(|r| r.scenario.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.iter()
        .map(|id| {
            let mine: Vec<&LogRecord> = records.iter().filter(|r| r.scenario == *id).collect();
            scenario_stats(id, &mine, tz)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, name: Option<&str>, detail: &str) -> FailedRule {
        FailedRule {
            rule_kind: kind.into(),
            rule_name: name.map(Into::into),
            detail: detail.into(),
        }
    }

    #[test]
    fn named_rules_are_told_apart_in_both_schemas() {
        // Schema 1: the name led the detail.
        assert_eq!(
            rule_label(&rule(
                "count",
                None,
                "`screws`: at least 3 `screw`: found 1"
            )),
            "count: screws"
        );
        assert_eq!(
            rule_label(&rule("min_score", None, "top score 0.1 is below")),
            "min_score"
        );
        // Schema 2: rule_name; a keyed rule's name is its kind.
        assert_eq!(
            rule_label(&rule(
                "count",
                Some("screws"),
                "at least 3 `screw`: found 1"
            )),
            "count: screws"
        );
        assert_eq!(
            rule_label(&rule("min_score", Some("min_score"), "top score 0.1")),
            "min_score"
        );
    }

    #[test]
    fn percentiles_pick_ranks() {
        let p = percentiles((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (51.0, 99.0, 100.0));
        assert!(percentiles(Vec::new()).is_none());
    }
}
