//! The station: the box's name, its time zone and its shifts, from a small station file
//! that `lineside run` (records carry the name and local time) and `lineside report`
//! (shifts, local hours) both read:
//!
//! ```toml
//! [station]
//! name = "Line 3, station 2"
//! time_zone = "Asia/Shanghai"     # default: the system's
//!
//! [[shift]]
//! name = "early"
//! start = "06:00"
//! end = "14:00"                   # an end before the start runs past midnight
//! ```

use std::path::{Path, PathBuf};

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::Deserialize;

/// Where the station file is looked for when no `--station` is given.
pub const DEFAULT_STATION_FILE: &str = "/etc/lineside/station.toml";

#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error("{path}: {reason}\nFix: see docs/report.md for the station file")]
    File { path: PathBuf, reason: String },
    #[error("shift {0:?} is not in the station file{1}")]
    NoShift(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub name: String,
    pub start: Time,
    pub end: Time,
}

impl Shift {
    /// Whether a local time of day falls in the shift (`start` included, `end` not).
    pub fn contains(&self, t: Time) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

#[derive(Debug, Clone)]
pub struct Station {
    pub name: Option<String>,
    pub time_zone: TimeZone,
    pub shifts: Vec<Shift>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StationFile {
    station: Option<StationSection>,
    #[serde(default)]
    shift: Vec<ShiftSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StationSection {
    name: Option<String>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftSection {
    name: String,
    start: String,
    end: String,
}

impl Default for Station {
    fn default() -> Self {
        Station::system()
    }
}

impl Station {
    /// No station file: the system's time zone and no shifts.
    pub fn system() -> Self {
        Station {
            name: None,
            time_zone: TimeZone::system(),
            shifts: Vec::new(),
        }
    }

    /// The station file given, else [`DEFAULT_STATION_FILE`] when it exists, else
    /// [`Station::system`].
    pub fn find(given: Option<&Path>) -> Result<Self, StationError> {
        match given {
            Some(p) => Station::load(p),
            None if Path::new(DEFAULT_STATION_FILE).is_file() => {
                Station::load(Path::new(DEFAULT_STATION_FILE))
            }
            None => Ok(Station::system()),
        }
    }

    /// The name records carry: the station file's, else the host name.
    pub fn record_name(&self) -> String {
        self.name.clone().unwrap_or_else(host_name)
    }

    pub fn load(path: &Path) -> Result<Self, StationError> {
        let bad = |reason: String| StationError::File {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: StationFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let section = file.station;
        let time_zone = match section.as_ref().and_then(|s| s.time_zone.as_deref()) {
            None => TimeZone::system(),
            Some(name) => TimeZone::get(name).map_err(|e| {
                bad(format!(
                    "time_zone {name:?}: {e} (an IANA name such as \"Asia/Shanghai\")"
                ))
            })?,
        };
        let shifts = file
            .shift
            .into_iter()
            .map(|s| {
                let time = |v: &str| {
                    v.parse::<Time>().map_err(|_| {
                        bad(format!(
                            "shift {:?}: {v:?} is not a time of day (\"06:00\")",
                            s.name
                        ))
                    })
                };
                Ok(Shift {
                    start: time(&s.start)?,
                    end: time(&s.end)?,
                    name: s.name.clone(),
                })
            })
            .collect::<Result<Vec<_>, StationError>>()?;
        Ok(Station {
            name: section.and_then(|s| s.name),
            time_zone,
            shifts,
        })
    }

    pub fn shift(&self, name: &str) -> Result<Shift, StationError> {
        self.shifts
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = self.shifts.iter().map(|s| s.name.as_str()).collect();
                StationError::NoShift(
                    name.to_string(),
                    if known.is_empty() {
                        " (it defines none; give --station FILE)".to_string()
                    } else {
                        format!(" (it has: {})", known.join(", "))
                    },
                )
            })
    }
}

/// The kernel's host name (`/proc/sys/kernel/hostname`), or `"unknown"`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_night_shift_runs_past_midnight() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("station.toml");
        std::fs::write(
            &f,
            "[station]\ntime_zone = \"UTC\"\n[[shift]]\nname = \"night\"\nstart = \"22:00\"\nend = \"06:00\"\n",
        )
        .unwrap();
        let s = Station::load(&f).unwrap();
        let night = s.shift("night").unwrap();
        assert!(night.contains(Time::constant(23, 0, 0, 0)));
        assert!(night.contains(Time::constant(5, 59, 0, 0)));
        assert!(!night.contains(Time::constant(6, 0, 0, 0)));
        let e = s.shift("day").unwrap_err().to_string();
        assert!(e.contains("night"), "{e}");
        std::fs::write(
            &f,
            "[[shift]]\nname = \"x\"\nstart = \"25:00\"\nend = \"1:00\"\n",
        )
        .unwrap();
        assert!(Station::load(&f).is_err());
    }
}
