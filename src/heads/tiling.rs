//! Tiled inspection (`[head] tile`): a frame (or its roi) cut into overlapping tiles, each
//! preprocessed and run on its own, the head putting the tiles back together. Anomaly
//! heads and class maps stitch tile maps into one map over the frame; detection gathers
//! every tile's boxes into one NMS.

use crate::config::Diagnostic;
use crate::patchcore::{tile_grid, TileSpec};
use crate::preprocess::{Fit, PreprocessError, PreprocessSpec, Preprocessor, Rect, Transform};

use super::{FrameGeometry, PlanInput};

/// How a head tiles: the grid, and whether tiles are stretched to the model input (maps)
/// or keep the scenario's fit (detection).
#[derive(Debug, Clone, Copy)]
pub struct Tiling {
    pub spec: TileSpec,
    pub stretch: bool,
}

/// The tiles of one frame size, as a head sees them when a tiled frame starts.
#[derive(Debug, Clone, Copy)]
pub struct TileLayout {
    pub count: usize,
    /// Size of the stitched map, in map pixels.
    pub map_size: (usize, usize),
    /// Maps stitched-map pixels to frame pixels.
    pub geometry: FrameGeometry,
}

/// One tile, as a head sees it when its outputs are in.
pub struct TileView<'a> {
    pub index: usize,
    /// From the tile's model input to frame pixels.
    pub transform: &'a Transform,
    /// Where the tile's map lands in the stitched map.
    pub map_xy: (usize, usize),
    /// Tile edges inside the region, where objects are cut.
    pub cut: &'a TileCut,
}

/// Tile edges inside the inspected region, in frame pixels (left x, top y, right x,
/// bottom y). An object cut by such an edge is seen whole by the neighbouring tile when
/// the overlap is larger than the object, so boxes touching a cut edge are dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TileCut {
    pub edges: [Option<f32>; 4],
}

impl TileCut {
    /// Whether box `b` (x1, y1, x2, y2) touches a cut edge within `margin`.
    pub fn cuts(&self, b: &[f32; 4], margin: (f32, f32)) -> bool {
        let [l, t, r, bo] = self.edges;
        l.is_some_and(|e| b[0] <= e + margin.0)
            || t.is_some_and(|e| b[1] <= e + margin.1)
            || r.is_some_and(|e| b[2] >= e - margin.0)
            || bo.is_some_and(|e| b[3] >= e - margin.1)
    }
}

/// A worker's tiles: one preprocessor per tile (its roi is the tile). Rebuilt only when
/// the frame size changes, so frames allocate nothing.
pub struct TileSet {
    tiling: Tiling,
    frame: (u32, u32),
    tiles: Vec<Tile>,
    layout: Option<TileLayout>,
}

pub struct Tile {
    pub pre: Preprocessor,
    pub map_xy: (usize, usize),
    pub cut: TileCut,
}

impl TileSet {
    pub fn new(tiling: Tiling) -> TileSet {
        TileSet {
            tiling,
            frame: (0, 0),
            tiles: Vec::new(),
            layout: None,
        }
    }

    /// The tiles for a `width` x `height` frame (replanned when the size changes).
    pub fn for_frame(
        &mut self,
        base: &PreprocessSpec,
        width: u32,
        height: u32,
    ) -> Result<(TileLayout, &mut [Tile]), PreprocessError> {
        match self.layout {
            Some(layout) if self.frame == (width, height) => Ok((layout, &mut self.tiles)),
            _ => {
                let layout = self.replan(base, width, height)?;
                Ok((layout, &mut self.tiles))
            }
        }
    }

    fn replan(
        &mut self,
        base: &PreprocessSpec,
        width: u32,
        height: u32,
    ) -> Result<TileLayout, PreprocessError> {
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
        let rects = tile_grid(region, &self.tiling.spec);
        let (tw, th) = (rects[0].width as usize, rects[0].height as usize);
        let (iw, ih) = (base.width, base.height);
        // Map pixels per frame pixel: input / tile (1 when tiles are input-sized).
        let map_w = (region.width as usize * iw).div_ceil(tw).max(iw);
        let map_h = (region.height as usize * ih).div_ceil(th).max(ih);
        let inner = |at: u32, lo: u32, hi: u32| (at > lo && at < hi).then_some(at as f32);
        let (rx1, ry1) = (region.x + region.width, region.y + region.height);
        let stretch = self.tiling.stretch;
        self.tiles = rects
            .iter()
            .map(|r| {
                let mut spec = base.clone();
                spec.roi = Some(*r);
                if stretch {
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
        let layout = TileLayout {
            count: self.tiles.len(),
            map_size: (map_w, map_h),
            geometry: FrameGeometry {
                transform: Transform {
                    origin: (region.x as f32, region.y as f32),
                    scale: (tw as f32 / iw as f32, th as f32 / ih as f32),
                    pad: (0.0, 0.0),
                },
                input: (map_w, map_h),
            },
        };
        self.frame = (width, height);
        self.layout = Some(layout);
        Ok(layout)
    }
}

/// `[head] tile` / `tile_overlap`: tiled inspection of frames larger than the input.
/// `stretch_only`: tiles are resized to the input, so the fit must be "stretch".
pub(crate) fn plan_tiling(
    input: &mut PlanInput<'_>,
    tile: Option<[u32; 2]>,
    tile_overlap: Option<u32>,
    spec: &PreprocessSpec,
    stretch_only: bool,
) -> Option<TileSpec> {
    let Some([w, h]) = tile else {
        if tile_overlap.is_some() {
            input.error(
                "head.tile_overlap",
                "has no effect without `tile = [width, height]` (frame pixels per tile)",
            );
        }
        return None;
    };
    let overlap = tile_overlap.unwrap_or(32);
    let mut errs: Vec<Diagnostic> = Vec::new();
    let f = input.file;
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
    let ok = errs.is_empty();
    input.errs.extend(errs);
    ok.then_some(TileSpec {
        width: w,
        height: h,
        overlap,
    })
}
