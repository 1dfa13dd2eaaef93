//! Heads turn raw model outputs into an [`Inspection`]: classes, scores, defect regions,
//! and the verdict under the scenario's rules.
//!
//! Each head kind is one folder: `plan.rs` reads and checks its `[head]`/`[rules]` keys
//! into a [`HeadPlan`]; the rest is its runtime, a [`Head`]. [`KINDS`] is the registry:
//! a new head kind is a new folder plus one line there. The pipeline worker drives every
//! head through these two traits and names no kind.

pub mod anomaly;
pub mod box_measure;
pub mod classify;
pub mod count_rules;
pub mod detect;
pub mod examples;
pub mod golden;
pub mod measure;
pub mod ocr;
pub mod patchcore;
mod plan_support;
mod regions;
pub mod segment;
pub mod text_rules;
pub mod tiling;

use std::any::Any;

use ort::session::SessionOutputs;
use serde::de::DeserializeOwned;

use crate::config::{Diagnostic, KeyOwner, ScenarioFile};
use crate::engine::{EngineError, ModelInfo};
use crate::frame::FrameLayout;
use crate::preprocess::{PreprocessSpec, Transform};
use crate::verdict::{Failure, Inspection};

pub use anomaly::{map_frame_box, AnomalyConfig, AnomalyHead, AnomalyScoring, Evidence, NO_CLASS};
pub use classify::{ClassifyConfig, ClassifyHead};
pub use detect::{DetectConfig, DetectHead, DetectLayout};
pub use measure::{MeasureConfig, MeasureHead};
pub use ocr::{OcrConfig, OcrHead};
pub use patchcore::PatchCoreScorer;
pub use segment::{SegmentConfig, SegmentHead};
pub use tiling::{TileCut, TileLayout, TileSet, TileView, Tiling};

/// The head kinds lineside knows: one line per kind.
pub const KINDS: &[HeadKind] = &[
    classify::KIND,
    anomaly::KIND,
    patchcore::KIND,
    ocr::KIND,
    detect::KIND,
    segment::KIND,
    golden::KIND,
    examples::KIND,
    measure::KIND,
];

/// The kind named `name` in `[head] kind`.
pub fn kind(name: &str) -> Option<&'static HeadKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Every kind's `[head]` and `[rules]` keys, for the one key check in `config`.
pub fn key_owners() -> (Vec<KeyOwner>, Vec<KeyOwner>) {
    KINDS
        .iter()
        .map(|k| {
            (
                KeyOwner {
                    kind: k.name,
                    keys: (k.head_keys)(),
                },
                KeyOwner {
                    kind: k.name,
                    keys: (k.rules_keys)(),
                },
            )
        })
        .unzip()
}

/// What the registry knows of one head kind.
pub struct HeadKind {
    /// The value of `[head] kind`.
    pub name: &'static str,
    /// `[head]` keys this kind reads (besides `kind`).
    pub head_keys: fn() -> &'static [&'static str],
    /// `[rules]` keys this kind reads.
    pub rules_keys: fn() -> &'static [&'static str],
    /// For keys of other kinds: what this kind uses instead (`("rules.ok_classes",
    /// "[[rules.count]]")`), appended to the message.
    pub instead: &'static [(&'static str, &'static str)],
    /// Sets this kind's preprocessing conventions where the file leaves them out.
    pub preprocess_defaults: fn(&ScenarioFile, &ModelInfo, &mut PreprocessSpec),
    /// Reads and checks `[head]`/`[rules]` against the model.
    pub plan: fn(&mut PlanInput<'_>) -> Option<Box<dyn HeadPlan>>,
}

/// What a head kind plans from: the file, the model, and where findings go.
pub struct PlanInput<'a> {
    pub file: &'a ScenarioFile,
    pub model: &'a ModelInfo,
    pub labels: &'a [String],
    /// `None` when `[preprocess]` itself has errors (they are reported already).
    pub preprocess: Option<&'a PreprocessSpec>,
    pub errs: &'a mut Vec<Diagnostic>,
    /// Keys of other kinds, reported already; the section parsers skip them.
    pub foreign_head: Vec<String>,
    pub foreign_rules: Vec<String>,
    /// `lineside calibrate` plans a scenario before its calibration file exists: heads
    /// then go without the pixel size instead of reporting the file missing.
    pub uncalibrated: bool,
}

impl PlanInput<'_> {
    /// This kind's `[head]` keys (`kind` and foreign keys left out).
    pub fn head<T: DeserializeOwned>(&mut self) -> Option<T> {
        let mut skip: Vec<String> = self.foreign_head.clone();
        skip.push("kind".into());
        self.parse("head", &skip)
    }

    /// This kind's `[rules]` keys.
    pub fn rules<T: DeserializeOwned>(&mut self) -> Option<T> {
        let skip = self.foreign_rules.clone();
        self.parse("rules", &skip)
    }

    fn parse<T: DeserializeOwned>(&mut self, section: &str, skip: &[String]) -> Option<T> {
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        match self.file.section::<T>(section, &skip) {
            Ok(v) => Some(v),
            Err(d) => {
                self.errs.push(d);
                None
            }
        }
    }

    /// Records a finding at `key`.
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        self.errs.push(self.file.diag(key, message));
    }
}

/// A checked head configuration, ready to build a runtime [`Head`] per worker.
pub trait HeadPlan: Send + Sync + std::fmt::Debug + Any {
    /// The `[head] kind` it was planned from.
    fn kind(&self) -> &'static str;
    /// A runtime head for one worker.
    fn build(&self, intra_threads: usize) -> Result<Box<dyn Head>, EngineError>;
    /// Outputs whose shape is fixed by the plan, so the session preallocates them and
    /// ONNX Runtime writes them in place every frame.
    fn preallocated_outputs(&self) -> Vec<(String, Vec<usize>)> {
        Vec::new()
    }
    /// The model named in defect logs (id, sha256) when it is not the ONNX file.
    fn logged_model(&self) -> Option<(String, String)> {
        None
    }
    /// Class names the head brings itself (a fitted model's), used instead of the
    /// model's labels in plans, rules and defect logs.
    fn class_names(&self) -> Option<Vec<String>> {
        None
    }
    /// What `validate` says the head decides with, e.g. "1000 classes".
    fn outline(&self, labels: &[String]) -> String {
        format!("{} classes", labels.len())
    }
    /// Measurement `rule` (an index in [`crate::verdict::Measurement`]) in words, for the
    /// defect log: heads that measure give it.
    fn measurement_text(&self, _rule: u16) -> Option<MeasurementText> {
        None
    }
    /// A failed rule as the defect log shows it.
    fn describe(&self, failure: &Failure, labels: &[String]) -> FailureText;
    fn clone_box(&self) -> Box<dyn HeadPlan>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl Clone for Box<dyn HeadPlan> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Implements the bookkeeping methods of [`HeadPlan`] for a `Clone` config type.
macro_rules! plan_boilerplate {
    () => {
        fn clone_box(&self) -> Box<dyn $crate::heads::HeadPlan> {
            Box::new(self.clone())
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
            self
        }
    };
}
pub(crate) use plan_boilerplate;

/// A measurement rule as the defect log names it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementText {
    pub name: String,
    /// "px", "mm", "deg", or for areas "px2", "mm2".
    pub unit: &'static str,
    pub nominal: Option<f32>,
    pub tolerance: Option<f32>,
    pub min: Option<f32>,
    pub max: Option<f32>,
}

/// A failed rule in words, as the defect log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureText {
    /// The kind of rule: the scenario key (`score_threshold`, `min_score`, `count`, `text`).
    pub rule_kind: &'static str,
    /// Which rule: a named rule's name (`[[rules.count]] name`), else the key again.
    pub rule_name: String,
    /// What the rule requires and what was found.
    pub detail: String,
    /// How far outside the rule the part is, relative to the rule's limit (0 when the
    /// rule has no measure, e.g. a text not read): the part's severity adds these up.
    pub excess: f32,
}

impl FailureText {
    /// A rule named by its key alone.
    pub fn keyed(key: &'static str, detail: String, excess: f32) -> Self {
        FailureText {
            rule_kind: key,
            rule_name: key.to_string(),
            detail,
            excess,
        }
    }
}

/// `found` past `limit`, relative to the limit (a limit of 0 counts as 1).
pub fn relative_excess(found: f32, limit: f32) -> f32 {
    let scale = if limit == 0.0 { 1.0 } else { limit.abs() };
    let excess = (found - limit).abs() / scale;
    if excess.is_finite() {
        excess
    } else {
        0.0
    }
}

/// A failure a head does not raise itself (never expected; kept readable in the log).
pub(crate) fn describe_other(failure: &Failure) -> FailureText {
    FailureText::keyed("rule", format!("{failure:?}"), 0.0)
}

/// Class `i`'s name, or `class_i` when the model has none.
pub fn label(labels: &[String], i: usize) -> String {
    labels
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("class_{i}"))
}

/// A head at run time: one per worker, reused frame after frame.
pub trait Head: Send {
    /// An [`Inspection`] with the capacity this head needs, so it never grows it.
    fn inspection(&self) -> Inspection;
    /// Reads one frame's outputs into `out` (cleared first by the caller).
    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError>;
    /// How this head inspects a frame in tiles, if it does (`[head] tile`).
    fn tiling(&self) -> Option<Tiling> {
        None
    }
    /// Starts a tiled frame.
    fn begin_tiles(&mut self, _layout: &TileLayout) {}
    /// Adds one tile's outputs.
    fn add_tile(
        &mut self,
        _outputs: &SessionOutputs<'_>,
        _tile: &TileView<'_>,
    ) -> Result<(), HeadError> {
        Ok(())
    }
    /// Decides a tiled frame once every tile is in.
    fn finish_tiles(&mut self, _layout: &TileLayout, _frame: FrameRef<'_>, _out: &mut Inspection) {}
    /// The anomaly score and map, or the segmentation class map, of the last frame
    /// (`lineside eval` and evidence images read them).
    fn evidence(&self) -> Option<Evidence<'_>> {
        None
    }
}

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

/// The frame a head may need besides the model outputs (OCR cuts text lines out of it).
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    pub bytes: &'a [u8],
    pub layout: &'a FrameLayout,
}

impl FrameRef<'_> {
    pub fn size(&self) -> (u32, u32) {
        (self.layout.width, self.layout.height)
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

#[cfg(test)]
mod tests {
    use super::relative_excess;

    #[test]
    fn excess_is_relative_to_the_limit() {
        assert!((relative_excess(0.05, 0.2) - 0.75).abs() < 1e-6);
        assert_eq!(relative_excess(3.0, 0.0), 3.0);
        assert_eq!(relative_excess(f32::NAN, 1.0), 0.0);
    }
}
