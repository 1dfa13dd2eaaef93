//! `lineside fit`: build a PatchCore model from good images, on the box.
//!
//! 1. List the scenario's good images; split off a seeded hold-out share.
//! 2. Run each training image through the backbone (ONNX Runtime) with the scenario's
//!    own preprocessing and collect one feature vector per patch.
//! 3. Keep a greedy k-center coreset of those patches: the memory bank.
//! 4. Score the hold-out images against the bank and set the thresholds and the
//!    normalisation from them (anomalib's rule when only good samples exist: the largest
//!    good score is the threshold).
//! 5. Write the artifact (`docs/patchcore.md#artifact-format-lspc-version-1`).

mod calibration;
mod holdout;
mod plan;

pub use holdout::split;
pub use plan::{fit_plan, FitPlan};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::dataset::{labelled_images, list_images, load_mask, load_rgb, DatasetError};
use crate::engine::{EngineError, InferenceSession, SessionOptions};
use crate::frame::{FrameLayout, PixelFormat};
use crate::heads::PatchCoreScorer;
use crate::patchcore::artifact::*;
use crate::patchcore::coreset::{greedy_coreset, CoresetOptions};
use crate::patchcore::{FeatureLayout, MemoryBank, PatchAssembler, LAYER_S16, LAYER_S8};
use crate::preprocess::{PreprocessError, Preprocessor};
use calibration::Calibration;

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(transparent)]
    Data(#[from] DatasetError),
    #[error(
        "{dir} holds {found} good image(s); fitting needs at least {need} (PNG, JPEG or BMP).\n\
         Fix: add more photos of good parts, or lower [fit] min_images"
    )]
    TooFewImages {
        dir: PathBuf,
        found: usize,
        need: usize,
    },
    #[error("image {path}: {source}")]
    Preprocess {
        path: PathBuf,
        source: PreprocessError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("backbone output `{name}`: {reason}")]
    Output { name: String, reason: String },
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    pub progress: bool,
    /// ONNX Runtime intra-op threads (fitting owns the machine while it runs).
    pub threads: usize,
}

/// What a fit did, for the terminal and for scripts (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub scenario: String,
    pub artifact: PathBuf,
    pub artifact_sha256: String,
    pub train_images: usize,
    pub holdout_images: usize,
    pub patches: usize,
    pub bank_rows: usize,
    pub dim: usize,
    pub image_threshold: f32,
    pub pixel_threshold: f32,
    /// How the thresholds were chosen.
    pub calibration: String,
    /// Labelled validation images read (`[fit] validation`), good and defective.
    pub validation_images: usize,
    pub seconds: Seconds,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Seconds {
    pub features: f64,
    pub coreset: f64,
    pub calibration: f64,
    pub total: f64,
}

/// The backbone with the scenario's preprocessing: image file → feature maps.
struct Backbone {
    pre: Preprocessor,
    session: InferenceSession,
}

impl Backbone {
    fn open(plan: &FitPlan, threads: usize) -> Result<Self, FitError> {
        let session = InferenceSession::open(
            Arc::clone(&plan.model),
            plan.preprocess.tensor_shape(),
            // Fitting is offline work: always the CPU provider, whatever the scenario runs on.
            SessionOptions {
                intra_threads: threads,
                ..SessionOptions::default()
            },
        )?;
        Ok(Backbone {
            pre: Preprocessor::new(plan.preprocess.clone()),
            session,
        })
    }

    /// Runs one image and hands the two feature maps to `use_maps`.
    fn features<T>(
        &mut self,
        path: &std::path::Path,
        use_maps: impl FnOnce(&[f32], &[f32]) -> T,
    ) -> Result<T, FitError> {
        let (rgb, w, h) = load_rgb(path)?;
        let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
        self.pre
            .run(&rgb, &layout, self.session.input_mut())
            .map_err(|source| FitError::Preprocess {
                path: path.to_path_buf(),
                source,
            })?;
        let outputs = self.session.run()?;
        let get = |name: &str| {
            outputs
                .get(name)
                .ok_or_else(|| FitError::Output {
                    name: name.into(),
                    reason: "missing".into(),
                })?
                .try_extract_tensor::<f32>()
                .map(|(_, d)| d)
                .map_err(|e| FitError::Output {
                    name: name.into(),
                    reason: e.to_string(),
                })
        };
        Ok(use_maps(get(LAYER_S8)?, get(LAYER_S16)?))
    }
}

fn bar(len: u64, what: &str, opts: &FitOptions) -> ProgressBar {
    let b = ProgressBar::new(len);
    if !opts.progress {
        b.set_draw_target(ProgressDrawTarget::hidden());
    }
    b.set_style(
        ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_prefix(what.to_string());
    b
}

pub fn fit(plan: &FitPlan, opts: &FitOptions) -> Result<FitReport, FitError> {
    let t0 = Instant::now();
    let files = list_images(&plan.train_dir)?;
    if files.len() < plan.min_images {
        return Err(FitError::TooFewImages {
            dir: plan.train_dir.clone(),
            found: files.len(),
            need: plan.min_images,
        });
    }
    let (train, holdout) = split(files.len(), plan.holdout, plan.seed);
    let mut backbone = Backbone::open(plan, opts.threads)?;
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
    let spec = &plan.preprocess;
    let layout = FeatureLayout::for_input(
        channels(LAYER_S8)?,
        channels(LAYER_S16)?,
        spec.width,
        spec.height,
    );
    let (dim, per_image) = (layout.dim(), layout.patches());

    // 2. Patch features of every training image.
    let mut assembler = PatchAssembler::new(layout);
    let mut features = vec![0.0f32; train.len() * per_image * dim];
    let pb = bar(train.len() as u64, "features", opts);
    for (slot, &i) in train.iter().enumerate() {
        let dst = &mut features[slot * per_image * dim..(slot + 1) * per_image * dim];
        backbone.features(&files[i], |s8, s16| assembler.assemble(s8, s16, dst))?;
        pb.inc(1);
    }
    pb.finish();
    let t_features = t0.elapsed().as_secs_f64();

    // 3. Coreset.
    let patches = train.len() * per_image;
    // round(n x ratio): f32 ratios such as 0.1 sit slightly above their decimal value.
    let k = ((patches as f64 * f64::from(plan.coreset_ratio)).round() as usize).clamp(1, patches);
    let pb = bar(k as u64, "coreset", opts);
    let t1 = Instant::now();
    let chosen = greedy_coreset(
        &features,
        dim,
        CoresetOptions {
            size: k,
            projection_dim: plan.projection_dim,
            seed: plan.seed,
        },
        |n| pb.set_position(n as u64),
    );
    pb.finish();
    let mut bank = Vec::with_capacity(chosen.len() * dim);
    for &c in &chosen {
        bank.extend_from_slice(&features[c * dim..(c + 1) * dim]);
    }
    drop(features);
    let t_coreset = t1.elapsed().as_secs_f64();

    // 4. Calibration on the hold-out images.
    let t2 = Instant::now();
    let mut header = header(plan, layout, chosen.len(), patches, holdout.len());
    let artifact = Arc::new(Artifact {
        path: plan.artifact.clone(),
        sha256: String::new(),
        header: header.clone(),
        bank: MemoryBank::new(bank, dim),
    });
    let mut scorer = PatchCoreScorer::new(Arc::clone(&artifact));
    let (mw, mh) = scorer.map_size();
    let validation = match &plan.validation {
        Some(v) => labelled_images(v, &v.join("ground_truth"))?,
        None => Vec::new(),
    };
    let mut cal = Calibration::default();
    let mut map = vec![0.0f32; mw * mh];
    let pb = bar((holdout.len() + validation.len()) as u64, "calibrate", opts);
    for &i in &holdout {
        let s = backbone.features(&files[i], |s8, s16| {
            scorer.score_features(s8, s16, &mut map)
        })?;
        cal.add(s, false, &map, Some(&vec![false; map.len()]));
        pb.inc(1);
    }
    for item in &validation {
        let s = backbone.features(&item.image, |s8, s16| {
            scorer.score_features(s8, s16, &mut map)
        })?;
        // A defect image without a mask still counts for the image threshold; its pixels
        // are left out of the pixel threshold (their labels are unknown).
        let labels = match &item.mask {
            Some(m) if m.is_file() => Some(load_mask(Some(m), mw, mh)?),
            Some(_) => None,
            None => Some(vec![false; map.len()]),
        };
        cal.add(s, !item.is_good(), &map, labels.as_deref());
        pb.inc(1);
    }
    pb.finish();
    header.thresholds = cal.thresholds(holdout.len(), validation.len());
    let (img_t, pix_t) = (
        header.thresholds.image.threshold,
        header.thresholds.pixel.threshold,
    );
    let t_cal = t2.elapsed().as_secs_f64();
    header.training.seconds = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let bank_rows = artifact.bank.rows();
    let sha = Artifact::write(&plan.artifact, &mut header, artifact.bank.data())?;
    Ok(FitReport {
        scenario: plan.scenario.clone(),
        artifact: plan.artifact.clone(),
        artifact_sha256: sha,
        train_images: train.len(),
        holdout_images: holdout.len(),
        patches,
        bank_rows,
        dim,
        image_threshold: img_t,
        pixel_threshold: pix_t,
        calibration: header.thresholds.method.clone(),
        validation_images: validation.len(),
        seconds: Seconds {
            features: t_features,
            coreset: t_coreset,
            calibration: t_cal,
            total: t0.elapsed().as_secs_f64(),
        },
    })
}

fn header(
    plan: &FitPlan,
    layout: FeatureLayout,
    rows: usize,
    patches: usize,
    holdout: usize,
) -> ArtifactHeader {
    let spec = &plan.preprocess;
    let placeholder = Normalisation {
        threshold: 0.0,
        min: 0.0,
        max: 1.0,
    };
    ArtifactHeader {
        format: "lineside-patchcore".into(),
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
            outputs: [LAYER_S8.into(), LAYER_S16.into()],
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
        features: FeaturesRef {
            map_width: layout.w,
            map_height: layout.h,
            stride: 8,
            channels: [layout.c8, layout.c16],
            dim: layout.dim(),
            pool: 3,
        },
        bank: BankRef {
            rows,
            dim: layout.dim(),
            dtype: "f32le".into(),
            offset: 0,
            sha256: String::new(),
        },
        coreset: CoresetRef {
            ratio: plan.coreset_ratio,
            projection_dim: plan.projection_dim,
            seed: plan.seed,
            patches,
        },
        scoring: ScoringRef {
            image_score: "max_patch_distance".into(),
            blur_sigma: crate::patchcore::BLUR_SIGMA,
        },
        thresholds: Thresholds {
            image: placeholder,
            pixel: placeholder,
            method: String::new(),
            calibration_images: holdout,
        },
        training: TrainingRef {
            train_dir: plan.train_dir.display().to_string(),
            images: patches / layout.patches().max(1),
            holdout_images: holdout,
            seconds: 0.0,
            lineside_version: env!("CARGO_PKG_VERSION").into(),
        },
    }
}
