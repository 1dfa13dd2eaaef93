//! `[head] kind = "segment"`: which kind of segmentation model this is (a per-pixel class
//! map, or an Ultralytics export with mask prototypes), its classes, thresholds and the
//! count rules its regions are judged by.

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::{Activation, InstanceConfig, SegmentConfig, SegmentHead, SegmentMode, SemanticConfig};
use crate::engine::{shape_str, EngineError, TensorInfo};
use crate::heads::box_measure::{describe_box_head_failure, plan_box_measures, BoxMeasureSection};
use crate::heads::count_rules::{plan_count_rules, CountRule, CountRuleSection, CountRulesKeys};
use crate::heads::detect::{
    detect_preprocess_defaults, nms_settings, yolo_seg_outputs, NmsSettings,
};
use crate::heads::plan_support::{
    check_mm_per_px, class_of, head_output, names_source, probability,
};
use crate::heads::tiling::plan_tiling;
use crate::heads::{
    plan_boilerplate, DetectConfig, DetectLayout, FailureText, Head, HeadKind, HeadPlan,
    MeasurementText, PlanInput,
};
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "segment",
    head_keys: || serde_introspect::<HeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[
        ("head.softmax", "activation"),
        ("head.top_k", "[[rules.count]]"),
        ("head.artifact", "[[rules.count]]"),
        ("rules.ok_classes", "[[rules.count]]"),
        ("rules.ng_classes", "forbidden_classes"),
        ("rules.min_score", "[[rules.count]] min_score"),
        ("rules.score_threshold", "[[rules.count]]"),
        ("rules.pixel_threshold", "head.mask_threshold"),
    ],
    // Ultralytics segmentation exports are letterboxed like its detectors.
    preprocess_defaults: |f, model, spec| {
        if yolo_seg_outputs(model).is_some() {
            detect_preprocess_defaults(f, spec);
        }
    },
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// segment: what turns a class map's values into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActivationSetting {
    /// Softmax (several classes) or sigmoid (one) unless the values already are
    /// probabilities.
    #[default]
    Auto,
    Softmax,
    Sigmoid,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadKeys {
    /// Class maps: the output to read (default: the first).
    output: Option<String>,
    /// Class maps: the class that is not a defect, by name or index, or "none"
    /// (default: class 0 when the map has several classes).
    background: Option<String>,
    /// Class maps: how values become probabilities (default "auto").
    activation: Option<ActivationSetting>,
    /// Probability at which a pixel belongs to a mask (default 0.5).
    mask_threshold: Option<f32>,
    /// Ultralytics exports: NMS settings, as the detect head's.
    conf_threshold: Option<f32>,
    iou_threshold: Option<f32>,
    /// Regions listed per frame at most (default 300).
    max_detections: Option<usize>,
    /// Class maps: inspect the frame as overlapping tiles.
    tile: Option<[u32; 2]>,
    tile_overlap: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    count: Option<Vec<CountRuleSection>>,
    required_classes: Option<Vec<String>>,
    forbidden_classes: Option<Vec<String>>,
    min_defect_area_px: Option<u32>,
    measure: Option<Vec<BoxMeasureSection>>,
    mm_per_px: Option<f32>,
}

fn plan(input: &mut PlanInput<'_>) -> Option<SegmentConfig> {
    let (h, r) = (input.head::<HeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    let start = input.errs.len();
    check_mm_per_px(input, r.mm_per_px);
    let threshold = probability(input, "head.mask_threshold", h.mask_threshold, 0.5);
    let model = input.model;
    let (mode, classes) = match yolo_seg_outputs(model) {
        Some((boxes, protos)) => instances(input, &h, &r, boxes, protos, threshold)?,
        None => semantic(input, &h, threshold)?,
    };
    let max_regions = h.max_detections.unwrap_or(300);
    if max_regions == 0 {
        input.error("head.max_detections", "must be at least 1");
    }
    let min_area_px = r.min_defect_area_px.unwrap_or(0) as f32;
    let mut rules = plan_count_rules(
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
    // A class map without rules: any defect region is NG. Measuring a region says the
    // region belongs there, so measure rules alone add no such count.
    if let SegmentMode::Semantic(s) = &mode {
        if rules.is_empty() && measures.is_empty() {
            rules = default_rules(s, input.labels);
        }
    }
    let tile = match &mode {
        SegmentMode::Semantic(_) => input
            .preprocess
            .and_then(|p| plan_tiling(input, h.tile, h.tile_overlap, p, true)),
        SegmentMode::Instances(_) => {
            if h.tile.is_some() {
                input.error(
                    "head.tile",
                    "tiles apply to class maps; for an Ultralytics segmentation export use a roi, or its detector with head kind \"detect\"",
                );
            }
            None
        }
    };
    if input.errs.len() != start {
        return None;
    }
    Some(SegmentConfig {
        tile,
        mode,
        min_area_px,
        mm_per_px: r.mm_per_px,
        max_regions,
        count_rules: rules.into(),
        measures: measures.into(),
    })
}

/// Without rules, a class map's part is NG when it has a region of any defect class.
fn default_rules(s: &SemanticConfig, labels: &[String]) -> Vec<CountRule> {
    (0..s.classes)
        .filter(|&c| s.background != Some(c))
        .map(|c| {
            let name = labels.get(c).cloned().unwrap_or_else(|| c.to_string());
            CountRule {
                name: format!("no {name} region"),
                class: Some(c),
                min: None,
                max: Some(0),
                zone: None,
                min_score: 0.0,
                min_area_px: 0.0,
            }
        })
        .collect()
}

fn instances(
    input: &mut PlanInput<'_>,
    h: &HeadKeys,
    r: &RulesKeys,
    boxes: &TensorInfo,
    protos: &TensorInfo,
    threshold: f32,
) -> Option<(SegmentMode, usize)> {
    let labels = input.labels;
    for (key, set) in [
        ("head.background", h.background.is_some()),
        ("head.activation", h.activation.is_some()),
        ("head.output", h.output.is_some()),
    ] {
        if set {
            input.error(
                key,
                format!(
                    "applies to per-pixel class maps; this model is an Ultralytics segmentation export (boxes `{}` {}, mask prototypes `{}` {})",
                    boxes.name,
                    shape_str(&boxes.shape),
                    protos.name,
                    shape_str(&protos.shape)
                ),
            );
        }
    }
    if !(boxes.is_float32() && protos.is_float32()) {
        input.error("model.path", "the segmentation outputs must be float32");
        return None;
    }
    let nm = protos.shape[1] as usize;
    let classes = (boxes.shape[1] as usize).checked_sub(4 + nm)?;
    if !labels.is_empty() && labels.len() != classes {
        let (key, whose) = names_source(input);
        input.error(
            key,
            format!(
                "{whose} {} class names but output `{}` {} scores {classes} classes (4 + classes + {nm} mask coefficients); the list must have one name per class, in model order",
                labels.len(),
                boxes.name,
                shape_str(&boxes.shape)
            ),
        );
        return None;
    }
    let NmsSettings {
        conf_threshold,
        iou_threshold,
        max_detections,
    } = nms_settings(input, h.conf_threshold, h.iou_threshold, h.max_detections);
    let detect = DetectConfig {
        output: boxes.name.clone(),
        layout: DetectLayout::Yolov8,
        classes,
        mask_coeffs: nm,
        anchors: boxes.shape[2] as usize,
        conf_threshold,
        iou_threshold,
        max_detections,
        max_nms: 30000,
        mm_per_px: r.mm_per_px,
        count_rules: Vec::new().into(),
        measures: Default::default(),
        tile: None,
    };
    let mode = SegmentMode::Instances(InstanceConfig {
        detect,
        protos: protos.name.clone(),
        threshold,
    });
    Some((mode, classes))
}

fn semantic(
    input: &mut PlanInput<'_>,
    h: &HeadKeys,
    threshold: f32,
) -> Option<(SegmentMode, usize)> {
    let (model, labels) = (input.model, input.labels);
    for (key, set) in [
        ("head.conf_threshold", h.conf_threshold.is_some()),
        ("head.iou_threshold", h.iou_threshold.is_some()),
    ] {
        if set {
            input.error(
                key,
                "applies to Ultralytics segmentation exports (boxes + mask prototypes); this model gives a per-pixel class map",
            );
        }
    }
    let out = head_output(input, model, h.output.as_deref())?;
    let shape_ok =
        out.is_float32() && out.shape.len() == 4 && out.shape[0] == 1 && out.shape[1] > 0;
    if !shape_ok {
        let outputs = model.outputs_str();
        let hint = match out.shape.len() {
            3 => " — it looks like a detector: use head kind \"detect\"",
            2 => " — it looks like a classifier: use head kind \"classify\"",
            _ => "",
        };
        input.error(
            "model.path",
            format!(
                "the segment head needs a per-pixel class map, float32 [1, classes, height, width], or an Ultralytics segmentation export (boxes [1, 4 + classes + masks, anchors] and prototypes [1, masks, h, w]); this model has {outputs}{hint}"
            ),
        );
        return None;
    }
    let classes = out.shape[1] as usize;
    if !labels.is_empty() && labels.len() != classes {
        let (key, whose) = names_source(input);
        input.error(
            key,
            format!(
                "{whose} {} class names but output `{}` {} has {classes} class channels; the list must have one name per channel, in model order",
                labels.len(),
                out.name,
                shape_str(&out.shape)
            ),
        );
        return None;
    }
    let background = match h.background.as_deref() {
        None if classes > 1 => Some(0),
        None | Some("none") => None,
        // an unknown name is reported; checking goes on to find every other problem
        Some(name) => class_of(input, "head.background", name, classes),
    };
    if background.is_some() && classes == 1 {
        input.error(
            "head.background",
            "a one-channel map has a single class, the defect; leave `background` out",
        );
    }
    let activation = match h.activation.unwrap_or_default() {
        ActivationSetting::Auto => Activation::Auto,
        ActivationSetting::Softmax if classes == 1 => {
            input.error(
                "head.activation",
                "softmax needs several class channels; this map has one (use \"sigmoid\" or \"none\")",
            );
            Activation::Auto
        }
        ActivationSetting::Softmax => Activation::Softmax,
        ActivationSetting::Sigmoid => Activation::Sigmoid,
        ActivationSetting::None => Activation::None,
    };
    if h.mask_threshold.is_some() && classes > 1 {
        input.error(
            "head.mask_threshold",
            "applies to one-channel maps and Ultralytics exports; a class map takes each pixel's most likely class",
        );
    }
    let mode = SegmentMode::Semantic(SemanticConfig {
        output: out.name.clone(),
        classes,
        background,
        activation,
        threshold,
    });
    Some((mode, classes))
}

impl HeadPlan for SegmentConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(SegmentHead::new(self.clone())))
    }

    fn describe(&self, failure: &Failure, labels: &[String]) -> FailureText {
        describe_box_head_failure(&self.count_rules, &self.measures, failure, labels)
    }

    fn measurement_text(&self, rule: u16) -> Option<MeasurementText> {
        self.measures.text(rule)
    }

    plan_boilerplate!();
}
