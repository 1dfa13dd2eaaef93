//! `lineside fit` for `[head] kind = "examples"`: teach by example.
//!
//! 1. List `[fit] classes`: one sub-folder of images per class. Split each class with a
//!    seeded hold-out share.
//! 2. Embed every image with the backbone (the scenario's own preprocessing): pooled
//!    feature maps, L2-normalised ([`crate::heads::examples::embed`]).
//! 3. The training embeddings are the model: k nearest neighbours vote on the class.
//!    (k-NN rather than one prototype per class: with a few examples per class, a class
//!    that looks two ways keeps both looks, where a mean would sit between them; and the
//!    distance to the nearest real example is what tells an unknown apart.)
//! 4. Classify the held-out images: accuracy and confusion per class; their distances to
//!    the nearest training example set the unknown threshold (see [`threshold`]).
//! 5. Embed `[fit] unknown` images, if given, and report how many the threshold rejects.
//! 6. Write the artifact (`docs/examples.md#artifact-format-lsex-version-1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ndarray::ArrayView2;
use serde::Serialize;

use super::{bar, split, Backbone, FitError, FitOptions, Picture};
use crate::config::{preprocess_spec, Diagnostic, ScenarioFile};
use crate::dataset::list_images;
use crate::engine::ModelInfo;
use crate::heads::examples::artifact::*;
use crate::heads::examples::embed::{blocks, embed};
use crate::heads::examples::{ExamplesHeadKeys, Neighbours};
use crate::heads::patchcore::{backbone_defaults, check_backbone};
use crate::patchcore::artifact::PreprocessRef;
use crate::patchcore::{LAYER_S16, LAYER_S8};
use crate::preprocess::{PreprocessSpec, Preprocessor};

/// Mixed into the seed per class so each class has its own split.
const CLASS_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// Everything a teach-by-example fit needs from the scenario file.
#[derive(Debug, Clone)]
pub struct ExamplesFitPlan {
    pub scenario: String,
    pub file: PathBuf,
    pub model: Arc<ModelInfo>,
    pub preprocess: PreprocessSpec,
    pub classes_dir: PathBuf,
    /// (class name, its images), sorted by name.
    pub classes: Vec<(String, Vec<PathBuf>)>,
    pub unknown: Vec<PathBuf>,
    pub holdout: f32,
    pub seed: u64,
    pub k: usize,
    pub pooling: Vec<Pool>,
    pub unknown_false_reject: f32,
    pub artifact: PathBuf,
}

/// Reads and checks a scenario with `[head] kind = "examples"` for `lineside fit`.
pub fn examples_fit_plan(f: &ScenarioFile) -> Result<ExamplesFitPlan, Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let Some(fit) = &f.fit else {
        errs.push(f.diag(
            "fit",
            "missing section `[fit]`: say where the class folders are, e.g. [fit] classes = \"data/classes\"",
        ));
        return Err(errs);
    };
    for (key, given) in [
        ("train", fit.train.is_some()),
        ("validation", fit.validation.is_some()),
        ("coreset_ratio", fit.coreset_ratio.is_some()),
        ("projection_dim", fit.projection_dim.is_some()),
        ("min_images", fit.min_images.is_some()),
        ("tiles_per_frame", fit.tiles_per_frame.is_some()),
        ("frame_false_reject", fit.frame_false_reject.is_some()),
        ("frame_size", fit.frame_size.is_some()),
    ] {
        if given {
            errs.push(f.diag(
                &format!("fit.{key}"),
                "belongs to PatchCore fits; a teach-by-example fit reads classes, unknown, holdout, seed, k, pooling and unknown_false_reject",
            ));
        }
    }
    let artifact = match f.section::<ExamplesHeadKeys>("head", &["kind"]) {
        Ok(h) => match h.artifact {
            Some(a) => Some(f.resolve(&a)),
            None => {
                errs.push(f.diag(
                    "head.artifact",
                    "missing: where should the fitted model be written? e.g. artifact = \"fitted/part.lsex\"",
                ));
                None
            }
        },
        Err(d) => {
            errs.push(d);
            None
        }
    };
    let classes_dir = fit.classes.as_ref().map(|c| f.resolve(c));
    let classes = match &classes_dir {
        None => {
            errs.push(f.diag(
                "fit.classes",
                "missing: a folder with one sub-folder of example images per class, e.g. classes = \"data/classes\"",
            ));
            Vec::new()
        }
        Some(dir) => match class_folders(dir) {
            Ok(c) => c,
            Err(message) => {
                errs.push(f.diag("fit.classes", message));
                Vec::new()
            }
        },
    };
    let unknown = match fit.unknown.as_ref().map(|u| f.resolve(u)) {
        None => Vec::new(),
        Some(dir) => match list_images(&dir) {
            Ok(files) if !files.is_empty() => files,
            Ok(_) => {
                errs.push(f.diag(
                    "fit.unknown",
                    format!("{} holds no images (PNG, JPEG or BMP)", dir.display()),
                ));
                Vec::new()
            }
            Err(e) => {
                errs.push(f.diag("fit.unknown", e.to_string()));
                Vec::new()
            }
        },
    };
    let holdout = fit.holdout.unwrap_or(0.2);
    if !(holdout > 0.0 && holdout < 1.0) {
        errs.push(f.diag(
            "fit.holdout",
            "must be a fraction in (0, 1): the share of each class kept back to measure accuracy and set the unknown threshold",
        ));
    }
    let k = fit.k.unwrap_or(5);
    if k == 0 {
        errs.push(f.diag("fit.k", "must be at least 1 (neighbours that vote)"));
    }
    let pooling = match fit.pooling.as_deref().unwrap_or("avg+max") {
        "avg" => vec![Pool::Avg],
        "avg+max" => vec![Pool::Avg, Pool::Max],
        other => {
            errs.push(f.diag(
                "fit.pooling",
                format!("`{other}` is not a pooling; use \"avg\" or \"avg+max\""),
            ));
            Vec::new()
        }
    };
    let unknown_false_reject = fit.unknown_false_reject.unwrap_or(0.01);
    if !(unknown_false_reject > 0.0 && unknown_false_reject < 0.5) {
        errs.push(f.diag(
            "fit.unknown_false_reject",
            "must be a fraction in (0, 0.5), e.g. 0.01: the share of known parts the unknown threshold may reject",
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
    let mut spec = preprocess_spec(f, &model, &mut errs);
    if let Some(spec) = &mut spec {
        backbone_defaults(f, &model, spec);
        check_backbone(f, &model, spec, &mut errs);
    }
    match (spec, artifact, classes_dir) {
        (Some(preprocess), Some(artifact), Some(classes_dir)) if errs.is_empty() => {
            Ok(ExamplesFitPlan {
                scenario: f.scenario.id.clone(),
                file: f.path.clone(),
                model,
                preprocess,
                classes_dir,
                classes,
                unknown,
                holdout,
                seed: fit.seed.unwrap_or(0),
                k,
                pooling,
                unknown_false_reject,
                artifact,
            })
        }
        _ => Err(errs),
    }
}

/// The class sub-folders of `dir` with their images; every class needs two (one to
/// learn from, one to hold out).
fn class_folders(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot list {}: {e}; give a folder with one sub-folder per class",
            dir.display()
        )
    })?;
    let mut classes = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let files = list_images(&path).map_err(|e| e.to_string())?;
        if files.len() < 2 {
            return Err(format!(
                "class `{name}` ({}) has {} image(s); each class needs at least 2 (one to learn from, one held out)",
                path.display(),
                files.len()
            ));
        }
        classes.push((name, files));
    }
    classes.sort_by(|a, b| a.0.cmp(&b.0));
    if classes.len() < 2 {
        return Err(format!(
            "{} has {} class folder(s); teaching needs at least 2 (e.g. good/ and one defect)",
            dir.display(),
            classes.len()
        ));
    }
    if classes.len() > MAX_CLASSES {
        return Err(format!("more than {MAX_CLASSES} class folders"));
    }
    Ok(classes)
}

/// What a teach-by-example fit measured, per set (terminal and `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct ExamplesFitReport {
    pub scenario: String,
    pub artifact: PathBuf,
    pub artifact_sha256: String,
    pub classes: Vec<ClassReport>,
    pub dim: usize,
    pub k: usize,
    /// Held-out images whose class was right (unknown rejection aside).
    pub holdout_accuracy: f64,
    /// `confusion[true][predicted]`, classes in report order.
    pub confusion: Vec<Vec<usize>>,
    pub threshold: f32,
    pub calibration: String,
    /// Held-out known images the threshold calls unknown.
    pub known_false_reject: f64,
    pub unknown_images: usize,
    pub unknown_rejected: usize,
    /// `unknown_rejected / unknown_images` (None without `[fit] unknown`).
    pub unknown_rejection: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    pub name: String,
    pub train: usize,
    pub holdout: usize,
    pub holdout_correct: usize,
    pub accuracy: f64,
}

impl ExamplesFitReport {
    /// The report as the terminal shows it.
    pub fn table(&self) -> String {
        let mut s = format!(
            "fitted {}: {} classes, {} examples of {} dims, k = {}\n",
            self.scenario,
            self.classes.len(),
            self.classes.iter().map(|c| c.train).sum::<usize>(),
            self.dim,
            self.k
        );
        s += &format!(
            "{:<20} {:>6} {:>8} {:>9}\n",
            "class", "train", "held out", "accuracy"
        );
        for c in &self.classes {
            s += &format!(
                "{:<20} {:>6} {:>8} {:>8.1}%\n",
                c.name,
                c.train,
                c.holdout,
                100.0 * c.accuracy
            );
        }
        s += &format!(
            "held-out accuracy {:.1}%; confusion (rows: true, columns: predicted) {:?}\n",
            100.0 * self.holdout_accuracy,
            self.confusion
        );
        s += &format!(
            "unknown threshold {:.4} ({}); held-out known images rejected {:.1}%\n",
            self.threshold,
            self.calibration,
            100.0 * self.known_false_reject
        );
        match self.unknown_rejection {
            Some(r) => {
                s += &format!(
                    "unknown images rejected: {} of {} ({:.1}%)\n",
                    self.unknown_rejected,
                    self.unknown_images,
                    100.0 * r
                )
            }
            None => s += "unknown images: none given ([fit] unknown)\n",
        }
        s += &format!(
            "time {:.2} s; wrote {} (sha256 {})\n",
            self.seconds,
            self.artifact.display(),
            self.artifact_sha256
        );
        s
    }
}

/// Embeds images with the scenario's preprocessing and the backbone.
struct Embedder {
    backbone: Backbone,
    pre: Preprocessor,
    blocks: Vec<Block>,
    dim: usize,
}

impl Embedder {
    fn embed(&mut self, path: &Path, out: &mut Vec<f32>) -> Result<(), FitError> {
        let pic = Picture::load(path)?;
        let start = out.len();
        out.resize(start + self.dim, 0.0);
        let blocks = &self.blocks;
        self.backbone.features(&mut self.pre, &pic, |s8, s16| {
            embed(
                blocks,
                |name| match name {
                    LAYER_S8 => Some(s8),
                    LAYER_S16 => Some(s16),
                    _ => None,
                },
                &mut out[start..],
            )
            .map_err(|name| FitError::Output {
                name,
                reason: "does not have the size the embedding expects".into(),
            })
        })?
    }
}

pub fn fit_examples(
    plan: &ExamplesFitPlan,
    opts: &FitOptions,
) -> Result<ExamplesFitReport, FitError> {
    let t0 = Instant::now();
    let channels = |name: &str| {
        plan.model
            .output(name)
            .and_then(|o| o.shape.get(1).copied())
            .filter(|&c| c > 0)
            .map(|c| c as usize)
            .ok_or_else(|| FitError::Output {
                name: name.into(),
                reason: "channel count is not fixed in the model".into(),
            })
    };
    let blocks = blocks(
        &plan.pooling,
        &[
            (LAYER_S8, channels(LAYER_S8)?),
            (LAYER_S16, channels(LAYER_S16)?),
        ],
    );
    let dim = blocks.iter().map(|b| b.channels).sum();
    let mut em = Embedder {
        backbone: Backbone::open_model(Arc::clone(&plan.model), &plan.preprocess, opts.threads)?,
        pre: Preprocessor::new(plan.preprocess.clone()),
        blocks: blocks.clone(),
        dim,
    };

    // 1-2. Split each class and embed: training rows grouped by class.
    let n_images: usize = plan.classes.iter().map(|c| c.1.len()).sum();
    let pb = bar((n_images + plan.unknown.len()) as u64, "embed", opts);
    let mut bank = Vec::new();
    let mut held = Vec::new();
    let mut held_class = Vec::new();
    let mut class_refs = Vec::new();
    for (ci, (name, files)) in plan.classes.iter().enumerate() {
        let salt = CLASS_SALT.wrapping_mul(ci as u64 + 1);
        let (train, hold) = split(files.len(), plan.holdout, plan.seed ^ salt);
        for &i in &train {
            em.embed(&files[i], &mut bank)?;
            pb.inc(1);
        }
        for &i in &hold {
            em.embed(&files[i], &mut held)?;
            held_class.push(ci);
            pb.inc(1);
        }
        class_refs.push(ClassRef {
            name: name.clone(),
            rows: train.len(),
            holdout: hold.len(),
        });
    }
    let mut unknown = Vec::new();
    for path in &plan.unknown {
        em.embed(path, &mut unknown)?;
        pb.inc(1);
    }
    pb.finish();

    // 3-4. Classify the held-out images against the training rows.
    let rows = bank.len() / dim;
    let row_class: Vec<usize> = class_refs
        .iter()
        .enumerate()
        .flat_map(|(i, c)| std::iter::repeat_n(i, c.rows))
        .collect();
    let view = ArrayView2::from_shape((rows, dim), &bank[..]).map_err(|e| FitError::Output {
        name: "embeddings".into(),
        reason: e.to_string(),
    })?;
    let n_classes = class_refs.len();
    let mut nn = Neighbours::new(rows, n_classes, plan.k);
    let mut confusion = vec![vec![0usize; n_classes]; n_classes];
    let mut distances = Vec::with_capacity(held_class.len());
    for (q, &truth) in held.chunks_exact(dim).zip(&held_class) {
        if let Some(d) = nn.decide(view, &row_class, q) {
            confusion[truth][d.class] += 1;
            distances.push(d.nearest);
        }
    }
    let (threshold, calibration) = threshold(&distances, plan.unknown_false_reject);
    let rejected_known = distances.iter().filter(|&&d| d > threshold).count();
    let unknown_rejected = unknown
        .chunks_exact(dim)
        .filter_map(|q| nn.decide(view, &row_class, q))
        .filter(|d| d.nearest > threshold)
        .count();
    let unknown_images = unknown.len() / dim;

    let classes: Vec<ClassReport> = class_refs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let correct = confusion[i][i];
            ClassReport {
                name: c.name.clone(),
                train: c.rows,
                holdout: c.holdout,
                holdout_correct: correct,
                accuracy: ratio(correct, c.holdout),
            }
        })
        .collect();
    let correct: usize = classes.iter().map(|c| c.holdout_correct).sum();
    let mut header = header(plan, blocks, dim, class_refs, rows, threshold, &calibration);
    header.training.seconds = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let sha = ExamplesArtifact::write(&plan.artifact, &mut header, &bank)?;
    Ok(ExamplesFitReport {
        scenario: plan.scenario.clone(),
        artifact: plan.artifact.clone(),
        artifact_sha256: sha,
        classes,
        dim,
        k: header.k,
        holdout_accuracy: ratio(correct, held_class.len()),
        confusion,
        threshold,
        calibration,
        known_false_reject: ratio(rejected_known, distances.len()),
        unknown_images,
        unknown_rejected,
        unknown_rejection: (unknown_images > 0).then(|| ratio(unknown_rejected, unknown_images)),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn ratio(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// The unknown threshold from the held-out known images' distances to their nearest
/// training example: the `1 - false_reject` quantile (the smallest distance that at most
/// that share of held-out images exceeds). With fewer than `1 / false_reject` held-out
/// images this is the largest of them, so no held-out known image is rejected.
pub fn threshold(distances: &[f32], false_reject: f32) -> (f32, String) {
    let mut d: Vec<f32> = distances
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    d.sort_by(f32::total_cmp);
    let n = d.len();
    if n == 0 {
        return (0.0, "no held-out images: every part is unknown".into());
    }
    // f32 0.01 is slightly below 1/100: a small tolerance keeps 1% of 200 at 2.
    let allowed = (f64::from(false_reject) * n as f64 + 1e-4).floor() as usize;
    let t = d[n - 1 - allowed.min(n - 1)];
    (
        t,
        format!(
            "nearest-example cosine distance of {n} held-out known images: at most {allowed} ({:.1}%) above",
            100.0 * false_reject
        ),
    )
}

fn header(
    plan: &ExamplesFitPlan,
    blocks: Vec<Block>,
    dim: usize,
    classes: Vec<ClassRef>,
    rows: usize,
    threshold: f32,
    method: &str,
) -> ExamplesHeader {
    let spec = &plan.preprocess;
    let calibration_images = classes.iter().map(|c| c.holdout).sum();
    ExamplesHeader {
        format: "lineside-examples".into(),
        version: VERSION,
        created: crate::sink::rfc3339(std::time::SystemTime::now()),
        backbone: BackboneRef {
            file: plan
                .model
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: plan.model.sha256.clone(),
        },
        preprocess: PreprocessRef {
            width: spec.width,
            height: spec.height,
            color: spec.color,
            fit: spec.fit,
            interpolation: spec.interpolation,
            scale: spec.scale,
            mean: spec.mean,
            std: spec.std,
        },
        embedding: EmbeddingRef { blocks, dim },
        classes,
        k: plan.k.clamp(1, rows.max(1)),
        rejection: Rejection {
            threshold,
            method: method.into(),
            false_reject_target: plan.unknown_false_reject,
            calibration_images,
        },
        data: DataRef {
            rows,
            dim,
            dtype: "f32le".into(),
            offset: 0,
            sha256: String::new(),
        },
        training: Training {
            classes_dir: plan.classes_dir.display().to_string(),
            holdout: plan.holdout,
            seed: plan.seed,
            seconds: 0.0,
            lineside_version: env!("CARGO_PKG_VERSION").into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::threshold;

    #[test]
    fn the_threshold_allows_the_false_reject_share() {
        let d: Vec<f32> = (1..=200).map(|i| i as f32 / 1000.0).collect();
        // 1% of 200 = 2 images may lie above: the third largest.
        assert_eq!(threshold(&d, 0.01).0, 0.198);
        // Fewer than 100 images: the largest.
        assert_eq!(threshold(&d[..30], 0.01).0, 0.030);
    }
}
