//! Plan for the segment head: which kind of segmentation model this is (a per-pixel class
//! map, or an Ultralytics export with mask prototypes), its classes, thresholds and the
//! count rules its regions are judged by.

use super::detect_plan::{self, count_rules, nms_settings, probability, NmsSettings};
use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;
use super::heads_plan::{self, shape_str};
use super::schema::{ActivationSetting, HeadKind};
use crate::engine::{ModelInfo, TensorInfo};
use crate::heads::count_rules::CountRule;
use crate::heads::segment::{
    Activation, InstanceConfig, SegmentConfig, SegmentMode, SemanticConfig,
};
use crate::heads::{DetectConfig, DetectLayout};
use crate::preprocess::PreprocessSpec;

/// `[head]` keys that belong to the segment head only.
pub(crate) fn check_segment_keys(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) {
    if f.head.kind == HeadKind::Segment {
        return;
    }
    let h = &f.head;
    for (key, set) in [
        ("head.background", h.background.is_some()),
        ("head.activation", h.activation.is_some()),
        ("head.mask_threshold", h.mask_threshold.is_some()),
    ] {
        if set {
            errs.push(f.diag(key, "applies to head kind \"segment\" only"));
        }
    }
}

/// The outputs of an Ultralytics segmentation export: boxes `[1, 4+nc+nm, N]` and
/// prototypes `[1, nm, mh, mw]`.
pub(crate) fn yolo_seg_outputs(model: &ModelInfo) -> Option<(&TensorInfo, &TensorInfo)> {
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

/// Ultralytics segmentation exports are letterboxed like its detectors.
pub(crate) fn segment_preprocess_defaults(
    f: &ScenarioFile,
    model: &ModelInfo,
    spec: &mut PreprocessSpec,
) {
    if yolo_seg_outputs(model).is_some() {
        detect_plan::detect_preprocess_defaults(f, spec);
    }
}

pub(crate) fn segment_plan(
    f: &ScenarioFile,
    model: &ModelInfo,
    labels: &[String],
    spec: Option<&PreprocessSpec>,
    errs: &mut Vec<Diagnostic>,
) -> Option<SegmentConfig> {
    let start = errs.len();
    let (h, r) = (&f.head, &f.rules);
    for (key, set, use_instead) in [
        ("head.softmax", h.softmax.is_some(), "activation"),
        ("head.top_k", h.top_k.is_some(), "[[rules.count]]"),
        ("head.artifact", h.artifact.is_some(), "[[rules.count]]"),
        (
            "rules.ok_classes",
            r.ok_classes.is_some(),
            "[[rules.count]]",
        ),
        (
            "rules.ng_classes",
            r.ng_classes.is_some(),
            "forbidden_classes",
        ),
        (
            "rules.min_score",
            r.min_score.is_some(),
            "[[rules.count]] min_score",
        ),
        (
            "rules.score_threshold",
            r.score_threshold.is_some(),
            "[[rules.count]]",
        ),
        (
            "rules.pixel_threshold",
            r.pixel_threshold.is_some(),
            "head.mask_threshold",
        ),
    ] {
        if set {
            errs.push(f.diag(
                key,
                format!("does not apply to head kind \"segment\" (use {use_instead})"),
            ));
        }
    }
    detect_plan::check_mm_per_px(f, errs);
    let threshold = probability(f, errs, "head.mask_threshold", h.mask_threshold, 0.5);
    let (mode, classes) = match yolo_seg_outputs(model) {
        Some((boxes, protos)) => instances(f, boxes, protos, labels, threshold, errs)?,
        None => semantic(f, model, labels, threshold, errs)?,
    };
    let max_regions = h.max_detections.unwrap_or(300);
    if max_regions == 0 {
        errs.push(f.diag("head.max_detections", "must be at least 1"));
    }
    let min_area_px = r.min_defect_area_px.unwrap_or(0) as f32;
    let mut rules = count_rules(f, labels, classes, errs);
    if let SegmentMode::Semantic(s) = &mode {
        if rules.is_empty() {
            rules = default_rules(s, labels);
        }
    }
    let tile = match &mode {
        SegmentMode::Semantic(_) => spec.and_then(|p| super::patchcore::tiling(f, p, true, errs)),
        SegmentMode::Instances(_) => {
            if h.tile.is_some() {
                errs.push(f.diag(
                    "head.tile",
                    "tiles apply to class maps; for an Ultralytics segmentation export use a roi, or its detector with head kind \"detect\"",
                ));
            }
            None
        }
    };
    if errs.len() != start {
        return None;
    }
    Some(SegmentConfig {
        tile,
        mode,
        min_area_px,
        mm_per_px: r.mm_per_px,
        max_regions,
        count_rules: rules.into(),
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
    f: &ScenarioFile,
    boxes: &TensorInfo,
    protos: &TensorInfo,
    labels: &[String],
    threshold: f32,
    errs: &mut Vec<Diagnostic>,
) -> Option<(SegmentMode, usize)> {
    for (key, set) in [
        ("head.background", f.head.background.is_some()),
        ("head.activation", f.head.activation.is_some()),
        ("head.output", f.head.output.is_some()),
    ] {
        if set {
            errs.push(f.diag(
                key,
                format!(
                    "applies to per-pixel class maps; this model is an Ultralytics segmentation export (boxes `{}` {}, mask prototypes `{}` {})",
                    boxes.name,
                    shape_str(&boxes.shape),
                    protos.name,
                    shape_str(&protos.shape)
                ),
            ));
        }
    }
    if !(boxes.is_float32() && protos.is_float32()) {
        errs.push(f.diag("model.path", "the segmentation outputs must be float32"));
        return None;
    }
    let nm = protos.shape[1] as usize;
    let classes = (boxes.shape[1] as usize).checked_sub(4 + nm)?;
    if !labels.is_empty() && labels.len() != classes {
        let (key, whose) = heads_plan::names_source(f);
        errs.push(f.diag(
            key,
            format!(
                "{whose} {} class names but output `{}` {} scores {classes} classes (4 + classes + {nm} mask coefficients); the list must have one name per class, in model order",
                labels.len(),
                boxes.name,
                shape_str(&boxes.shape)
            ),
        ));
        return None;
    }
    let NmsSettings {
        conf_threshold,
        iou_threshold,
        max_detections,
    } = nms_settings(f, errs);
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
        mm_per_px: f.rules.mm_per_px,
        count_rules: Vec::new().into(),
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
    f: &ScenarioFile,
    model: &ModelInfo,
    labels: &[String],
    threshold: f32,
    errs: &mut Vec<Diagnostic>,
) -> Option<(SegmentMode, usize)> {
    for (key, set) in [
        ("head.conf_threshold", f.head.conf_threshold.is_some()),
        ("head.iou_threshold", f.head.iou_threshold.is_some()),
    ] {
        if set {
            errs.push(f.diag(
                key,
                "applies to Ultralytics segmentation exports (boxes + mask prototypes); this model gives a per-pixel class map",
            ));
        }
    }
    let out = heads_plan::head_output(f, model, errs)?;
    let shape_ok =
        out.is_float32() && out.shape.len() == 4 && out.shape[0] == 1 && out.shape[1] > 0;
    if !shape_ok {
        let outputs = heads_plan::outputs_str(model);
        let hint = match out.shape.len() {
            3 => " — it looks like a detector: use head kind \"detect\"",
            2 => " — it looks like a classifier: use head kind \"classify\"",
            _ => "",
        };
        errs.push(f.diag(
            "model.path",
            format!(
                "the segment head needs a per-pixel class map, float32 [1, classes, height, width], or an Ultralytics segmentation export (boxes [1, 4 + classes + masks, anchors] and prototypes [1, masks, h, w]); this model has {outputs}{hint}"
            ),
        ));
        return None;
    }
    let classes = out.shape[1] as usize;
    if !labels.is_empty() && labels.len() != classes {
        let (key, whose) = heads_plan::names_source(f);
        errs.push(f.diag(
            key,
            format!(
                "{whose} {} class names but output `{}` {} has {classes} class channels; the list must have one name per channel, in model order",
                labels.len(),
                out.name,
                shape_str(&out.shape)
            ),
        ));
        return None;
    }
    let background = match f.head.background.as_deref() {
        None if classes > 1 => Some(0),
        None | Some("none") => None,
        // an unknown name is reported; checking goes on to find every other problem
        Some(name) => detect_plan::class_of(f, "head.background", name, labels, classes, errs),
    };
    if background.is_some() && classes == 1 {
        errs.push(f.diag(
            "head.background",
            "a one-channel map has a single class, the defect; leave `background` out",
        ));
    }
    let activation = match f.head.activation.unwrap_or_default() {
        ActivationSetting::Auto => Activation::Auto,
        ActivationSetting::Softmax if classes == 1 => {
            errs.push(f.diag(
                "head.activation",
                "softmax needs several class channels; this map has one (use \"sigmoid\" or \"none\")",
            ));
            Activation::Auto
        }
        ActivationSetting::Softmax => Activation::Softmax,
        ActivationSetting::Sigmoid => Activation::Sigmoid,
        ActivationSetting::None => Activation::None,
    };
    if f.head.mask_threshold.is_some() && classes > 1 {
        errs.push(f.diag(
            "head.mask_threshold",
            "applies to one-channel maps and Ultralytics exports; a class map takes each pixel's most likely class",
        ));
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
