//! Segmentation: models that label pixels, turned into regions (class, box, area, score)
//! that the count rules judge like detections.
//!
//! - [`semantic`]: one output `[1, C, H, W]` of per-pixel class logits or probabilities
//!   (C = 1: a probability/logit map of one defect class) → per-pixel class → 8-connected
//!   regions per class, each with its mean probability.
//! - [`instances`]: Ultralytics YOLOv8/YOLO11 segmentation exports (`output0`
//!   `[1, 4 + nc + nm, N]` boxes + mask coefficients, `output1` `[1, nm, mh, mw]` mask
//!   prototypes) → the detect head's NMS → one mask per box from the prototypes → its
//!   area.

pub mod instances;
pub mod semantic;

use std::sync::Arc;

use ort::session::SessionOutputs;

use super::count_rules::{apply_count_rules, CountRule};
use super::{FrameGeometry, HeadError};
use crate::verdict::Inspection;

pub use instances::{InstanceConfig, InstanceSegmenter};
pub use semantic::{Activation, SemanticConfig, SemanticSegmenter};

#[derive(Debug, Clone)]
pub enum SegmentMode {
    Semantic(SemanticConfig),
    Instances(InstanceConfig),
}

#[derive(Debug, Clone)]
pub struct SegmentConfig {
    pub mode: SegmentMode,
    /// Regions smaller than this many frame pixels are ignored (`[rules] min_defect_area_px`).
    pub min_area_px: f32,
    /// Frame pixel size in millimetres, for areas in mm².
    pub mm_per_px: Option<f32>,
    /// Regions listed per frame at most (the rest are counted).
    pub max_regions: usize,
    pub count_rules: Arc<[CountRule]>,
}

enum Segmenter {
    Semantic(SemanticSegmenter),
    Instances(InstanceSegmenter),
}

pub struct SegmentHead {
    segmenter: Segmenter,
    cfg: SegmentConfig,
}

impl SegmentHead {
    pub fn new(cfg: SegmentConfig) -> Self {
        let segmenter = match &cfg.mode {
            SegmentMode::Semantic(c) => Segmenter::Semantic(SemanticSegmenter::new(c.clone())),
            SegmentMode::Instances(c) => Segmenter::Instances(InstanceSegmenter::new(c.clone())),
        };
        SegmentHead { segmenter, cfg }
    }

    pub fn max_regions(&self) -> usize {
        self.cfg.max_regions
    }

    pub fn failures_capacity(&self) -> usize {
        self.cfg.count_rules.len().max(4)
    }

    pub fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame_size: (u32, u32),
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let c = &self.cfg;
        match &mut self.segmenter {
            Segmenter::Semantic(s) => {
                s.segment(outputs)?;
                s.regions(geometry, frame_size, c.min_area_px, c.mm_per_px, out);
            }
            Segmenter::Instances(s) => {
                s.segment(outputs, geometry, frame_size, c.min_area_px, out)?;
            }
        }
        out.score = out.defects.iter().map(|d| d.score).reduce(f32::max);
        apply_count_rules(&c.count_rules, out);
        Ok(())
    }
}
