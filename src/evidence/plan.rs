//! `[evidence]` checked into an [`EvidencePlan`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::schema::EvidenceSection;
use crate::config::{Diagnostic, ScenarioFile};

/// Folder under `[output] dir` when `[evidence] dir` is not given.
pub const DEFAULT_DIR: &str = "evidence";
const DEFAULT_MAX_MB: f64 = 1024.0;
const DEFAULT_MAX_DAYS: f64 = 30.0;
const DEFAULT_QUEUE: usize = 8;
const MAX_QUEUE: usize = 1024;
const DEFAULT_QUALITY: u8 = 85;

#[derive(Debug, Clone, PartialEq)]
pub struct EvidencePlan {
    pub enabled: bool,
    /// Also save OK parts whose `seq` is a multiple of this (0: none).
    pub ok_every: u64,
    /// The folder the images go to: absolute, or relative to the output folder of the run.
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// `None`: no age limit.
    pub max_age: Option<Duration>,
    /// Bounded queue to the writer.
    pub queue: usize,
    pub jpeg_quality: u8,
    pub crops: bool,
}

impl EvidencePlan {
    /// Whether an OK part `seq` is one of the sampled ones.
    pub fn samples_ok(&self, seq: u64) -> bool {
        self.ok_every > 0 && seq.is_multiple_of(self.ok_every)
    }
}

/// Reads `[evidence]`; `None` when the section is absent or wrong (the errors say why).
/// `output_dir` is the scenario's `[output] dir` (`None` when that is wrong itself).
pub fn evidence_plan(
    f: &ScenarioFile,
    output_dir: Option<&Path>,
    errs: &mut Vec<Diagnostic>,
) -> Option<EvidencePlan> {
    if f.section_keys("evidence", &[]).is_empty() && f.diag("evidence", "").line.is_none() {
        return None;
    }
    let s: EvidenceSection = match f.section("evidence", &[]) {
        Ok(s) => s,
        Err(d) => {
            errs.push(d);
            return None;
        }
    };
    let before = errs.len();
    let max_mb = s.max_mb.unwrap_or(DEFAULT_MAX_MB);
    if !(max_mb.is_finite() && max_mb > 0.0 && max_mb <= 1e9) {
        errs.push(f.diag(
            "evidence.max_mb",
            "must be a size in MiB above 0 (e.g. 1024); old images are deleted to stay under it",
        ));
    }
    let max_days = s.max_days.unwrap_or(DEFAULT_MAX_DAYS);
    if !(max_days.is_finite() && (0.0..=36500.0).contains(&max_days)) {
        errs.push(f.diag(
            "evidence.max_days",
            "must be a number of days, 0 (no age limit) to 36500",
        ));
    }
    let queue = s.queue.unwrap_or(DEFAULT_QUEUE);
    if !(1..=MAX_QUEUE).contains(&queue) {
        errs.push(f.diag(
            "evidence.queue",
            format!(
                "must be 1 to {MAX_QUEUE} (images waiting for the writer; default {DEFAULT_QUEUE})"
            ),
        ));
    }
    let jpeg_quality = s.jpeg_quality.unwrap_or(DEFAULT_QUALITY);
    if !(1..=100).contains(&jpeg_quality) {
        errs.push(f.diag(
            "evidence.jpeg_quality",
            format!("must be 1 to 100 (default {DEFAULT_QUALITY})"),
        ));
    }
    let dir = match (&s.dir, output_dir) {
        (Some(d), _) if d.as_os_str().is_empty() => {
            errs.push(f.diag(
                "evidence.dir",
                "is empty; give a folder, or leave it out for `evidence` under [output] dir",
            ));
            None
        }
        // Relative folders stay relative: the run resolves them against the output folder
        // it really writes to (a test or `lineside bench` redirects it).
        (Some(d), Some(_)) => Some(d.clone()),
        (None, Some(_)) => Some(PathBuf::from(DEFAULT_DIR)),
        (_, None) => None,
    };
    if errs.len() > before {
        return None;
    }
    Some(EvidencePlan {
        enabled: s.enabled.unwrap_or(true),
        ok_every: s.ok_every.unwrap_or(0),
        dir: dir?,
        // Checked above: finite, positive, at most 1e9 MiB.
        max_bytes: (max_mb * 1024.0 * 1024.0) as u64,
        max_age: (max_days > 0.0).then(|| Duration::from_secs_f64(max_days * 86_400.0)),
        queue,
        jpeg_quality,
        crops: s.crops.unwrap_or(true),
    })
}
