//! `lineside calibrate`: measure a target of known size with one of the scenario's own
//! measurement rules and record the pixel size in the scenario's calibration file.

use std::path::{Path, PathBuf};

use crate::config::Diagnostic;
use crate::frame::{FrameLayout, PixelFormat};
use crate::heads::measure::calibration::{Calibration, CalibrationError};
use crate::heads::measure::rules::Quantity;
use crate::heads::MeasureConfig;
use crate::pipeline::{Worker, WorkerError};
use crate::scenario;

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Scenario(Vec<Diagnostic>),
    #[error("{0} is not a measurement scenario ([head] kind = \"measure\")")]
    NotMeasure(String),
    #[error("{0} has no [rules] calibration = \"<file>\"; add it so the measurement finds the pixel size, then calibrate again")]
    NoFile(String),
    #[error("no measurement is named `{name}`; the scenario's are {known}")]
    UnknownProbe { name: String, known: String },
    #[error("`{0}` is not a length: calibrate with a width or distance rule")]
    NotLength(String),
    #[error("--known-mm must be a positive number of millimetres, not {0}")]
    KnownMm(f32),
    #[error("cannot read the image {path}: {reason}")]
    Image { path: String, reason: String },
    #[error("inspecting the image: {0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("inspecting the image: {0}")]
    Worker(#[from] WorkerError),
    #[error("`{name}` found nothing to measure on {image}; check that the target lies across its probe (docs/measure.md)")]
    NotFound { name: String, image: String },
    #[error(transparent)]
    File(#[from] CalibrationError),
}

/// Measures `image` with rule `probe` of `scenario`, whose true length is `known_mm`, and
/// writes the calibration file; returns what was written and where.
pub fn calibrate(
    scenario_path: &Path,
    image: &Path,
    probe: &str,
    known_mm: f32,
) -> Result<(Calibration, PathBuf), CalibrateError> {
    if !(known_mm.is_finite() && known_mm > 0.0) {
        return Err(CalibrateError::KnownMm(known_mm));
    }
    let plan = scenario::check_uncalibrated(scenario_path).map_err(CalibrateError::Scenario)?;
    let shown = scenario_path.display().to_string();
    let cfg = plan
        .head_config::<MeasureConfig>()
        .ok_or_else(|| CalibrateError::NotMeasure(shown.clone()))?;
    let target = cfg
        .calibration
        .clone()
        .ok_or_else(|| CalibrateError::NoFile(shown.clone()))?;
    let Some(index) = cfg.rules.iter().position(|r| r.name == probe) else {
        let known: Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
        return Err(CalibrateError::UnknownProbe {
            name: probe.to_string(),
            known: known.join(", "),
        });
    };
    if !matches!(
        cfg.rules[index].quantity,
        Quantity::Width { .. } | Quantity::Distance { .. }
    ) {
        return Err(CalibrateError::NotLength(probe.to_string()));
    }
    let rgb = image::open(image)
        .map_err(|e| CalibrateError::Image {
            path: image.display().to_string(),
            reason: e.to_string(),
        })?
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
    let mut worker = Worker::new(&plan, 1)?;
    let mut ins = worker.new_inspection();
    worker.process(rgb.as_raw(), &layout, &mut ins)?;
    let px = ins
        .measurements
        .iter()
        .find(|m| usize::from(m.rule) == index)
        .map(|m| m.px)
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| CalibrateError::NotFound {
            name: probe.to_string(),
            image: image.display().to_string(),
        })?;
    let cal = Calibration {
        mm_per_px: known_mm / px,
        probe: probe.to_string(),
        known_mm,
        measured_px: px,
        image: image.display().to_string(),
        scenario: shown,
        recorded: crate::sink::rfc3339(std::time::SystemTime::now()),
    };
    cal.save(&target)?;
    Ok((cal, target))
}
