//! `[head] kind = "detect"`: output layout and class count from the model, thresholds,
//! class names, count rules. A classifier, an OCR detector or a class list of the wrong
//! length is caught here, before a frame is grabbed.

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::{DetectConfig, DetectHead, DetectLayout};
use crate::config::ScenarioFile;
use crate::engine::{shape_str, EngineError, ModelInfo, TensorInfo};
use crate::heads::box_measure::{describe_box_head_failure, plan_box_measures, BoxMeasureSection};
use crate::heads::count_rules::{plan_count_rules, CountRuleSection, CountRulesKeys};
use crate::heads::plan_support::{check_mm_per_px, head_output, names_source, probability};
use crate::heads::tiling::plan_tiling;
use crate::heads::{
    plan_boilerplate, FailureText, Head, HeadKind, HeadPlan, MeasurementText, PlanInput,
};
use crate::preprocess::{Fit, Interpolation, PreprocessSpec};
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "detect",
    head_keys: || serde_introspect::<HeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[
        (
            "rules.ok_classes",
            "[[rules.count]], required_classes, forbidden_classes",
        ),
        ("rules.ng_classes", "forbidden_classes"),
        ("rules.min_score", "[[rules.count]] min_score"),
        ("rules.score_threshold", "[[rules.count]]"),
    ],
    preprocess_defaults: |f, _, spec| detect_preprocess_defaults(f, spec),
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// How the output tensor is laid out (`[head] layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DetectLayoutSetting {
    /// From the shape: the smaller of the last two dimensions is 4+nc (YOLOv8) or 5+nc (YOLOv5).
    #[default]
    Auto,
    Yolov8,
    Yolov5,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadKeys {
    /// Output to read (default: the first).
    output: Option<String>,
    /// Boxes whose best class score is not above this are dropped (default 0.25).
    conf_threshold: Option<f32>,
    /// NMS drops a box overlapping a better one of its class by more than this IoU
    /// (default 0.7, as Ultralytics' predict).
    iou_threshold: Option<f32>,
    /// Boxes kept after NMS at most (default 300).
    max_detections: Option<usize>,
    /// Output layout (default "auto").
    layout: Option<DetectLayoutSetting>,
    /// Inspect the frame as overlapping tiles of `[width, height]` frame pixels.
    tile: Option<[u32; 2]>,
    tile_overlap: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    count: Option<Vec<CountRuleSection>>,
    required_classes: Option<Vec<String>>,
    forbidden_classes: Option<Vec<String>>,
    measure: Option<Vec<BoxMeasureSection>>,
    mm_per_px: Option<f32>,
}

/// Ultralytics' LetterBox (scale to fit, centred, pad 114, bilinear), where the scenario
/// does not say otherwise; RGB /255 and pad 114 are lineside's defaults already.
pub(crate) fn detect_preprocess_defaults(f: &ScenarioFile, spec: &mut PreprocessSpec) {
    let p = &f.preprocess;
    if p.fit.is_none() {
        spec.fit = Fit::Letterbox;
    }
    if p.interpolation.is_none() {
        spec.interpolation = Interpolation::Linear;
    }
}

/// The outputs of an Ultralytics segmentation export: boxes `[1, 4+nc+nm, N]` and
/// prototypes `[1, nm, mh, mw]`.
pub fn yolo_seg_outputs(model: &ModelInfo) -> Option<(&TensorInfo, &TensorInfo)> {
    let protos = model
        .outputs
        .iter()
        .find(|o| o.shape.len() == 4 && o.shape[0] == 1 && o.shape[1] > 0)?;
    let nm = protos.shape[1];
    let boxes = model
        .outputs
        .iter()
        .find(|o| o.shape.len() == 3 && o.shape[0] == 1 && o.shape[1] > 4 + nm && o.shape[2] > 0)?;
    Some((boxes, protos))
}

fn plan(input: &mut PlanInput<'_>) -> Option<DetectConfig> {
    let (h, r) = (input.head::<HeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    let start = input.errs.len();
    let tile = input
        .preprocess
        .and_then(|p| plan_tiling(input, h.tile, h.tile_overlap, p, false));
    let model = input.model;
    if let Some((_, protos)) = yolo_seg_outputs(model) {
        input.error(
            "model.path",
            format!(
                "this model also outputs mask prototypes (`{}` {}): it is a segmentation export; use head kind \"segment\"",
                protos.name,
                shape_str(&protos.shape)
            ),
        );
        return None;
    }
    let out = head_output(input, model, h.output.as_deref())?;
    let looks_like = if out.shape.len() == 4 && out.shape[1] == 1 {
        " — it looks like a text detector (PP-OCR DB): use head kind \"ocr\""
    } else if out.shape.len() == 2 {
        " — it looks like a classifier: use head kind \"classify\""
    } else {
        ""
    };
    let labels = input.labels;
    let known_nc = (!labels.is_empty()).then_some(labels.len());
    let shape_ok = out.is_float32() && out.shape.len() == 3 && out.shape[0] == 1;
    let inferred = shape_ok
        .then(|| DetectLayout::infer(&out.shape, None))
        .flatten();
    let wanted = h.layout.unwrap_or_default();
    let (layout, classes) = match (inferred, wanted) {
        (None, _) => {
            input.error(
                "model.path",
                format!(
                    "the detect head needs a YOLO output, float32 [1, 4 + classes, anchors] (YOLOv8/YOLO11) or [1, anchors, 5 + classes] (YOLOv5/YOLOX) with fixed sizes; this model has {}{looks_like}",
                    model.outputs_str()
                ),
            );
            return None;
        }
        (Some((l, nc)), DetectLayoutSetting::Auto) => (l, nc),
        (Some(_), forced) => {
            let (l, extra) = match forced {
                DetectLayoutSetting::Yolov5 => (DetectLayout::Yolov5, 5),
                _ => (DetectLayout::Yolov8, 4),
            };
            let (a, b) = (out.shape[1], out.shape[2]);
            let ch = if l == DetectLayout::Yolov8 { a } else { b };
            if ch <= extra {
                input.error(
                    "head.layout",
                    format!(
                        "output `{}` {} does not fit layout \"{}\" (it needs {} + classes values per box in dimension {}); try layout = \"auto\"",
                        out.name,
                        shape_str(&out.shape),
                        if l == DetectLayout::Yolov8 { "yolov8" } else { "yolov5" },
                        extra,
                        if l == DetectLayout::Yolov8 { 1 } else { 2 }
                    ),
                );
                return None;
            }
            (l, (ch - extra) as usize)
        }
    };
    if let Some(nc) = known_nc {
        if nc != classes {
            let (key, whose) = names_source(input);
            input.error(key, format!(
                "{whose} {nc} class names but output `{}` {} scores {classes} classes ({} layout); the list must have one name per class, in model order",
                out.name,
                shape_str(&out.shape),
                if layout == DetectLayout::Yolov8 { "YOLOv8: 4 + classes" } else { "YOLOv5: 5 + classes" }
            ));
            return None;
        }
    }
    let anchors = if layout == DetectLayout::Yolov8 {
        out.shape[2]
    } else {
        out.shape[1]
    } as usize;
    let NmsSettings {
        conf_threshold,
        iou_threshold,
        max_detections,
    } = nms_settings(input, h.conf_threshold, h.iou_threshold, h.max_detections);
    check_mm_per_px(input, r.mm_per_px);
    let count_rules = plan_count_rules(
        input,
        CountRulesKeys {
            count: &r.count,
            required_classes: &r.required_classes,
            forbidden_classes: &r.forbidden_classes,
        },
        classes,
    );
    let measures = plan_box_measures(
        input,
        r.measure.as_deref().unwrap_or_default(),
        classes,
        r.mm_per_px,
    );
    if input.errs.len() != start {
        return None;
    }
    Some(DetectConfig {
        output: out.name.clone(),
        layout,
        classes,
        mask_coeffs: 0,
        anchors,
        conf_threshold,
        iou_threshold,
        max_detections,
        max_nms: 30000,
        mm_per_px: r.mm_per_px,
        count_rules: count_rules.into(),
        measures: measures.into(),
        tile,
    })
}

/// Ultralytics' predict settings (`[head] conf_threshold`, `iou_threshold`,
/// `max_detections`), checked.
pub(crate) struct NmsSettings {
    pub conf_threshold: f32,
    pub iou_threshold: f32,
    pub max_detections: usize,
}

pub(crate) fn nms_settings(
    input: &mut PlanInput<'_>,
    conf: Option<f32>,
    iou: Option<f32>,
    max: Option<usize>,
) -> NmsSettings {
    let conf_threshold = probability(input, "head.conf_threshold", conf, 0.25);
    let iou_threshold = probability(input, "head.iou_threshold", iou, 0.7);
    let max_detections = max.unwrap_or(300);
    if max_detections == 0 {
        input.error(
            "head.max_detections",
            "must be at least 1 (Ultralytics uses 300)",
        );
    }
    NmsSettings {
        conf_threshold,
        iou_threshold,
        max_detections,
    }
}

impl HeadPlan for DetectConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(DetectHead::new(self.clone())))
    }

    fn describe(&self, failure: &Failure, labels: &[String]) -> FailureText {
        describe_box_head_failure(&self.count_rules, &self.measures, failure, labels)
    }

    fn measurement_text(&self, rule: u16) -> Option<MeasurementText> {
        self.measures.text(rule)
    }

    plan_boilerplate!();
}
