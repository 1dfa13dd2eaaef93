//! Checks for PatchCore scenarios: the backbone, the preprocessing the bank was fitted
//! with, the artifact itself (for `run`/`validate`), and the `[fit]` section (for `fit`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;
use super::plan::preprocess_spec;
use super::schema::HeadKind;
use crate::engine::ModelInfo;
use crate::heads::AnomalyScoring;
use crate::patchcore::TileSpec;
use crate::patchcore::{Artifact, LAYER_S16, LAYER_S8};
use crate::preprocess::{ColorOrder, Fit, Layout, PreprocessSpec};

/// Everything `lineside fit` needs from a scenario file.
#[derive(Debug, Clone)]
pub struct FitPlan {
    pub scenario: String,
    pub file: PathBuf,
    pub model: Arc<ModelInfo>,
    pub preprocess: PreprocessSpec,
    pub train_dir: PathBuf,
    pub holdout: f32,
    pub coreset_ratio: f32,
    pub projection_dim: usize,
    pub seed: u64,
    pub min_images: usize,
    /// Labelled validation images (good and defective) for the thresholds, if any.
    pub validation: Option<PathBuf>,
    /// Where the fitted model goes (`[head] artifact`).
    pub artifact: PathBuf,
}

/// Checks the backbone and preprocessing are what PatchCore's feature assembly expects.
fn check_backbone(
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
                    "a patchcore head needs the backbone output `{name}` (float32 [1, C, H/{stride}, W/{stride}]); \
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
    if spec.color != ColorOrder::Rgb || spec.layout != Layout::Nchw {
        errs.push(f.diag(
            "preprocess.color",
            "the backbone reads RGB in NCHW layout: set color = \"rgb\" and layout = \"nchw\"",
        ));
    }
}

/// Loads the artifact and checks it belongs to this backbone and preprocessing.
pub(super) fn fitted_scoring(
    f: &ScenarioFile,
    model: &ModelInfo,
    spec: &PreprocessSpec,
    errs: &mut Vec<Diagnostic>,
) -> Option<AnomalyScoring> {
    let start = errs.len();
    check_backbone(f, model, spec, errs);
    let Some(rel) = &f.head.artifact else {
        errs.push(f.diag(
            "head.artifact",
            "missing: a patchcore head needs `artifact = \"<file>.lspc\"`, the model `lineside fit` writes",
        ));
        return None;
    };
    let path = f.resolve(rel);
    if !path.is_file() {
        errs.push(f.diag(
            "head.artifact",
            format!(
                "{} does not exist yet; create it with `lineside fit {}`",
                path.display(),
                f.path.display()
            ),
        ));
        return None;
    }
    let artifact = match Artifact::load(&path) {
        Ok(a) => a,
        Err(e) => {
            errs.push(f.diag("head.artifact", e.to_string()));
            return None;
        }
    };
    let h = &artifact.header;
    if h.backbone.sha256 != model.sha256 {
        errs.push(f.diag(
            "model.path",
            format!(
                "{} was fitted with backbone {} (sha256 {}…), not this file (sha256 {}…); \
                 point [model] path at that backbone or re-fit with `lineside fit {}`",
                path.display(),
                h.backbone.file,
                &h.backbone.sha256[..12.min(h.backbone.sha256.len())],
                &model.sha256[..12.min(model.sha256.len())],
                f.path.display()
            ),
        ));
    }
    let p = &h.preprocess;
    let mismatch = |what: &str, fitted: String, here: String| {
        f.diag(
            "preprocess",
            format!(
                "the model was fitted with {what} {fitted} but this scenario gives {here}; \
                 preprocessing must match the fit (change [preprocess] or re-fit)"
            ),
        )
    };
    if (p.width, p.height) != (spec.width, spec.height) {
        errs.push(mismatch(
            "size",
            format!("{}x{}", p.width, p.height),
            format!("{}x{}", spec.width, spec.height),
        ));
    }
    if p.mean != spec.mean || p.std != spec.std || p.scale != spec.scale {
        errs.push(mismatch(
            "normalisation",
            format!("scale {} mean {:?} std {:?}", p.scale, p.mean, p.std),
            format!(
                "scale {} mean {:?} std {:?}",
                spec.scale, spec.mean, spec.std
            ),
        ));
    }
    if p.fit != spec.fit || p.interpolation != spec.interpolation {
        errs.push(mismatch(
            "fit/interpolation",
            format!("{:?}/{:?}", p.fit, p.interpolation),
            format!("{:?}/{:?}", spec.fit, spec.interpolation),
        ));
    }
    (errs.len() == start).then(|| AnomalyScoring::Fitted(Arc::new(artifact)))
}

/// `[head] tile` / `tile_overlap`: tiled inspection of frames larger than the input.
pub(super) fn tiling(
    f: &ScenarioFile,
    spec: &PreprocessSpec,
    stretch_only: bool,
    errs: &mut Vec<Diagnostic>,
) -> Option<TileSpec> {
    let Some([w, h]) = f.head.tile else {
        if f.head.tile_overlap.is_some() {
            errs.push(f.diag(
                "head.tile_overlap",
                "has no effect without `tile = [width, height]` (frame pixels per tile)",
            ));
        }
        return None;
    };
    let overlap = f.head.tile_overlap.unwrap_or(32);
    let start = errs.len();
    if w < 16 || h < 16 {
        errs.push(f.diag(
            "head.tile",
            format!(
                "is {w}x{h}; tiles must be at least 16x16 frame pixels \
                 (the model input here is {}x{}: tile = [{}, {}] inspects at full detail)",
                spec.width, spec.height, spec.width, spec.height
            ),
        ));
    }
    if overlap >= w.min(h) / 2 {
        errs.push(f.diag(
            "head.tile_overlap",
            format!(
                "is {overlap} px; it must be less than half the tile ({}), \
                 e.g. 32 for 256 px tiles",
                w.min(h) / 2
            ),
        ));
    }
    if stretch_only && spec.fit != Fit::Stretch {
        errs.push(f.diag(
            "preprocess.fit",
            "tiles are resized to the model input: use fit = \"stretch\" (the default) with `tile`",
        ));
    }
    (errs.len() == start).then_some(TileSpec {
        width: w,
        height: h,
        overlap,
    })
}

/// Loads and checks a scenario for `lineside fit`.
pub fn fit_plan(path: &Path) -> Result<FitPlan, Vec<Diagnostic>> {
    let f = ScenarioFile::load(path)?;
    let mut errs = Vec::new();
    if f.head.kind != HeadKind::Patchcore {
        errs.push(f.diag(
            "head.kind",
            "`lineside fit` builds PatchCore models: set kind = \"patchcore\" and artifact = \"<file>.lspc\"",
        ));
    }
    let Some(fit) = &f.fit else {
        errs.push(f.diag(
            "fit",
            "missing section `[fit]`: say where the good images are, e.g. [fit] train = \"data/train/good\"",
        ));
        return Err(errs);
    };
    let artifact = match &f.head.artifact {
        Some(a) => Some(f.resolve(a)),
        None => {
            errs.push(f.diag(
                "head.artifact",
                "missing: where should the fitted model be written? e.g. artifact = \"fitted/part.lspc\"",
            ));
            None
        }
    };
    let train_dir = f.resolve(&fit.train);
    if !train_dir.is_dir() {
        errs.push(f.diag(
            "fit.train",
            format!("{} is not a folder of good images", train_dir.display()),
        ));
    }
    let validation = fit.validation.as_ref().map(|v| f.resolve(v));
    if let Some(v) = &validation {
        if !v.join("good").is_dir() {
            errs.push(f.diag(
                "fit.validation",
                format!(
                    "{} has no good/ folder; a validation folder holds good/, <defect>/ and \
                     ground_truth/<defect>/<name>_mask.png (or remove the key to calibrate on good hold-out images only)",
                    v.display()
                ),
            ));
        }
    }
    let holdout = fit.holdout.unwrap_or(0.2);
    if !(holdout > 0.0 && holdout < 1.0) {
        errs.push(f.diag(
            "fit.holdout",
            "must be a fraction in (0, 1): the share of good images kept back to calibrate the threshold",
        ));
    }
    let coreset_ratio = fit.coreset_ratio.unwrap_or(0.1);
    if !(coreset_ratio > 0.0 && coreset_ratio <= 1.0) {
        errs.push(f.diag("fit.coreset_ratio", "must be in (0, 1]"));
    }
    let min_images = fit.min_images.unwrap_or(10);
    if min_images < 2 {
        errs.push(f.diag(
            "fit.min_images",
            "must be at least 2 (one to fit, one to calibrate)",
        ));
    }
    let model_path = f.resolve(&f.model.path);
    let model = match ModelInfo::load(&model_path) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            errs.push(f.diag("model.path", e.to_string()));
            return Err(errs);
        }
    };
    let spec = preprocess_spec(&f, &model, &mut errs);
    if let Some(spec) = &spec {
        check_backbone(&f, &model, spec, &mut errs);
    }
    match (spec, artifact) {
        (Some(preprocess), Some(artifact)) if errs.is_empty() => Ok(FitPlan {
            scenario: f.scenario.id.clone(),
            file: f.path.clone(),
            model,
            preprocess,
            train_dir,
            holdout,
            coreset_ratio,
            projection_dim: fit.projection_dim.unwrap_or(128),
            seed: fit.seed.unwrap_or(0),
            min_images,
            validation,
            artifact,
        }),
        _ => Err(errs),
    }
}
