//! `lineside report LOGDIR... [--since T] [--until T] [--shift NAME] [--out report.html]`:
//! what QA reads at the end of a shift. Reads defect logs (the `defects.jsonl` of each
//! output folder, rotated copies included), keeps the records in the time window, and
//! turns them into per-scenario tables ([`stats`]) written as one self-contained HTML page
//! ([`html`]: no network, inline CSS and SVG) or as JSON/CSV.

mod eval_view;
mod gallery;
mod html;
mod records;
pub mod stats;

pub use crate::config::{Shift, Station};
pub use records::{read_logs, LogRecord};
pub use stats::{ScenarioStats, Tables};

use std::path::PathBuf;

use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0}: no defect log here (defects.jsonl)\nFix: pass the output folders of scenarios \
         (their [output] dir), e.g. out/demo"
    )]
    NoLog(PathBuf),
    #[error("{path}:{line}: not a defect-log record: {reason}")]
    Record {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "{value:?}: not a time\nFix: give RFC 3339 (2026-12-01T06:00:00Z, 2026-12-01T14:00+08:00) \
         or a local date and time (2026-12-01, \"2026-12-01 06:00\")"
    )]
    Time { value: String },
    #[error(
        "{path}: {reason}\nFix: give --eval the file `lineside eval SCENARIO --json FILE` wrote"
    )]
    Eval { path: PathBuf, reason: String },
    #[error(transparent)]
    Station(#[from] crate::config::StationError),
}

/// Parses a time given on the command line: RFC 3339, or a civil date/time in `tz`.
pub fn parse_time(value: &str, tz: &TimeZone) -> Result<Timestamp, ReportError> {
    let bad = || ReportError::Time {
        value: value.to_string(),
    };
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    let civil = value
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            value
                .parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| bad())?;
    civil
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// Which records a report covers.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub shift: Option<Shift>,
}

impl Window {
    pub fn contains(&self, t: Timestamp, tz: &TimeZone) -> bool {
        self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
            && self
                .shift
                .as_ref()
                .is_none_or(|s| s.contains(t.to_zoned(tz.clone()).time()))
    }
}

/// Reads the logs in `dirs` and builds the tables for the records in `window`.
pub fn build(dirs: &[PathBuf], window: &Window, station: &Station) -> Result<Tables, ReportError> {
    let tz = &station.time_zone;
    let records: Vec<LogRecord> = read_logs(dirs)?
        .into_iter()
        .filter(|r| window.contains(r.time, tz))
        .collect();
    let scenarios = stats::tables(&records, tz);
    let mut total = stats::Counts::default();
    for s in &scenarios {
        total.merge(&s.counts);
    }
    let show = |t: Option<Timestamp>| t.map(|t| t.to_zoned(tz.clone()).to_string());
    Ok(Tables {
        time_zone: tz.iana_name().unwrap_or("system time zone").to_string(),
        since: show(window.since),
        until: show(window.until),
        shift: window.shift.as_ref().map(|s| s.name.clone()),
        total,
        scenarios,
    })
}

/// The tables (and `lineside eval --json` results, if any) as one self-contained HTML page.
pub fn html(tables: &Tables, evals: &[serde_json::Value], station: &Station) -> String {
    let now = Timestamp::now()
        .to_zoned(station.time_zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string();
    html::page(tables, evals, station.name.as_deref(), &now)
}

/// Reads files written by `lineside eval --json`.
pub fn read_evals(paths: &[PathBuf]) -> Result<Vec<serde_json::Value>, ReportError> {
    paths
        .iter()
        .map(|path| {
            let bad = |reason: String| ReportError::Eval {
                path: path.clone(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            if eval_view::scenario_of(&v).is_none() {
                return Err(bad("it has no \"scenario\"".into()));
            }
            Ok(v)
        })
        .collect()
}

/// The tables as CSV files in `dir`: counts, rules, classes, hourly, latency, worst.
pub fn write_csv(tables: &Tables, dir: &std::path::Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let mut file = |name: &str, header: &[&str], rows: Vec<Vec<String>>| {
        let path = dir.join(name);
        let io = |e: csv::Error| ReportError::Read {
            path: path.clone(),
            source: std::io::Error::other(e),
        };
        let mut w = csv::Writer::from_path(&path).map_err(io)?;
        w.write_record(header).map_err(io)?;
        for r in rows {
            w.write_record(&r).map_err(io)?;
        }
        w.flush().map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?;
        written.push(path);
        Ok::<(), ReportError>(())
    };
    let counts = |id: &str, c: &stats::Counts| {
        vec![
            id.to_string(),
            c.parts.to_string(),
            c.ok.to_string(),
            c.ng.to_string(),
            c.error.to_string(),
            c.timeout.to_string(),
            c.yield_ratio()
                .map_or_else(String::new, |y| format!("{y:.6}")),
        ]
    };
    let s = &tables.scenarios;
    file(
        "counts.csv",
        &["scenario", "parts", "ok", "ng", "error", "timeout", "yield"],
        s.iter().map(|x| counts(&x.scenario, &x.counts)).collect(),
    )?;
    let pairs = |f: &dyn Fn(&ScenarioStats) -> Vec<(String, usize)>| -> Vec<Vec<String>> {
        s.iter()
            .flat_map(|x| {
                f(x).into_iter()
                    .map(|(k, v)| vec![x.scenario.clone(), k, v.to_string()])
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    file(
        "rules.csv",
        &["scenario", "rule", "parts"],
        pairs(&|x| x.by_rule.iter().map(|(k, v)| (k.clone(), *v)).collect()),
    )?;
    file(
        "classes.csv",
        &["scenario", "class", "ng_parts"],
        pairs(&|x| x.by_class.iter().map(|(k, v)| (k.clone(), *v)).collect()),
    )?;
    file(
        "hourly.csv",
        &[
            "scenario", "hour", "parts", "ok", "ng", "error", "timeout", "yield",
        ],
        s.iter()
            .flat_map(|x| {
                x.hourly.iter().map(|(hour, c)| {
                    let mut row = counts(&x.scenario, c);
                    row.insert(1, hour.clone());
                    row
                })
            })
            .collect(),
    )?;
    file(
        "latency.csv",
        &["scenario", "p50_ms", "p90_ms", "p99_ms", "max_ms"],
        s.iter()
            .filter_map(|x| {
                x.latency_ms.as_ref().map(|l| {
                    vec![
                        x.scenario.clone(),
                        l.p50.to_string(),
                        l.p90.to_string(),
                        l.p99.to_string(),
                        l.max.to_string(),
                    ]
                })
            })
            .collect(),
    )?;
    file(
        "worst.csv",
        &[
            "scenario", "time", "run_id", "seq", "item", "verdict", "score", "why",
        ],
        s.iter()
            .flat_map(|x| {
                x.worst.iter().map(|w| {
                    vec![
                        x.scenario.clone(),
                        w.time_local.clone(),
                        w.run_id.clone().unwrap_or_default(),
                        w.seq.to_string(),
                        w.item.clone().unwrap_or_default(),
                        w.verdict.clone(),
                        w.score.map_or_else(String::new, |v| v.to_string()),
                        w.why.clone(),
                    ]
                })
            })
            .collect(),
    )?;
    Ok(written)
}
