//! PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", 2022)
//! on lineside's own backbone: the pieces shared by fitting (`lineside fit`) and by the
//! anomaly head that runs a fitted model.
//!
//! - [`features`]: backbone feature maps → one locally averaged feature vector per patch.
//! - [`coreset`]: greedy k-center subsampling of the training patches (the memory bank).
//! - [`knn`]: nearest-neighbour distance of each patch to the bank (blocked, SIMD, rayon).
//! - `clusters`: the bank grouped at load, so the exact search skips most of it.
//! - [`map`]: patch distances → anomaly map at input resolution (bilinear + Gaussian).
//! - [`tiles`]: frames larger than the input, as overlapping tiles.
//! - [`artifact`]: the versioned file a fit writes and the head reads
//!   (format documented in `docs/patchcore.md#artifact-format-lspc-version-1`).

pub mod artifact;
mod clusters;
pub mod coreset;
pub mod features;
pub mod knn;
pub mod map;
mod rng;
pub mod tiles;

pub use artifact::{Artifact, ArtifactError, ArtifactHeader};
pub use features::{FeatureLayout, PatchAssembler};
pub use knn::{MemoryBank, NnScratch};
pub use map::MapBuilder;
pub use rng::SplitMix64;
pub use tiles::{tile_grid, TileSpec};

/// The backbone outputs PatchCore reads: stride-8 and stride-16 feature maps.
pub const LAYER_S8: &str = "feat_s8";
pub const LAYER_S16: &str = "feat_s16";
/// Sigma of the Gaussian that smooths the anomaly map, in input pixels (the paper's 4).
pub const BLUR_SIGMA: f32 = 4.0;
