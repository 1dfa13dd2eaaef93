//! `lineside eval SCENARIO [--data DIR]`: how good is a scenario on labelled images, run
//! through the scenario's own worker (the same preprocessing, session, head and rules as
//! `lineside run`), so the figures describe what runs on the line.
//!
//! - Anomaly heads: a data set in the MVTec AD layout ([`anomaly`]): image and pixel
//!   AUROC, AUPRO, the OK/NG confusion per defect type.
//! - Every other head: a folder of images with a `truth.json` or YOLO labels
//!   ([`labelled`]): detection AP per class as pycocotools computes it, OCR character
//!   accuracy, and the OK/NG confusion against expected verdicts.

pub mod anomaly;
pub mod detection;
pub mod labelled;
pub mod metrics;
pub mod text;
pub mod truth;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::dataset::DatasetError;
use crate::engine::EngineError;
use crate::heads::AnomalyConfig;
use crate::pipeline::WorkerError;
use crate::scenario::ScenarioPlan;

pub use anomaly::{AnomalyReport, FPR_LIMIT};
pub use labelled::LabelledReport;
pub use truth::TruthError;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(
        "{0} has no test/good and test/<defect> folders of images.\n\
         Fix: point --data at a data set in the MVTec AD layout (e.g. data/anomaly/brick; \
         make them with tools/datasets/make_anomaly_sets.py)"
    )]
    Layout(PathBuf),
    #[error(
        "scenario {0}: no --data given and its source is not a folder of images\n\
         Fix: pass --data DIR (images with a truth.json or YOLO labels)"
    )]
    NoData(String),
    #[error(transparent)]
    Data(#[from] DatasetError),
    #[error(transparent)]
    Truth(#[from] TruthError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{path}: {source}")]
    Worker { path: PathBuf, source: WorkerError },
    #[error("{path}: the anomaly head produced no map; pixel metrics need `anomaly_map`")]
    NoMap { path: PathBuf },
}

/// What `eval` found: the shape depends on the head.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EvalReport {
    Anomaly(AnomalyReport),
    Labelled(LabelledReport),
}

impl EvalReport {
    /// A table for people.
    pub fn table(&self) -> String {
        match self {
            EvalReport::Anomaly(r) => r.table(),
            EvalReport::Labelled(r) => r.table(),
        }
    }
}

/// Evaluates `plan` on `data` (default for non-anomaly heads: the scenario's own image
/// folder, where the demos keep their truth).
pub fn evaluate(
    plan: &ScenarioPlan,
    data: Option<&Path>,
    threads: usize,
    progress: bool,
) -> Result<EvalReport, EvalError> {
    if let Some(cfg) = plan.head_config::<AnomalyConfig>() {
        let data = data.ok_or_else(|| EvalError::Layout(PathBuf::from("(no --data)")))?;
        return anomaly::evaluate(plan, cfg, data, threads, progress).map(EvalReport::Anomaly);
    }
    let folder = match data {
        Some(d) => d.to_path_buf(),
        None => plan
            .source
            .path
            .clone()
            .filter(|p| p.is_dir())
            .ok_or_else(|| EvalError::NoData(plan.id.clone()))?,
    };
    labelled::evaluate(plan, &folder, threads, progress).map(EvalReport::Labelled)
}
