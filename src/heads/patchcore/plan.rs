//! `[head] kind = "patchcore"`: a PatchCore model fitted on the box (`lineside fit`):
//! `[model] path` is the backbone, `[head] artifact` the fitted memory bank. It runs on
//! the anomaly head, with the anomaly `[rules]`.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use crate::config::{Diagnostic, ScenarioFile};
use crate::engine::ModelInfo;
use crate::heads::anomaly::{plan_anomaly_rules, AnomalyRulesKeys};
use crate::heads::tiling::plan_tiling;
use crate::heads::{AnomalyConfig, AnomalyScoring, HeadKind, HeadPlan, PlanInput};
use crate::patchcore::{Artifact, LAYER_S16, LAYER_S8};
use crate::preprocess::{ColorOrder, Layout, PreprocessSpec};

pub const KIND: HeadKind = HeadKind {
    name: "patchcore",
    head_keys: || serde_introspect::<PatchCoreHeadKeys>(),
    rules_keys: || serde_introspect::<AnomalyRulesKeys>(),
    instead: &[],
    preprocess_defaults: backbone_defaults,
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// `[head]` of a patchcore scenario (`lineside fit` reads `artifact` too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchCoreHeadKeys {
    /// The fitted model file `lineside fit` writes (relative to this file).
    pub artifact: Option<PathBuf>,
    /// Inspect the frame (or roi) as overlapping tiles of `[width, height]` frame pixels,
    /// each resized to the model input (equal sizes: full detail).
    pub tile: Option<[u32; 2]>,
    /// Pixels neighbouring tiles share (default 32).
    pub tile_overlap: Option<u32>,
}

fn plan(input: &mut PlanInput<'_>) -> Option<AnomalyConfig> {
    let (h, r) = (
        input.head::<PatchCoreHeadKeys>(),
        input.rules::<AnomalyRulesKeys>(),
    );
    let (h, r) = (h?, r?);
    let spec = input.preprocess?;
    let tile = plan_tiling(input, h.tile, h.tile_overlap, spec, true);
    let scoring = fitted_scoring(input, &h, spec)?;
    plan_anomaly_rules(input, &r, scoring).map(|cfg| AnomalyConfig { tile, ..cfg })
}

/// The backbone's own normalisation where `[preprocess]` leaves mean/std out: lineside's
/// backbone exports record it in their `preprocess` metadata, and fitting with /255 alone
/// would silently build the memory bank on inputs the network never saw.
pub fn backbone_defaults(f: &ScenarioFile, model: &ModelInfo, spec: &mut PreprocessSpec) {
    if let Some((mean, std)) = model.normalisation() {
        if f.preprocess.mean.is_none() {
            spec.mean = mean;
        }
        if f.preprocess.std.is_none() {
            spec.std = std;
        }
    }
}

/// Checks the backbone and preprocessing are what PatchCore's feature assembly (and the
/// examples head's embedding) expects.
pub fn check_backbone(
    f: &ScenarioFile,
    model: &ModelInfo,
    spec: &PreprocessSpec,
    errs: &mut Vec<Diagnostic>,
) {
    for (name, stride) in [(LAYER_S8, 8), (LAYER_S16, 16)] {
        match model.output(name) {
            Some(o) if o.is_float32() && o.shape.len() == 4 => {}
            _ => errs.push(f.diag(
                "model.path",
                format!(
                    "patchcore and examples heads need the backbone output `{name}` (float32 [1, C, H/{stride}, W/{stride}]); \
                     this model's outputs are {}. Use models/efficientnet-lite0/efficientnet_lite0_features.onnx",
                    model.output_names()
                ),
            )),
        }
    }
    if !spec.width.is_multiple_of(16) || !spec.height.is_multiple_of(16) {
        errs.push(f.diag(
            "preprocess.size",
            format!(
                "is {}x{}; the backbone needs a width and height that are multiples of 16 (e.g. [256, 256])",
                spec.width, spec.height
            ),
        ));
    }
    if (f.preprocess.mean.is_none() || f.preprocess.std.is_none())
        && model.normalisation().is_none()
    {
        errs.push(f.diag(
            "preprocess",
            "mean and std must be set: this backbone has no `preprocess` metadata to take them from. \
             Give the normalisation it was trained with (EfficientNet-Lite0: mean = 0.498, std = 0.502; \
             torchvision ImageNet backbones: mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225])",
        ));
    }
    if spec.color != ColorOrder::Rgb || spec.layout != Layout::Nchw {
        errs.push(f.diag(
            "preprocess.color",
            "the backbone reads RGB in NCHW layout: set color = \"rgb\" and layout = \"nchw\"",
        ));
    }
}

/// Loads the artifact and checks it belongs to this backbone and preprocessing.
fn fitted_scoring(
    input: &mut PlanInput<'_>,
    h: &PatchCoreHeadKeys,
    spec: &PreprocessSpec,
) -> Option<AnomalyScoring> {
    let (f, model) = (input.file, input.model);
    let start = input.errs.len();
    check_backbone(f, model, spec, input.errs);
    let Some(rel) = &h.artifact else {
        input.error(
            "head.artifact",
            "missing: a patchcore head needs `artifact = \"<file>.lspc\"`, the model `lineside fit` writes",
        );
        return None;
    };
    let path = f.resolve(rel);
    if !path.is_file() {
        input.error(
            "head.artifact",
            format!(
                "{} does not exist yet; create it with `lineside fit {}`",
                path.display(),
                f.path.display()
            ),
        );
        return None;
    }
    let artifact = match Artifact::load(&path) {
        Ok(a) => a,
        Err(e) => {
            input.error("head.artifact", e.to_string());
            return None;
        }
    };
    let ah = &artifact.header;
    if ah.backbone.sha256 != model.sha256 {
        input.error(
            "model.path",
            format!(
                "{} was fitted with backbone {} (sha256 {}…), not this file (sha256 {}…); \
                 point [model] path at that backbone or re-fit with `lineside fit {}`",
                path.display(),
                ah.backbone.file,
                &ah.backbone.sha256[..12.min(ah.backbone.sha256.len())],
                &model.sha256[..12.min(model.sha256.len())],
                f.path.display()
            ),
        );
    }
    let p = &ah.preprocess;
    let mut mismatch = |what: &str, fitted: String, here: String| {
        input.error(
            "preprocess",
            format!(
                "the model was fitted with {what} {fitted} but this scenario gives {here}; \
                 preprocessing must match the fit (change [preprocess] or re-fit)"
            ),
        )
    };
    if (p.width, p.height) != (spec.width, spec.height) {
        mismatch(
            "size",
            format!("{}x{}", p.width, p.height),
            format!("{}x{}", spec.width, spec.height),
        );
    }
    if p.mean != spec.mean || p.std != spec.std || p.scale != spec.scale {
        mismatch(
            "normalisation",
            format!("scale {} mean {:?} std {:?}", p.scale, p.mean, p.std),
            format!(
                "scale {} mean {:?} std {:?}",
                spec.scale, spec.mean, spec.std
            ),
        );
    }
    if p.fit != spec.fit || p.interpolation != spec.interpolation {
        mismatch(
            "fit/interpolation",
            format!("{:?}/{:?}", p.fit, p.interpolation),
            format!("{:?}/{:?}", spec.fit, spec.interpolation),
        );
    }
    (input.errs.len() == start).then(|| AnomalyScoring::Fitted(Arc::new(artifact)))
}
