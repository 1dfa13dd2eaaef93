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
mod plan;
pub mod semantic;

pub use plan::{ActivationSetting, KIND};

use std::sync::Arc;

use ort::session::SessionOutputs;

use super::box_measure::BoxMeasures;
use super::count_rules::{apply_count_rules, CountRule};
use super::{FrameGeometry, FrameRef, Head, HeadError, TileLayout, TileView, Tiling};
use crate::patchcore::TileSpec;
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
    /// `[[rules.measure]]` on the regions.
    pub measures: Arc<BoxMeasures>,
    /// Class maps: inspect the frame as overlapping tiles (the worker drives it).
    pub tile: Option<TileSpec>,
}

enum Segmenter {
    Semantic(SemanticSegmenter),
    Instances(InstanceSegmenter),
}

pub struct SegmentHead {
    segmenter: Segmenter,
    cfg: SegmentConfig,
    /// Frame rectangle of the last class map (evidence images).
    map_box: [f32; 4],
}

impl SegmentHead {
    pub fn new(cfg: SegmentConfig) -> Self {
        let segmenter = match &cfg.mode {
            SegmentMode::Semantic(c) => Segmenter::Semantic(SemanticSegmenter::new(c.clone())),
            SegmentMode::Instances(c) => Segmenter::Instances(InstanceSegmenter::new(c.clone())),
        };
        SegmentHead {
            segmenter,
            cfg,
            map_box: [0.0; 4],
        }
    }

    pub fn max_regions(&self) -> usize {
        self.cfg.max_regions
    }

    pub fn failures_capacity(&self) -> usize {
        (self.cfg.count_rules.len() + self.cfg.measures.rules.len()).max(4)
    }

    pub fn tile_spec(&self) -> Option<TileSpec> {
        match self.segmenter {
            Segmenter::Semantic(_) => self.cfg.tile,
            Segmenter::Instances(_) => None,
        }
    }

    /// Starts a tiled frame (class maps); the stitched map is `width` x `height`.
    pub fn begin_tiles(&mut self, width: usize, height: usize) {
        if let Segmenter::Semantic(s) = &mut self.segmenter {
            s.begin_tiles(width, height);
        }
    }

    /// Labels one tile's outputs into the stitched map at `(x, y)`.
    pub fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        x: usize,
        y: usize,
    ) -> Result<(), HeadError> {
        match &mut self.segmenter {
            Segmenter::Semantic(s) => s.add_tile(outputs, x, y),
            Segmenter::Instances(_) => Ok(()),
        }
    }

    /// Regions of the stitched map and the verdict; `geometry` maps stitched-map pixels to
    /// frame pixels.
    pub fn finish_tiles(
        &mut self,
        geometry: &FrameGeometry,
        frame_size: (u32, u32),
        out: &mut Inspection,
    ) {
        let c = &self.cfg;
        if let Segmenter::Semantic(s) = &mut self.segmenter {
            s.regions(geometry, frame_size, c.min_area_px, c.mm_per_px, out);
        }
        self.map_box = super::map_frame_box(geometry);
        self.decide(out);
    }

    fn decide(&self, out: &mut Inspection) {
        out.score = out.defects.iter().map(|d| d.score).reduce(f32::max);
        apply_count_rules(&self.cfg.count_rules, out);
        self.cfg.measures.apply(out);
    }

    pub fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame_size: (u32, u32),
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let c = &self.cfg;
        self.map_box = super::map_frame_box(geometry);
        match &mut self.segmenter {
            Segmenter::Semantic(s) => {
                s.segment(outputs)?;
                s.regions(geometry, frame_size, c.min_area_px, c.mm_per_px, out);
            }
            Segmenter::Instances(s) => {
                s.segment(outputs, geometry, frame_size, c.min_area_px, out)?;
            }
        }
        self.decide(out);
        Ok(())
    }
}

impl Head for SegmentHead {
    fn inspection(&self) -> Inspection {
        let mut i = Inspection::with_capacity(0, self.max_regions());
        i.failures.reserve(self.failures_capacity());
        i.measurements.reserve(self.cfg.measures.rules.len());
        i
    }

    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        SegmentHead::interpret(self, outputs, geometry, frame.size(), out)
    }

    fn tiling(&self) -> Option<Tiling> {
        self.tile_spec().map(|spec| Tiling {
            spec,
            stretch: true,
        })
    }

    fn begin_tiles(&mut self, layout: &TileLayout) {
        SegmentHead::begin_tiles(self, layout.map_size.0, layout.map_size.1);
    }

    fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        tile: &TileView<'_>,
    ) -> Result<(), HeadError> {
        SegmentHead::add_tile(self, outputs, tile.map_xy.0, tile.map_xy.1)
    }

    fn finish_tiles(&mut self, layout: &TileLayout, frame: FrameRef<'_>, out: &mut Inspection) {
        SegmentHead::finish_tiles(self, &layout.geometry, frame.size(), out);
    }

    fn evidence(&self) -> Option<super::Evidence<'_>> {
        let (classes, (width, height)) = match &self.segmenter {
            Segmenter::Semantic(s) => s.class_map(),
            Segmenter::Instances(s) => s.class_map(),
        };
        Some(super::Evidence {
            score: 0.0,
            map: &[],
            classes,
            width,
            height,
            frame_box: self.map_box,
        })
    }
}
