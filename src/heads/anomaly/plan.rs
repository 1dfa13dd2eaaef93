//! `[head] kind = "anomaly"`: an anomalib export run as-is, and the `[rules]` every
//! anomaly head shares (fitted PatchCore models too).

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::{AnomalyConfig, AnomalyHead, AnomalyScoring};
use crate::engine::EngineError;
use crate::heads::classify::no_defaults_pub as no_defaults;
use crate::heads::{
    describe_other, plan_boilerplate, FailureText, Head, HeadKind, HeadPlan, PlanInput,
};
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "anomaly",
    head_keys: || &[],
    rules_keys: || serde_introspect::<AnomalyRulesKeys>(),
    instead: &[],
    preprocess_defaults: no_defaults,
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// The `[rules]` of an anomaly head (anomalib export or fitted PatchCore).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnomalyRulesKeys {
    /// NG when the (normalised) image score is at or above this. Default: the threshold
    /// baked into the model (`pred_label`).
    pub score_threshold: Option<f32>,
    /// Pixel threshold for defect regions (default: the score threshold).
    pub pixel_threshold: Option<f32>,
    /// Regions smaller than this many frame pixels are ignored, and an image score at
    /// the threshold rejects only with a region of at least this size.
    pub min_defect_area_px: Option<u32>,
    /// The same in mm² (needs `mm_per_px`); with both, the larger applies.
    pub min_defect_area_mm2: Option<f32>,
    /// Size of one frame pixel in millimetres; defects then also get an area in mm².
    pub mm_per_px: Option<f32>,
    /// With a minimum area set: still reject on the image score alone when no region
    /// reaches it (default false; the strongest region is then named).
    pub reject_without_region: Option<bool>,
}

fn plan(input: &mut PlanInput<'_>) -> Option<AnomalyConfig> {
    input.head::<Empty>()?;
    let rules = input.rules::<AnomalyRulesKeys>()?;
    let model = input.model;
    let Some(score) = model.output("pred_score").filter(|o| o.is_float32()) else {
        input.error("head.kind", format!(
            "an anomaly head reads anomalib outputs (`pred_score`, and `anomaly_map` for regions); this model's outputs are {}",
            model.output_names()
        ));
        return None;
    };
    let map = model
        .output("anomaly_map")
        .filter(|o| o.is_float32() && o.shape.len() >= 2);
    let scoring = AnomalyScoring::Export {
        score_output: score.name.clone(),
        label_output: model.output("pred_label").map(|o| o.name.clone()),
        map_output: map.map(|o| o.name.clone()),
    };
    plan_anomaly_rules(input, &rules, scoring)
}

/// An anomaly head's `[head]` has no keys besides `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// The `[rules]` of an anomaly head, the same for exports and fitted models.
pub(crate) fn plan_anomaly_rules(
    input: &mut PlanInput<'_>,
    r: &AnomalyRulesKeys,
    scoring: AnomalyScoring,
) -> Option<AnomalyConfig> {
    for (key, v) in [
        ("rules.score_threshold", r.score_threshold),
        ("rules.pixel_threshold", r.pixel_threshold),
    ] {
        if v.is_some_and(|t| !t.is_finite()) {
            input.error(key, "must be a number");
        }
    }
    if r.mm_per_px.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        input.error(
            "rules.mm_per_px",
            "must be a positive number: the width of one frame pixel in millimetres",
        );
    }
    let mut min_area_px = r.min_defect_area_px.unwrap_or(0) as f32;
    if let Some(mm2) = r.min_defect_area_mm2 {
        match r.mm_per_px {
            _ if !(mm2.is_finite() && mm2 >= 0.0) => input.error(
                "rules.min_defect_area_mm2",
                "must be a number of square millimetres (0 or more)",
            ),
            Some(s) if s.is_finite() && s > 0.0 => min_area_px = min_area_px.max(mm2 / (s * s)),
            _ => input.error(
                "rules.min_defect_area_mm2",
                "needs `mm_per_px` (the width of one frame pixel in millimetres) to convert it to pixels",
            ),
        }
    }
    Some(AnomalyConfig {
        scoring,
        score_threshold: r.score_threshold,
        pixel_threshold: r.pixel_threshold.or(r.score_threshold).unwrap_or(0.5),
        min_area_px,
        region_decides: min_area_px > 0.0 && !r.reject_without_region.unwrap_or(false),
        mm_per_px: r.mm_per_px,
        max_defects: 32,
        tile: None,
    })
}

impl HeadPlan for AnomalyConfig {
    fn kind(&self) -> &'static str {
        match self.scoring {
            AnomalyScoring::Export { .. } => KIND.name,
            AnomalyScoring::Fitted(_) => crate::heads::patchcore::KIND.name,
        }
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(AnomalyHead::new(self.clone())))
    }

    fn preallocated_outputs(&self) -> Vec<(String, Vec<usize>)> {
        let AnomalyScoring::Fitted(a) = &self.scoring else {
            return Vec::new();
        };
        // The backbone's feature maps follow the input size, which is fixed here.
        let h = &a.header;
        let (w, hh) = (h.preprocess.width, h.preprocess.height);
        let [c8, c16] = h.features.channels;
        vec![
            (h.backbone.outputs[0].clone(), vec![1, c8, hh / 8, w / 8]),
            (h.backbone.outputs[1].clone(), vec![1, c16, hh / 16, w / 16]),
        ]
    }

    fn logged_model(&self) -> Option<(String, String)> {
        match &self.scoring {
            AnomalyScoring::Fitted(a) => Some((a.id(), a.sha256.clone())),
            AnomalyScoring::Export { .. } => None,
        }
    }

    fn outline(&self, _labels: &[String]) -> String {
        // Anomaly models have no classes: name the decision instead.
        let by_label = matches!(
            &self.scoring,
            AnomalyScoring::Export {
                label_output: Some(_),
                ..
            }
        ) && self.score_threshold.is_none();
        let threshold = if by_label {
            "decided by the model's own label".to_string()
        } else {
            format!("score threshold {}", self.score_threshold.unwrap_or(0.5))
        };
        match &self.scoring {
            AnomalyScoring::Fitted(a) => format!("fitted PatchCore model {}, {threshold}", a.id()),
            AnomalyScoring::Export { .. } => format!("anomaly export, {threshold}"),
        }
    }

    fn describe(&self, failure: &Failure, _labels: &[String]) -> FailureText {
        match *failure {
            Failure::AnomalyScore { score, threshold } => FailureText::keyed(
                "score_threshold",
                format!("anomaly score {score:.4} reached the threshold {threshold}"),
                // The severity of anomaly parts is their uncapped score, not this.
                0.0,
            ),
            other => describe_other(&other),
        }
    }

    plan_boilerplate!();
}
