//! Scoring a frame with a fitted PatchCore model: the backbone's two feature maps →
//! patch features → nearest-neighbour distance to the memory bank → anomaly map at
//! model-input resolution. Every buffer is sized once from the artifact; a frame
//! allocates nothing here.
//!
//! The anomaly head ([`super::anomaly`]) normalises the result and turns it into a verdict
//! and defect regions exactly as it does for an anomalib export.

use std::sync::Arc;

use ort::session::SessionOutputs;

mod plan;

pub use plan::{backbone_defaults, check_backbone, PatchCoreHeadKeys, KIND};

use super::{f32_output, HeadError};
use crate::patchcore::{Artifact, FeatureLayout, MapBuilder, NnScratch, PatchAssembler};

pub struct PatchCoreScorer {
    artifact: Arc<Artifact>,
    assembler: PatchAssembler,
    queries: Vec<f32>,
    distances: Vec<f32>,
    nn: NnScratch,
    map: MapBuilder,
}

impl PatchCoreScorer {
    pub fn new(artifact: Arc<Artifact>) -> Self {
        let h = &artifact.header;
        let layout = FeatureLayout::for_input(
            h.features.channels[0],
            h.features.channels[1],
            h.preprocess.width,
            h.preprocess.height,
        );
        let patches = layout.patches();
        let mut nn = NnScratch::default();
        nn.ensure(&artifact.bank, patches);
        PatchCoreScorer {
            assembler: PatchAssembler::new(layout),
            queries: vec![0.0; patches * layout.dim()],
            distances: vec![0.0; patches],
            nn,
            map: MapBuilder::new(
                layout.w,
                layout.h,
                h.preprocess.width,
                h.preprocess.height,
                h.scoring.blur_sigma.max(f32::EPSILON),
            ),
            artifact,
        }
    }

    pub fn artifact(&self) -> &Arc<Artifact> {
        &self.artifact
    }

    /// Width and height of the anomaly map (the model input size).
    pub fn map_size(&self) -> (usize, usize) {
        self.map.out_size()
    }

    /// Patch distances of the last frame, `[map_h, map_w]`.
    pub fn patch_distances(&self) -> &[f32] {
        &self.distances
    }

    /// Reads the backbone outputs named in the artifact, writes the raw anomaly map
    /// (distances, input resolution) into `map_out` and returns the raw image score.
    pub fn score_outputs(
        &mut self,
        outputs: &SessionOutputs<'_>,
        map_out: &mut [f32],
    ) -> Result<f32, HeadError> {
        let [n8, n16] = &self.artifact.header.backbone.outputs;
        let (sh8, s8) = f32_output(outputs, n8)?;
        let (sh16, s16) = f32_output(outputs, n16)?;
        let l = *self.assembler.layout();
        if s8.len() != l.c8 * l.h * l.w {
            return Err(HeadError::Shape {
                name: n8.clone(),
                shape: sh8.to_vec(),
                expected: "does not match the grid the model was fitted on",
            });
        }
        if s16.len() != l.c16 * l.h16 * l.w16 {
            return Err(HeadError::Shape {
                name: n16.clone(),
                shape: sh16.to_vec(),
                expected: "does not match the grid the model was fitted on",
            });
        }
        Ok(self.score_features(s8, s16, map_out))
    }

    /// As [`Self::score_outputs`], from the feature maps themselves (CHW, batch 1).
    pub fn score_features(&mut self, s8: &[f32], s16: &[f32], map_out: &mut [f32]) -> f32 {
        self.assembler.assemble(s8, s16, &mut self.queries);
        self.artifact
            .bank
            .nearest(&self.queries, &mut self.distances, &mut self.nn);
        self.map.build(&self.distances, map_out);
        // The paper's image score: the largest patch distance.
        self.distances
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
    }
}
