//! Planning helpers several head kinds share: which output to read, class names,
//! probabilities and scales.

use crate::engine::{ModelInfo, TensorInfo};

use super::PlanInput;

/// The output `[head] output` names, else the model's first; a missing name or a model
/// without outputs is reported.
pub(crate) fn head_output<'m>(
    input: &mut PlanInput<'_>,
    model: &'m ModelInfo,
    output: Option<&str>,
) -> Option<&'m TensorInfo> {
    match output {
        Some(name) => {
            let out = model.output(name);
            if out.is_none() {
                input.error(
                    "head.output",
                    format!(
                        "the model has no output `{name}`; its outputs are {}",
                        model.output_names()
                    ),
                );
            }
            out
        }
        None => {
            let out = model.outputs.first();
            if out.is_none() {
                input.error("model.path", "the model has no outputs");
            }
            out
        }
    }
}

/// Where the class names came from, for a list-length error: the key to point at and
/// how to say it.
pub(crate) fn names_source(input: &PlanInput<'_>) -> (&'static str, &'static str) {
    if input.file.model.labels.is_some() {
        ("model.labels", "the labels file lists")
    } else {
        ("model.path", "the model's `names` metadata lists")
    }
}

/// A `[0, 1]` setting with its default.
pub(crate) fn probability(
    input: &mut PlanInput<'_>,
    key: &str,
    v: Option<f32>,
    default: f32,
) -> f32 {
    let v = v.unwrap_or(default);
    if !(0.0..=1.0).contains(&v) {
        input.error(key, "must be a number in [0, 1]");
    }
    v
}

/// `[rules] mm_per_px`: the width of one frame pixel in millimetres.
pub(crate) fn check_mm_per_px(input: &mut PlanInput<'_>, mm_per_px: Option<f32>) {
    if let Some(m) = mm_per_px {
        if !(m.is_finite() && m > 0.0) {
            input.error("rules.mm_per_px", "must be a positive number");
        }
    }
}

/// The index of class `name` (a name, or an index when the model has no names).
pub(crate) fn class_of(
    input: &mut PlanInput<'_>,
    key: &str,
    name: &str,
    classes: usize,
) -> Option<usize> {
    let labels = input.labels;
    let found = labels.iter().position(|l| l == name).or_else(|| {
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < classes && labels.is_empty())
    });
    if found.is_none() {
        input.error(
            key,
            format!(
                "`{name}` is not a class of this model; its classes are {}",
                if labels.is_empty() {
                    format!("0..{} (the model has no names)", classes)
                } else {
                    format!("{labels:?}")
                }
            ),
        );
    }
    found
}
