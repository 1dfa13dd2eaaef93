//! `lineside fit`: build a PatchCore model from good images, on the box.
//!
//! 1. List the scenario's good images; split off a seeded hold-out share.
//! 2. Run each training image through the backbone (ONNX Runtime) with the scenario's
//!    own preprocessing and collect one feature vector per patch.
//! 3. Keep a greedy k-center coreset of those patches: the memory bank.
//! 4. Score the hold-out images against the bank and set the thresholds and the
//!    normalisation from them (anomalib's rule when only good samples exist: the largest
//!    good score is the threshold).
//!
//! Tiled scenarios (`[head] tile`) fit and calibrate at the scale of inspection: training
//! images larger than a tile give `tiles_per_frame` tiles of the scenario's own grid, and
//! the hold-out frames are scored tile by tile exactly as `run` scores them; the image
//! threshold is the frame-level one of [`extreme`] (a false-reject rate per frame).
//! 5. Write the artifact (`docs/patchcore.md#artifact-format-lspc-version-1`).
//!
//! `[head] kind = "examples"` fits a teach-by-example classifier instead ([`examples`]);
//! [`head_kind`] tells the command which fit a scenario asks for.

mod calibration;
pub mod examples;
pub mod extreme;
mod holdout;
mod plan;

pub use holdout::split;

/// The `[head] kind` of the scenario at `path`, when it loads (errors are reported by
/// the fit plan that follows).
pub fn head_kind(path: &std::path::Path) -> Option<String> {
    crate::config::ScenarioFile::load(path)
        .ok()
        .map(|f| f.head_kind)
}
pub use plan::{fit_plan, FitPlan};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::dataset::{labelled_images, list_images, load_mask, load_rgb, DatasetError};
use crate::engine::{EngineError, InferenceSession, SessionOptions};
use crate::frame::{FrameLayout, PixelFormat};
use crate::heads::{PatchCoreScorer, TileSet, Tiling};
use crate::patchcore::artifact::*;
use crate::patchcore::coreset::{greedy_coreset, CoresetOptions};
use crate::patchcore::{
    FeatureLayout, MemoryBank, PatchAssembler, SplitMix64, TileSpec, LAYER_S16, LAYER_S8,
};
use crate::preprocess::{PreprocessError, Preprocessor};
use calibration::{Calibration, FrameScores};

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
    #[error(transparent)]
    ExamplesArtifact(#[from] crate::heads::examples::ExamplesArtifactError),
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
    /// Tiles (or whole images) the memory bank was drawn from.
    pub training_tiles: usize,
    /// Tiled scenarios: the tile count of the inspected frame the threshold was
    /// calibrated for.
    pub frame_tiles: Option<usize>,
    pub seconds: Seconds,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Seconds {
    pub features: f64,
    pub coreset: f64,
    pub calibration: f64,
    pub total: f64,
}

/// The backbone session: preprocessed image (or tile) → feature maps.
struct Backbone {
    session: InferenceSession,
}

/// One decoded image file.
struct Picture {
    path: PathBuf,
    rgb: Vec<u8>,
    layout: FrameLayout,
}

impl Picture {
    fn load(path: &std::path::Path) -> Result<Self, FitError> {
        let (rgb, w, h) = load_rgb(path)?;
        Ok(Picture {
            path: path.to_path_buf(),
            rgb,
            layout: FrameLayout::packed(w, h, PixelFormat::Rgb24),
        })
    }

    /// Whether a tiled scenario cuts this image into tiles (it is larger than one).
    fn is_frame(&self, tile: Option<TileSpec>) -> bool {
        tile.is_some_and(|t| self.layout.width > t.width || self.layout.height > t.height)
    }
}

impl Backbone {
    fn open(plan: &FitPlan, threads: usize) -> Result<Self, FitError> {
        Self::open_model(Arc::clone(&plan.model), &plan.preprocess, threads)
    }

    fn open_model(
        model: Arc<crate::engine::ModelInfo>,
        preprocess: &crate::preprocess::PreprocessSpec,
        threads: usize,
    ) -> Result<Self, FitError> {
        let session = InferenceSession::open(
            model,
            preprocess.tensor_shape(),
            // Fitting is offline work: always the CPU provider, whatever the scenario runs on.
            SessionOptions {
                intra_threads: threads,
                ..SessionOptions::default()
            },
        )?;
        Ok(Backbone { session })
    }

    /// Runs `pic` through `pre` (the scenario's preprocessing, or one tile's) and the
    /// backbone, and hands the two feature maps to `use_maps`.
    fn features<T>(
        &mut self,
        pre: &mut Preprocessor,
        pic: &Picture,
        use_maps: impl FnOnce(&[f32], &[f32]) -> T,
    ) -> Result<T, FitError> {
        pre.run(&pic.rgb, &pic.layout, self.session.input_mut())
            .map_err(|source| FitError::Preprocess {
                path: pic.path.clone(),
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

/// Mixed into the seed so the tile draw has its own stream.
const TILE_SALT: u64 = 0x711e_5a17;

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

    // 2. Patch features of every training image (tiled scenarios: of tiles drawn from
    // each image larger than a tile, on the grid `run` will use).
    let mut assembler = PatchAssembler::new(layout);
    let mut whole = Preprocessor::new(plan.preprocess.clone());
    let mut tiles = plan.tile.map(|spec| {
        TileSet::new(Tiling {
            spec,
            stretch: true,
        })
    });
    let mut draw = SplitMix64::new(plan.seed ^ TILE_SALT);
    let mut features: Vec<f32> = Vec::new();
    let mut add_patches =
        |backbone: &mut Backbone, pre: &mut Preprocessor, pic: &Picture| -> Result<(), FitError> {
            let start = features.len();
            features.resize(start + per_image * dim, 0.0);
            backbone.features(pre, pic, |s8, s16| {
                assembler.assemble(s8, s16, &mut features[start..])
            })
        };
    let pb = bar(train.len() as u64, "features", opts);
    for &i in &train {
        let pic = Picture::load(&files[i])?;
        match tiles.as_mut().filter(|_| pic.is_frame(plan.tile)) {
            Some(set) => {
                let (_, grid) = set
                    .for_frame(&plan.preprocess, pic.layout.width, pic.layout.height)
                    .map_err(|source| FitError::Preprocess {
                        path: pic.path.clone(),
                        source,
                    })?;
                let mut order: Vec<usize> = (0..grid.len()).collect();
                draw.shuffle(&mut order);
                let take = match plan.tiles_per_frame {
                    0 => order.len(),
                    n => n.min(order.len()),
                };
                for &t in &order[..take] {
                    add_patches(&mut backbone, &mut grid[t].pre, &pic)?;
                }
            }
            None => add_patches(&mut backbone, &mut whole, &pic)?,
        }
        pb.inc(1);
    }
    pb.finish();
    let t_features = t0.elapsed().as_secs_f64();

    // 3. Coreset.
    let patches = features.len() / dim.max(1);
    let training_tiles = patches / per_image.max(1);
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
    let mut frames = FrameScores::default();
    let pb = bar((holdout.len() + validation.len()) as u64, "calibrate", opts);
    for &i in &holdout {
        let pic = Picture::load(&files[i])?;
        let Some(set) = tiles.as_mut() else {
            let s = backbone.features(&mut whole, &pic, |s8, s16| {
                scorer.score_features(s8, s16, &mut map)
            })?;
            cal.add(s, false, &map, Some(&vec![false; map.len()]));
            pb.inc(1);
            continue;
        };
        // As `run` scores a frame: every tile of the grid; the frame score is the
        // largest tile score.
        let (_, grid) = set
            .for_frame(&plan.preprocess, pic.layout.width, pic.layout.height)
            .map_err(|source| FitError::Preprocess {
                path: pic.path.clone(),
                source,
            })?;
        let mut frame = f32::NEG_INFINITY;
        for tile in grid.iter_mut() {
            let s = backbone.features(&mut tile.pre, &pic, |s8, s16| {
                scorer.score_features(s8, s16, &mut map)
            })?;
            frames.add_tile(s, &map);
            frame = frame.max(s);
            // Good tiles set the normalisation range; their pixels stay out of the
            // pixel F1 (the validation images decide it where there are any).
            cal.add(s, false, &map, None);
        }
        frames.frames.push(frame);
        frames.tiles_per_frame = frames.tiles_per_frame.max(grid.len());
        pb.inc(1);
    }
    for item in &validation {
        let pic = Picture::load(&item.image)?;
        let s = backbone.features(&mut whole, &pic, |s8, s16| {
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
    let mut frame_tiles = None;
    if let Some(set) = tiles.as_mut() {
        let count = match plan.frame_size {
            Some([w, h]) => {
                set.for_frame(&plan.preprocess, w, h)
                    .map_err(|source| FitError::Preprocess {
                        path: plan.file.clone(),
                        source,
                    })?
                    .0
                    .count
            }
            None => frames.tiles_per_frame.max(1),
        };
        let pixel_f1 = cal.pixel_is_f1();
        frames.calibrate(
            &mut header.thresholds,
            count,
            f64::from(plan.frame_false_reject),
            pixel_f1,
        );
        frame_tiles = Some(count);
    }
    let (img_t, pix_t) = (
        header.thresholds.image.threshold,
        header.thresholds.pixel.threshold,
    );
    let t_cal = t2.elapsed().as_secs_f64();
    header.training.seconds = (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let bank_rows = artifact.bank.rows();
    let sha = Artifact::write(&plan.artifact, &mut header, &artifact.bank.rows_as_given())?;
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
        training_tiles,
        frame_tiles,
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
