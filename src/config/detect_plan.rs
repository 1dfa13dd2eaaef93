//! Plan for the detect head: output layout and class count from the model, thresholds,
//! class names, count rules. A classifier, an OCR detector or a class list of the wrong
//! length is caught here, before a frame is grabbed.

use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;
use super::heads_plan::{self, outputs_str, shape_str};
use super::schema::{DetectLayoutSetting, HeadKind};
use crate::engine::ModelInfo;
use crate::heads::count_rules::CountRule;
use crate::heads::{DetectConfig, DetectLayout};
use crate::preprocess::{Fit, Interpolation, PreprocessSpec};

/// `[head]`/`[rules]` keys that belong to the detect head only.
pub(crate) fn check_detect_keys(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) {
    let (h, r) = (&f.head, &f.rules);
    if f.head.kind != HeadKind::Detect && h.layout.is_some() {
        errs.push(f.diag("head.layout", "applies to head kind \"detect\" only"));
    }
    if matches!(f.head.kind, HeadKind::Detect | HeadKind::Segment) {
        return;
    }
    for (key, set) in [
        ("head.conf_threshold", h.conf_threshold.is_some()),
        ("head.iou_threshold", h.iou_threshold.is_some()),
        ("head.max_detections", h.max_detections.is_some()),
        ("rules.count", r.count.is_some()),
        ("rules.required_classes", r.required_classes.is_some()),
        ("rules.forbidden_classes", r.forbidden_classes.is_some()),
    ] {
        if set {
            errs.push(f.diag(key, "applies to head kinds \"detect\" and \"segment\" only"));
        }
    }
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

pub(crate) fn detect_plan(
    f: &ScenarioFile,
    model: &ModelInfo,
    labels: &[String],
    errs: &mut Vec<Diagnostic>,
) -> Option<DetectConfig> {
    let start = errs.len();
    let h = &f.head;
    for (key, set) in [
        ("head.softmax", h.softmax.is_some()),
        ("head.top_k", h.top_k.is_some()),
        ("head.artifact", h.artifact.is_some()),
        ("rules.ok_classes", f.rules.ok_classes.is_some()),
        ("rules.ng_classes", f.rules.ng_classes.is_some()),
        ("rules.min_score", f.rules.min_score.is_some()),
        ("rules.score_threshold", f.rules.score_threshold.is_some()),
        ("rules.pixel_threshold", f.rules.pixel_threshold.is_some()),
        (
            "rules.min_defect_area_px",
            f.rules.min_defect_area_px.is_some(),
        ),
    ] {
        if set {
            errs.push(f.diag(
                key,
                "does not apply to head kind \"detect\" (use [[rules.count]], required_classes, forbidden_classes)",
            ));
        }
    }
    if let Some((_, protos)) = super::segment_plan::yolo_seg_outputs(model) {
        errs.push(f.diag(
            "model.path",
            format!(
                "this model also outputs mask prototypes (`{}` {}): it is a segmentation export; use head kind \"segment\"",
                protos.name,
                shape_str(&protos.shape)
            ),
        ));
        return None;
    }
    let out = heads_plan::head_output(f, model, errs)?;
    let looks_like = if out.shape.len() == 4 && out.shape[1] == 1 {
        " — it looks like a text detector (PP-OCR DB): use head kind \"ocr\""
    } else if out.shape.len() == 2 {
        " — it looks like a classifier: use head kind \"classify\""
    } else {
        ""
    };
    let known_nc = (!labels.is_empty()).then_some(labels.len());
    let shape_ok = out.is_float32() && out.shape.len() == 3 && out.shape[0] == 1;
    let inferred = shape_ok
        .then(|| DetectLayout::infer(&out.shape, None))
        .flatten();
    let wanted = h.layout.unwrap_or_default();
    let layout = match (inferred, wanted) {
        (None, _) => {
            errs.push(f.diag(
                "model.path",
                format!(
                    "the detect head needs a YOLO output, float32 [1, 4 + classes, anchors] (YOLOv8/YOLO11) or [1, anchors, 5 + classes] (YOLOv5/YOLOX) with fixed sizes; this model has {}{looks_like}",
                    outputs_str(model)
                ),
            ));
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
                errs.push(f.diag(
                    "head.layout",
                    format!(
                        "output `{}` {} does not fit layout \"{}\" (it needs {} + classes values per box in dimension {}); try layout = \"auto\"",
                        out.name,
                        shape_str(&out.shape),
                        if l == DetectLayout::Yolov8 { "yolov8" } else { "yolov5" },
                        extra,
                        if l == DetectLayout::Yolov8 { 1 } else { 2 }
                    ),
                ));
                return None;
            }
            (l, (ch - extra) as usize)
        }
    };
    let (layout, classes) = layout;
    if let Some(nc) = known_nc {
        if nc != classes {
            let (key, whose) = heads_plan::names_source(f);
            errs.push(f.diag(key, format!(
                "{whose} {nc} class names but output `{}` {} scores {classes} classes ({} layout); the list must have one name per class, in model order",
                out.name,
                shape_str(&out.shape),
                if layout == DetectLayout::Yolov8 { "YOLOv8: 4 + classes" } else { "YOLOv5: 5 + classes" }
            )));
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
    } = nms_settings(f, errs);
    check_mm_per_px(f, errs);
    let count_rules = count_rules(f, labels, classes, errs);
    if errs.len() != start {
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
        mm_per_px: f.rules.mm_per_px,
        count_rules: count_rules.into(),
        tile: None,
    })
}

/// Ultralytics' predict settings (`[head] conf_threshold`, `iou_threshold`,
/// `max_detections`), checked.
pub(crate) struct NmsSettings {
    pub conf_threshold: f32,
    pub iou_threshold: f32,
    pub max_detections: usize,
}

pub(crate) fn nms_settings(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> NmsSettings {
    let h = &f.head;
    let conf_threshold = probability(f, errs, "head.conf_threshold", h.conf_threshold, 0.25);
    let iou_threshold = probability(f, errs, "head.iou_threshold", h.iou_threshold, 0.7);
    let max_detections = h.max_detections.unwrap_or(300);
    if max_detections == 0 {
        errs.push(f.diag(
            "head.max_detections",
            "must be at least 1 (Ultralytics uses 300)",
        ));
    }
    NmsSettings {
        conf_threshold,
        iou_threshold,
        max_detections,
    }
}

/// A `[0, 1]` setting with its default.
pub(crate) fn probability(
    f: &ScenarioFile,
    errs: &mut Vec<Diagnostic>,
    key: &str,
    v: Option<f32>,
    default: f32,
) -> f32 {
    let v = v.unwrap_or(default);
    if !(0.0..=1.0).contains(&v) {
        errs.push(f.diag(key, "must be a number in [0, 1]"));
    }
    v
}

pub(crate) fn check_mm_per_px(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) {
    if let Some(m) = f.rules.mm_per_px {
        if !(m.is_finite() && m > 0.0) {
            errs.push(f.diag("rules.mm_per_px", "must be a positive number"));
        }
    }
}

pub(crate) fn class_of(
    f: &ScenarioFile,
    key: &str,
    name: &str,
    labels: &[String],
    classes: usize,
    errs: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let found = labels.iter().position(|l| l == name).or_else(|| {
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < classes && labels.is_empty())
    });
    if found.is_none() {
        errs.push(f.diag(
            key,
            format!(
                "`{name}` is not a class of this model; its classes are {}",
                if labels.is_empty() {
                    format!("0..{} (the model has no names)", classes)
                } else {
                    format!("{labels:?}")
                }
            ),
        ));
    }
    found
}

pub(crate) fn count_rules(
    f: &ScenarioFile,
    labels: &[String],
    classes: usize,
    errs: &mut Vec<Diagnostic>,
) -> Vec<CountRule> {
    let mut out = Vec::new();
    for (i, r) in f.rules.count.iter().flatten().enumerate() {
        let key = |k: &str| format!("rules.count[{i}].{k}");
        let class = match &r.class {
            Some(c) => match class_of(f, &key("class"), c, labels, classes, errs) {
                Some(c) => Some(c),
                None => continue,
            },
            None => None,
        };
        if r.exact.is_some() && (r.min.is_some() || r.max.is_some()) {
            errs.push(f.diag(
                &key("exact"),
                "give either `exact` or `min`/`max`, not both",
            ));
            continue;
        }
        let (min, max) = match r.exact {
            Some(n) => (Some(n), Some(n)),
            None => (r.min, r.max),
        };
        if min.is_none() && max.is_none() {
            errs.push(f.diag(
                &format!("rules.count[{i}]"),
                "needs `exact`, `min` or `max`",
            ));
            continue;
        }
        if let (Some(a), Some(b)) = (min, max) {
            if b < a {
                errs.push(f.diag(&key("max"), format!("is {b}, below min {a}")));
                continue;
            }
        }
        if let Some([_, _, w, h]) = r.zone {
            if !(w > 0.0 && h > 0.0) || r.zone.is_some_and(|z| z.iter().any(|v| !v.is_finite())) {
                errs.push(f.diag(
                    &key("zone"),
                    "must be [x, y, width, height] in frame pixels with a positive width and height",
                ));
                continue;
            }
        }
        let min_score = r.min_score.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&min_score) {
            errs.push(f.diag(&key("min_score"), "must be a number in [0, 1]"));
            continue;
        }
        let min_area_px = r.min_area_px.unwrap_or(0.0);
        if !(min_area_px.is_finite() && min_area_px >= 0.0) {
            errs.push(f.diag(&key("min_area_px"), "must be a number >= 0"));
            continue;
        }
        out.push(CountRule {
            name: r.name.clone().unwrap_or_else(|| format!("count[{i}]")),
            class,
            min,
            max,
            zone: r.zone,
            min_score,
            min_area_px,
        });
    }
    for (list, key, required) in [
        (&f.rules.required_classes, "rules.required_classes", true),
        (&f.rules.forbidden_classes, "rules.forbidden_classes", false),
    ] {
        for name in list.iter().flatten() {
            let Some(c) = class_of(f, key, name, labels, classes, errs) else {
                continue;
            };
            let short = key.trim_start_matches("rules.");
            out.push(CountRule {
                name: format!("{short}[{name}]"),
                class: Some(c),
                min: required.then_some(1),
                max: (!required).then_some(0),
                zone: None,
                min_score: 0.0,
                min_area_px: 0.0,
            });
        }
    }
    if out.len() > usize::from(u16::MAX) {
        errs.push(f.diag("rules.count", "too many count rules"));
    }
    out
}

impl super::ScenarioPlan {
    /// What each count rule requires, by index, for the defect log.
    pub fn count_rule_descriptions(&self) -> Vec<(String, String)> {
        let rules = match &self.head {
            super::HeadPlan::Detect(c) => &c.count_rules,
            super::HeadPlan::Segment(c) => &c.count_rules,
            _ => return Vec::new(),
        };
        rules
            .iter()
            .map(|r| (r.name.clone(), r.describe(&self.labels)))
            .collect()
    }
}
