//! Defect-log records as the report needs them. Only the fields it uses are read, and
//! every one but `scenario`, `seq`, `time` and `verdict` may be missing, so logs written
//! by older or newer versions still read.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

use super::ReportError;

#[derive(Debug, Clone, Deserialize)]
pub struct LogRecord {
    pub scenario: String,
    pub seq: u64,
    #[serde(with = "rfc3339")]
    pub time: Timestamp,
    pub verdict: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub item: Option<String>,
    #[serde(default)]
    pub score: Option<f64>,
    /// Schema 2: how bad the part is within its scenario.
    #[serde(default)]
    pub severity: Option<f64>,
    #[serde(default)]
    pub station: Option<String>,
    #[serde(default)]
    pub failed: Vec<FailedRule>,
    #[serde(default)]
    pub defects: Vec<LoggedDefect>,
    #[serde(default)]
    pub latency_ms: Option<Latency>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub evidence: Option<LoggedEvidence>,
    /// The folder of the log the record came from: evidence paths are relative to it.
    #[serde(skip)]
    pub log_dir: PathBuf,
}

/// A failed rule: schema 2 has `rule_kind` and `rule_name`; schema 1 had `rule` alone,
/// with a named rule's name at the start of `detail`.
#[derive(Debug, Clone, Deserialize)]
pub struct FailedRule {
    #[serde(alias = "rule")]
    pub rule_kind: String,
    #[serde(default)]
    pub rule_name: Option<String>,
    #[serde(default)]
    pub detail: String,
}

/// The evidence images the run wrote for the part, or why there are none.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoggedEvidence {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub crops: Vec<String>,
    #[serde(default)]
    pub dropped: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggedDefect {
    #[serde(default)]
    pub class: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Latency {
    pub total: f64,
}

mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The defect logs of an output folder: `defects.jsonl` and rotated copies beside it
/// (`defects.jsonl.1`, `defects.jsonl-20261201`, ...), oldest name last.
fn logs_in(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("defects.jsonl") && !n.ends_with(".gz"))
        })
        .collect();
    logs.sort();
    if logs.is_empty() {
        return Err(ReportError::NoLog(dir.to_path_buf()));
    }
    Ok(logs)
}

/// Every record of the logs in `dirs`, each log in file order. A torn last line (a log
/// being written, or cut by a crash) is skipped; any other bad line is an error.
pub fn read_logs(dirs: &[PathBuf]) -> Result<Vec<LogRecord>, ReportError> {
    let mut out = Vec::new();
    for dir in dirs {
        for path in logs_in(dir)? {
            let file = std::fs::File::open(&path).map_err(|source| ReportError::Read {
                path: path.clone(),
                source,
            })?;
            let lines: Vec<String> = BufReader::new(file)
                .lines()
                .collect::<Result<_, _>>()
                .map_err(|source| ReportError::Read {
                    path: path.clone(),
                    source,
                })?;
            let last = lines.len();
            let log_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<LogRecord>(line) {
                    Ok(mut r) => {
                        r.log_dir.clone_from(&log_dir);
                        out.push(r)
                    }
                    Err(_) if i + 1 == last && !line.ends_with('}') => {}
                    Err(e) => {
                        return Err(ReportError::Record {
                            path: path.clone(),
                            line: i + 1,
                            reason: e.to_string(),
                        })
                    }
                }
            }
        }
    }
    Ok(out)
}
