//! One inference worker: preprocess → infer → interpret, with everything it touches
//! allocated once up front.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{HeadPlan, ScenarioPlan};
use crate::engine::{EngineError, InferenceSession, SessionOptions};
use crate::frame::FrameLayout;
use crate::heads::{
    AnomalyConfig, AnomalyHead, AnomalyScoring, ClassifyHead, DetectHead, Evidence, FrameGeometry,
    FrameRef, Head, HeadError, OcrConfig, OcrHead, SegmentHead, TileCut,
};
use crate::patchcore::{tile_grid, TileSpec};
use crate::preprocess::{Fit, PreprocessError, PreprocessSpec, Preprocessor, Rect, Transform};
use crate::verdict::Inspection;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("preprocessing: {0}")]
    Preprocess(#[from] PreprocessError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("interpreting outputs: {0}")]
    Head(#[from] HeadError),
}

/// Time spent in each stage for one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub infer: Duration,
    pub head: Duration,
}

pub struct Worker {
    preprocessor: Preprocessor,
    session: InferenceSession,
    head: Head,
    tiles: Option<Tiles>,
}

/// Tiled inspection (`[head] tile`): one preprocessor per tile (its roi is the tile).
/// Anomaly heads stitch the tile maps into one map over the frame; detect heads gather
/// every tile's boxes into one NMS. Rebuilt only when the frame size changes.
struct Tiles {
    spec: TileSpec,
    /// Anomaly maps: tiles are stretched to the model input (detection keeps its fit).
    stretch: bool,
    frame: (u32, u32),
    tiles: Vec<Tile>,
    map_size: (usize, usize),
    geometry: Option<FrameGeometry>,
}

struct Tile {
    pre: Preprocessor,
    /// Where the tile's map lands in the stitched map.
    map_xy: (usize, usize),
    /// Tile edges inside the region, where objects are cut.
    cut: TileCut,
}

impl Tiles {
    fn new(spec: TileSpec, stretch: bool) -> Tiles {
        Tiles {
            spec,
            stretch,
            frame: (0, 0),
            tiles: Vec::new(),
            map_size: (0, 0),
            geometry: None,
        }
    }

    fn replan(
        &mut self,
        base: &PreprocessSpec,
        width: u32,
        height: u32,
    ) -> Result<(), PreprocessError> {
        let region = match base.roi {
            Some(r) if r.x + r.width > width || r.y + r.height > height => {
                return Err(PreprocessError::RoiOutside {
                    roi: r,
                    width,
                    height,
                })
            }
            Some(r) => r,
            None => Rect {
                x: 0,
                y: 0,
                width,
                height,
            },
        };
        let rects = tile_grid(region, &self.spec);
        let (tw, th) = (rects[0].width as usize, rects[0].height as usize);
        let (iw, ih) = (base.width, base.height);
        // Map pixels per frame pixel: input / tile (1 when tiles are input-sized).
        let map_w = (region.width as usize * iw).div_ceil(tw).max(iw);
        let map_h = (region.height as usize * ih).div_ceil(th).max(ih);
        let inner = |at: u32, lo: u32, hi: u32| (at > lo && at < hi).then_some(at as f32);
        let (rx1, ry1) = (region.x + region.width, region.y + region.height);
        self.tiles = rects
            .iter()
            .map(|r| {
                let mut spec = base.clone();
                spec.roi = Some(*r);
                if self.stretch {
                    spec.fit = Fit::Stretch;
                }
                let x = ((r.x - region.x) as usize * iw / tw).min(map_w - iw);
                let y = ((r.y - region.y) as usize * ih / th).min(map_h - ih);
                let cut = TileCut {
                    edges: [
                        inner(r.x, region.x, rx1),
                        inner(r.y, region.y, ry1),
                        inner(r.x + r.width, region.x, rx1),
                        inner(r.y + r.height, region.y, ry1),
                    ],
                };
                Tile {
                    pre: Preprocessor::new(spec),
                    map_xy: (x, y),
                    cut,
                }
            })
            .collect();
        self.map_size = (map_w, map_h);
        self.geometry = Some(FrameGeometry {
            transform: Transform {
                origin: (region.x as f32, region.y as f32),
                scale: (tw as f32 / iw as f32, th as f32 / ih as f32),
                pad: (0.0, 0.0),
            },
            input: (map_w, map_h),
        });
        self.frame = (width, height);
        Ok(())
    }
}

impl Worker {
    pub fn new(plan: &ScenarioPlan, intra_threads: usize) -> Result<Worker, EngineError> {
        let spec = plan.preprocess.clone();
        let mut session = InferenceSession::open(
            Arc::clone(&plan.model),
            spec.tensor_shape(),
            SessionOptions { intra_threads },
        )?;
        if let HeadPlan::Anomaly(AnomalyConfig {
            scoring: AnomalyScoring::Fitted(a),
            ..
        }) = &plan.head
        {
            // The backbone's feature maps follow the input size, which is fixed here:
            // preallocated, ONNX Runtime writes them in place every frame.
            let h = &a.header;
            let (w, hh) = (h.preprocess.width, h.preprocess.height);
            let [c8, c16] = h.features.channels;
            session.preallocate_outputs(&[
                (h.backbone.outputs[0].as_str(), vec![1, c8, hh / 8, w / 8]),
                (
                    h.backbone.outputs[1].as_str(),
                    vec![1, c16, hh / 16, w / 16],
                ),
            ])?;
        }
        let head = match &plan.head {
            HeadPlan::Classify(c) => Head::Classify(ClassifyHead::new(c.clone())),
            HeadPlan::Anomaly(c) => Head::Anomaly(Box::new(AnomalyHead::new(c.clone()))),
            HeadPlan::Ocr(c) => Head::Ocr(Box::new(OcrHead::new(OcrConfig {
                intra_threads,
                ..c.clone()
            })?)),
            HeadPlan::Detect(c) => Head::Detect(Box::new(DetectHead::new(c.clone()))),
            HeadPlan::Segment(c) => Head::Segment(Box::new(SegmentHead::new(c.clone()))),
        };
        let tiles = match &head {
            Head::Anomaly(h) => h.tile_spec().map(|spec| Tiles::new(spec, true)),
            Head::Detect(h) => h.tile_spec().map(|spec| Tiles::new(spec, false)),
            Head::Segment(h) => h.tile_spec().map(|spec| Tiles::new(spec, true)),
            Head::Classify(_) | Head::Ocr(_) => None,
        };
        Ok(Worker {
            preprocessor: Preprocessor::new(spec),
            session,
            head,
            tiles,
        })
    }

    /// An [`Inspection`] with the capacity this worker's head needs.
    pub fn new_inspection(&self) -> Inspection {
        self.head.inspection()
    }

    /// The anomaly head's score and map for the last frame (`lineside eval` reads them).
    pub fn anomaly_evidence(&self) -> Option<Evidence<'_>> {
        self.head.anomaly_evidence()
    }

    pub fn session(&self) -> &InferenceSession {
        &self.session
    }

    /// Inspects one frame's pixels, writing the result into `out`.
    pub fn process(
        &mut self,
        bytes: &[u8],
        layout: &FrameLayout,
        out: &mut Inspection,
    ) -> Result<StageTimes, WorkerError> {
        if self.tiles.is_some() {
            return self.process_tiled(bytes, layout, out);
        }
        let t0 = Instant::now();
        let transform = self
            .preprocessor
            .run(bytes, layout, self.session.input_mut())?;
        let t1 = Instant::now();
        let spec = self.preprocessor.spec();
        let geometry = FrameGeometry {
            transform,
            input: (spec.width, spec.height),
        };
        let outputs = self.session.run()?;
        let t2 = Instant::now();
        let frame = FrameRef { bytes, layout };
        self.head.interpret(&outputs, &geometry, frame, out)?;
        let t3 = Instant::now();
        Ok(StageTimes {
            preprocess: t1 - t0,
            infer: t2 - t1,
            head: t3 - t2,
        })
    }

    /// As [`Self::process`], tile by tile: each tile is preprocessed and run; an anomaly
    /// head averages the tile maps into one map over the frame, a detect head puts every
    /// tile's boxes through one NMS; the head decides once.
    fn process_tiled(
        &mut self,
        bytes: &[u8],
        layout: &FrameLayout,
        out: &mut Inspection,
    ) -> Result<StageTimes, WorkerError> {
        let Some(tiles) = self.tiles.as_mut() else {
            return Ok(StageTimes::default());
        };
        layout.check(bytes.len()).map_err(PreprocessError::from)?;
        if tiles.frame != (layout.width, layout.height) {
            tiles.replan(self.preprocessor.spec(), layout.width, layout.height)?;
            if let Head::Detect(h) = &mut self.head {
                h.reserve_tiles(tiles.tiles.len());
            }
        }
        let mut times = StageTimes::default();
        out.clear();
        match &mut self.head {
            Head::Anomaly(h) => h.begin_tiles(tiles.map_size.0, tiles.map_size.1),
            Head::Detect(h) => h.begin_tiles(),
            Head::Segment(h) => h.begin_tiles(tiles.map_size.0, tiles.map_size.1),
            Head::Classify(_) | Head::Ocr(_) => return Ok(times),
        }
        for (i, tile) in tiles.tiles.iter_mut().enumerate() {
            let t0 = Instant::now();
            let transform = tile.pre.run(bytes, layout, self.session.input_mut())?;
            let t1 = Instant::now();
            let outputs = self.session.run()?;
            let t2 = Instant::now();
            match &mut self.head {
                Head::Anomaly(h) => h.add_tile(&outputs, tile.map_xy.0, tile.map_xy.1)?,
                Head::Detect(h) => h.add_tile(&outputs, &transform, i, &tile.cut)?,
                Head::Segment(h) => h.add_tile(&outputs, tile.map_xy.0, tile.map_xy.1)?,
                Head::Classify(_) | Head::Ocr(_) => {}
            }
            times.preprocess += t1 - t0;
            times.infer += t2 - t1;
            times.head += t2.elapsed();
        }
        let t3 = Instant::now();
        match &mut self.head {
            Head::Anomaly(h) => {
                if let Some(g) = &tiles.geometry {
                    h.finish_tiles(g, out);
                }
            }
            Head::Detect(h) => h.finish((layout.width, layout.height), out),
            Head::Segment(h) => {
                if let Some(g) = &tiles.geometry {
                    h.finish_tiles(g, (layout.width, layout.height), out);
                }
            }
            Head::Classify(_) | Head::Ocr(_) => {}
        }
        times.head += t3.elapsed();
        Ok(times)
    }
}
