//! `lineside fit`'s reading of a scenario file: the `[fit]` section, the backbone and the
//! preprocessing the memory bank is built with, and where the artifact goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{preprocess_spec, Diagnostic, ScenarioFile};
use crate::engine::ModelInfo;
use crate::heads::patchcore::{self, backbone_defaults, check_backbone, PatchCoreHeadKeys};
use crate::patchcore::TileSpec;
use crate::preprocess::PreprocessSpec;

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
    /// `[head] tile`: the scenario inspects frames as tiles, so the fit draws its
    /// training tiles from large images and calibrates the frame-level score.
    pub tile: Option<TileSpec>,
    /// Tiles drawn from each training image larger than a tile (0 = all).
    pub tiles_per_frame: usize,
    /// Target share of good frames rejected (tiled calibration).
    pub frame_false_reject: f32,
    /// The inspected frame size, when the hold-out images are smaller than it.
    pub frame_size: Option<[u32; 2]>,
}

/// Loads and checks a scenario for `lineside fit`.
pub fn fit_plan(path: &Path) -> Result<FitPlan, Vec<Diagnostic>> {
    let f = ScenarioFile::load(path)?;
    let mut errs = Vec::new();
    if f.head_kind != patchcore::KIND.name {
        errs.push(f.diag(
            "head.kind",
            "`lineside fit` builds PatchCore models (kind = \"patchcore\", artifact = \"<file>.lspc\") \
             and teach-by-example classifiers (kind = \"examples\", artifact = \"<file>.lsex\")",
        ));
    }
    let Some(fit) = &f.fit else {
        errs.push(f.diag(
            "fit",
            "missing section `[fit]`: say where the good images are, e.g. [fit] train = \"data/train/good\"",
        ));
        return Err(errs);
    };
    let head = match f.section::<PatchCoreHeadKeys>("head", &["kind"]) {
        Ok(h) => Some(h),
        Err(d) => {
            errs.push(d);
            None
        }
    };
    let artifact = match head.as_ref().and_then(|h| h.artifact.as_ref()) {
        Some(a) => Some(f.resolve(a)),
        None if head.is_none() => None,
        None => {
            errs.push(f.diag(
                "head.artifact",
                "missing: where should the fitted model be written? e.g. artifact = \"fitted/part.lspc\"",
            ));
            None
        }
    };
    let Some(train) = &fit.train else {
        errs.push(f.diag(
            "fit.train",
            "missing: say where the good images are, e.g. train = \"data/train/good\"",
        ));
        return Err(errs);
    };
    for (key, given) in [
        ("classes", fit.classes.is_some()),
        ("unknown", fit.unknown.is_some()),
        ("k", fit.k.is_some()),
        ("pooling", fit.pooling.is_some()),
        ("unknown_false_reject", fit.unknown_false_reject.is_some()),
    ] {
        if given {
            errs.push(f.diag(
                &format!("fit.{key}"),
                "belongs to teach-by-example fits ([head] kind = \"examples\"); a patchcore fit does not read it",
            ));
        }
    }
    let train_dir = f.resolve(train);
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
    let tile = head.as_ref().and_then(|h| {
        let [w, ht] = h.tile?;
        let overlap = h.tile_overlap.unwrap_or(32);
        if w < 16 || ht < 16 || overlap >= w.min(ht) / 2 {
            errs.push(f.diag(
                "head.tile",
                "tiles must be at least 16x16 frame pixels, with tile_overlap less than half a tile (e.g. tile = [256, 256], tile_overlap = 32)",
            ));
            return None;
        }
        Some(TileSpec {
            width: w,
            height: ht,
            overlap,
        })
    });
    let frame_false_reject = fit.frame_false_reject.unwrap_or(0.01);
    if !(frame_false_reject > 0.0 && frame_false_reject < 0.5) {
        errs.push(f.diag(
            "fit.frame_false_reject",
            "must be a fraction in (0, 0.5), e.g. 0.01: the share of good frames the threshold may reject",
        ));
    }
    if fit.frame_size.is_some_and(|[w, h]| w == 0 || h == 0) {
        errs.push(f.diag(
            "fit.frame_size",
            "must be [width, height] in pixels, e.g. [2592, 1944]",
        ));
    }
    if tile.is_none()
        && (fit.tiles_per_frame.is_some()
            || fit.frame_false_reject.is_some()
            || fit.frame_size.is_some())
    {
        errs.push(f.diag(
            "fit",
            "tiles_per_frame, frame_false_reject and frame_size apply to tiled scenarios: set [head] tile = [width, height] or remove them",
        ));
    }
    let model_path = f.resolve(&f.model.path);
    let model = match ModelInfo::load(&model_path) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            errs.push(f.diag("model.path", e.in_scenario(&f.path)));
            return Err(errs);
        }
    };
    let mut spec = preprocess_spec(&f, &model, &mut errs);
    if let Some(spec) = &mut spec {
        backbone_defaults(&f, &model, spec);
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
            tile,
            tiles_per_frame: fit.tiles_per_frame.unwrap_or(8),
            frame_false_reject,
            frame_size: fit.frame_size,
        }),
        _ => Err(errs),
    }
}
