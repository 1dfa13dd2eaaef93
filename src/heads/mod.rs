//! Heads turn raw model outputs into an [`Inspection`]: classes, scores, defect regions,
//! and the verdict under the scenario's rules.

pub mod anomaly;
pub mod classify;
pub mod count_rules;
pub mod detect;
pub mod ocr;
pub mod patchcore;
mod regions;
pub mod segment;
pub mod text_rules;

use ort::session::SessionOutputs;

use crate::frame::FrameLayout;
use crate::preprocess::Transform;
use crate::verdict::Inspection;

pub use anomaly::{AnomalyConfig, AnomalyHead, AnomalyScoring, Evidence};
pub use classify::{ClassifyConfig, ClassifyHead};
pub use detect::{DetectConfig, DetectHead, DetectLayout, TileCut};
pub use ocr::{OcrConfig, OcrHead};
pub use patchcore::PatchCoreScorer;
pub use segment::{SegmentConfig, SegmentHead};

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("model output `{name}` is missing; the model has {available}")]
    MissingOutput { name: String, available: String },
    #[error("model output `{name}` has shape {shape:?}; {expected}")]
    Shape {
        name: String,
        shape: Vec<i64>,
        expected: &'static str,
    },
    #[error("model output `{name}`: {reason}")]
    Extract { name: String, reason: String },
}

/// Geometry a head needs to put regions back on the frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameGeometry {
    pub transform: Transform,
    /// Model input width and height.
    pub input: (usize, usize),
}

pub enum Head {
    Classify(ClassifyHead),
    Anomaly(Box<AnomalyHead>),
    Ocr(Box<OcrHead>),
    Detect(Box<DetectHead>),
    Segment(Box<SegmentHead>),
}

/// The frame a head may need besides the model outputs (OCR cuts text lines out of it).
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    pub bytes: &'a [u8],
    pub layout: &'a FrameLayout,
}

impl Head {
    pub fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        out.clear();
        match self {
            Head::Classify(h) => h.interpret(outputs, out),
            Head::Anomaly(h) => h.interpret(outputs, geometry, out),
            Head::Ocr(h) => h.interpret(outputs, geometry, (frame.bytes, frame.layout), out),
            Head::Detect(h) => h.interpret(
                outputs,
                geometry,
                (frame.layout.width, frame.layout.height),
                out,
            ),
            Head::Segment(h) => h.interpret(
                outputs,
                geometry,
                (frame.layout.width, frame.layout.height),
                out,
            ),
        }
    }

    /// The anomaly head's view of the last frame (`None` for other heads).
    pub fn anomaly_evidence(&self) -> Option<Evidence<'_>> {
        match self {
            Head::Anomaly(h) => Some(h.evidence()),
            Head::Classify(_) | Head::Ocr(_) | Head::Detect(_) | Head::Segment(_) => None,
        }
    }

    /// Capacity an [`Inspection`] needs so that this head never grows it.
    pub fn inspection(&self) -> Inspection {
        match self {
            Head::Classify(h) => Inspection::with_capacity(h.top_k(), 0),
            Head::Anomaly(h) => Inspection::with_capacity(0, h.max_defects()),
            Head::Ocr(_) => Inspection::with_capacity(0, 0),
            Head::Detect(h) => {
                let mut i = Inspection::with_capacity(0, h.max_detections());
                i.failures.reserve(h.failures_capacity());
                i
            }
            Head::Segment(h) => {
                let mut i = Inspection::with_capacity(0, h.max_regions());
                i.failures.reserve(h.failures_capacity());
                i
            }
        }
    }
}

/// Reads a float32 output without copying.
pub(crate) fn f32_output<'a>(
    outputs: &'a SessionOutputs<'_>,
    name: &str,
) -> Result<(&'a [i64], &'a [f32]), HeadError> {
    let value = outputs.get(name).ok_or_else(|| HeadError::MissingOutput {
        name: name.to_string(),
        available: outputs.keys().collect::<Vec<_>>().join(", "),
    })?;
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| HeadError::Extract {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
    Ok((shape, data))
}
