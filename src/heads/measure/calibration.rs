//! The calibration file (`[rules] calibration`): the pixel size `lineside calibrate`
//! measured on a target of known size, and how.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What `lineside calibrate` records. Only `mm_per_px` is read back; the rest says how it
/// was found, for whoever audits the station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Millimetres per frame pixel: `known_mm / measured_px`.
    pub mm_per_px: f32,
    /// The measurement rule that measured the target.
    pub probe: String,
    /// The target's size.
    pub known_mm: f32,
    /// What the rule measured, in frame pixels.
    pub measured_px: f32,
    /// The image of the target.
    pub image: String,
    /// The scenario file.
    pub scenario: String,
    /// When, RFC 3339 UTC.
    pub recorded: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a calibration file: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: mm_per_px must be a positive number, found {value}")]
    Value { path: String, value: f32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl Calibration {
    pub fn load(path: &Path) -> Result<Calibration, CalibrationError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationError::Read {
            path: shown.clone(),
            source,
        })?;
        let c: Calibration = toml::from_str(&text).map_err(|e| CalibrationError::Parse {
            path: shown.clone(),
            reason: e.message().to_string(),
        })?;
        if !(c.mm_per_px.is_finite() && c.mm_per_px > 0.0) {
            return Err(CalibrationError::Value {
                path: shown,
                value: c.mm_per_px,
            });
        }
        Ok(c)
    }

    /// Writes the file whole (a temporary file renamed over it), with a comment on top.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let err = |source| CalibrationError::Write {
            path: path.display().to_string(),
            source,
        };
        let body = toml::to_string(self).map_err(|e| err(std::io::Error::other(e.to_string())))?;
        let text = format!(
            "# Written by `lineside calibrate`: the pixel size measured on a target of known size.\n\
             # Re-run it after moving the camera or changing the lens; do not edit by hand.\n{body}"
        );
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}
