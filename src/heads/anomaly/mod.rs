//! Anomaly detection, one head for both kinds of model:
//!
//! - **anomalib exports** as-is. Contract: input `input` (RGB, NCHW, [0,1]); outputs
//!   `pred_score` (image score, already normalised so 0.5 is the trained threshold),
//!   `pred_label` (bool), `anomaly_map` (normalised per pixel) and `pred_mask` (bool).
//!   Shapes vary between exports (`[1]` or `[1,1]`; maps smaller than the input), so they
//!   are read per frame.
//! - **PatchCore models fitted on the box** (`lineside fit`): the session runs the
//!   backbone, [`PatchCoreScorer`] turns its features into distances, and the artifact's
//!   statistics normalise them onto anomalib's scale (threshold → 0.5).
//!
//! From there on the path is shared: score vs threshold → verdict, map → connected
//! regions above the pixel threshold → defects (box, area in px, area in mm² when the
//! scenario gives a scale).

use std::sync::Arc;

use ort::session::SessionOutputs;

mod plan;

pub use plan::KIND;
pub(crate) use plan::{plan_anomaly_rules, AnomalyRulesKeys};

use super::patchcore::PatchCoreScorer;
use super::regions::{Region, RegionFinder};
use super::{f32_output, FrameGeometry, FrameRef, Head, HeadError, TileLayout, TileView, Tiling};
use crate::patchcore::{Artifact, TileSpec};
use crate::preprocess::Transform;
use crate::verdict::{Defect, Failure, Inspection};

/// Where the score and map come from.
#[derive(Debug, Clone)]
pub enum AnomalyScoring {
    /// An anomalib export's outputs.
    Export {
        score_output: String,
        /// Bool output with the model's own decision; used when no score threshold is set.
        label_output: Option<String>,
        map_output: Option<String>,
    },
    /// A fitted PatchCore model on the scenario's backbone.
    Fitted(Arc<Artifact>),
}

#[derive(Debug, Clone)]
pub struct AnomalyConfig {
    pub scoring: AnomalyScoring,
    /// The threshold the (normalised) score is compared with; `None` trusts the export's
    /// `label_output` (or 0.5).
    pub score_threshold: Option<f32>,
    pub pixel_threshold: f32,
    pub min_area_px: f32,
    /// An image score at the threshold rejects only when a region reaches `min_area_px`
    /// (a minimum area is set and `reject_without_region` is off).
    pub region_decides: bool,
    /// Frame pixel size in millimetres, for defect areas in mm².
    pub mm_per_px: Option<f32>,
    pub max_defects: usize,
    /// Fitted models: inspect frames as overlapping tiles (the worker drives it).
    pub tile: Option<TileSpec>,
}

/// What the head saw in the last frame, for `lineside eval` and evidence images: the
/// normalised image score before clamping (ranking intact) and the normalised anomaly map
/// (anomaly heads), or the per-pixel class map (segment heads).
pub struct Evidence<'a> {
    pub score: f32,
    /// Anomaly heads: `width` x `height` normalised scores (0.5 = the pixel threshold).
    pub map: &'a [f32],
    /// Segment heads: `width` x `height` class indices, [`NO_CLASS`] where none.
    pub classes: &'a [u16],
    pub width: usize,
    pub height: usize,
    /// Frame rectangle the map covers, `[x0, y0, x1, y1]` in frame pixels (letterbox
    /// padding lies outside the frame).
    pub frame_box: [f32; 4],
}

/// A pixel of a class map that belongs to no class.
pub const NO_CLASS: u16 = u16::MAX;

/// The frame rectangle a map over the whole model input covers.
pub fn map_frame_box(g: &FrameGeometry) -> [f32; 4] {
    let (x0, y0) = g.transform.to_frame(0.0, 0.0);
    let (x1, y1) = g.transform.to_frame(g.input.0 as f32, g.input.1 as f32);
    [x0, y0, x1, y1]
}

pub struct AnomalyHead {
    cfg: AnomalyConfig,
    fitted: Option<PatchCoreScorer>,
    regions: RegionFinder,
    map: Vec<f32>,
    map_size: (usize, usize),
    /// Frame rectangle of the last map (evidence images).
    map_box: [f32; 4],
    score: f32,
    /// Tiled frames: one tile's raw map, and per-pixel tile counts of the stitched map.
    tile_map: Vec<f32>,
    coverage: Vec<f32>,
    tile_raw_max: f32,
}

impl AnomalyHead {
    pub fn new(cfg: AnomalyConfig) -> Self {
        let fitted = match &cfg.scoring {
            AnomalyScoring::Fitted(a) => Some(PatchCoreScorer::new(Arc::clone(a))),
            AnomalyScoring::Export { .. } => None,
        };
        let map_size = fitted.as_ref().map_or((0, 0), |f| f.map_size());
        AnomalyHead {
            map: vec![0.0; map_size.0 * map_size.1],
            map_size,
            map_box: [0.0; 4],
            fitted,
            cfg,
            regions: RegionFinder::default(),
            score: 0.0,
            tile_map: vec![0.0; map_size.0 * map_size.1],
            coverage: Vec::new(),
            tile_raw_max: f32::NEG_INFINITY,
        }
    }

    pub fn tile_spec(&self) -> Option<TileSpec> {
        self.cfg.tile.filter(|_| self.fitted.is_some())
    }

    /// Starts a tiled frame whose stitched map is `width` x `height` (map pixels; the
    /// buffers grow only when the frame geometry changes).
    pub fn begin_tiles(&mut self, width: usize, height: usize) {
        let n = width * height;
        if self.map.len() != n {
            self.map.resize(n, 0.0);
        }
        if self.coverage.len() != n {
            self.coverage.resize(n, 0.0);
        }
        self.map.fill(0.0);
        self.coverage.fill(0.0);
        self.map_size = (width, height);
        self.tile_raw_max = f32::NEG_INFINITY;
    }

    /// Scores one tile's backbone outputs and adds its raw map at `(x, y)` of the
    /// stitched map.
    pub fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        x: usize,
        y: usize,
    ) -> Result<(), HeadError> {
        let Some(scorer) = self.fitted.as_mut() else {
            return Ok(());
        };
        let raw = scorer.score_outputs(outputs, &mut self.tile_map)?;
        self.tile_raw_max = self.tile_raw_max.max(raw);
        let (tw, th) = scorer.map_size();
        let (w, h) = self.map_size;
        for r in 0..th.min(h.saturating_sub(y)) {
            let cols = tw.min(w.saturating_sub(x));
            let dst = (y + r) * w + x;
            let src = &self.tile_map[r * tw..r * tw + cols];
            for ((m, c), v) in self.map[dst..dst + cols]
                .iter_mut()
                .zip(&mut self.coverage[dst..dst + cols])
                .zip(src)
            {
                *m += v;
                *c += 1.0;
            }
        }
        Ok(())
    }

    /// Averages the overlaps, normalises, and decides like an untiled frame: image score
    /// = the largest tile score. `geometry` maps stitched-map pixels to frame pixels.
    pub fn finish_tiles(&mut self, geometry: &FrameGeometry, out: &mut Inspection) {
        out.clear();
        let AnomalyScoring::Fitted(a) = &self.cfg.scoring else {
            return;
        };
        let (image, pixel) = (&a.header.thresholds.image, &a.header.thresholds.pixel);
        for (m, c) in self.map.iter_mut().zip(&self.coverage) {
            *m = pixel.apply_unclamped(*m / c.max(1.0));
        }
        self.score = image.apply_unclamped(self.tile_raw_max);
        self.decide(None, geometry, out);
    }

    pub fn max_defects(&self) -> usize {
        self.cfg.max_defects
    }

    pub fn evidence(&self) -> Evidence<'_> {
        Evidence {
            score: self.score,
            map: &self.map,
            classes: &[],
            width: self.map_size.0,
            height: self.map_size.1,
            frame_box: self.map_box,
        }
    }

    pub fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let decided_by_label = match (&self.cfg.scoring, &mut self.fitted) {
            (AnomalyScoring::Fitted(a), Some(scorer)) => {
                let raw = scorer.score_outputs(outputs, &mut self.map)?;
                let t = &a.header.thresholds;
                self.score = t.image.apply_unclamped(raw);
                for v in &mut self.map {
                    *v = t.pixel.apply_unclamped(*v);
                }
                None
            }
            (
                AnomalyScoring::Export {
                    score_output,
                    label_output,
                    map_output,
                },
                _,
            ) => {
                self.score = read_export(
                    &mut self.map,
                    &mut self.map_size,
                    outputs,
                    score_output,
                    map_output.as_deref(),
                )?;
                match (self.cfg.score_threshold, label_output) {
                    (None, Some(label)) => Some(model_label(outputs, label)?),
                    _ => None,
                }
            }
            (AnomalyScoring::Fitted(_), None) => None,
        };
        self.decide(decided_by_label, geometry, out);
        Ok(())
    }

    /// The verdict: the image score (or the export's label) against the threshold, then
    /// the regions. With a minimum defect area (`region_decides`), a score at the
    /// threshold rejects only when some region above the pixel threshold reaches that
    /// area: one hot patch does not reject a part. An NG part always names a region: the
    /// thresholded ones, else the strongest.
    fn decide(&mut self, by_label: Option<bool>, geometry: &FrameGeometry, out: &mut Inspection) {
        self.map_box = map_frame_box(geometry);
        let reported = self.score.clamp(0.0, 1.0);
        out.score = Some(reported);
        out.score_uncapped = Some(self.score);
        let threshold = self.cfg.score_threshold.unwrap_or(0.5);
        let has_map = self.map_size.0 > 0;
        if has_map {
            self.collect_regions(geometry, out);
        }
        let found = !out.defects.is_empty() || out.defects_truncated > 0;
        let score_ng = by_label.unwrap_or(self.score >= threshold);
        if score_ng && (found || !(has_map && self.cfg.region_decides)) {
            out.fail(Failure::AnomalyScore {
                score: reported,
                threshold,
            });
            if has_map && !found {
                self.strongest_region(geometry, out);
            }
        }
    }

    /// An NG part whose image score passed but no region reached the pixel threshold (or
    /// `min_defect_area_px`) would otherwise list nothing to look at: report the region
    /// around the map's maximum, the pixels within [`PEAK_BAND`] of it. Its `score` (below
    /// the pixel threshold, or its area below the minimum) says it is the strongest, not a
    /// thresholded, region.
    fn strongest_region(&mut self, g: &FrameGeometry, out: &mut Inspection) {
        let (mw, mh) = self.map_size;
        let n = (mw * mh).min(self.map.len());
        let peak = self.map[..n]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        if !peak.is_finite() || self.cfg.max_defects == 0 {
            return;
        }
        let level = peak - PEAK_BAND;
        let (map, to_frame) = (&self.map, RegionScale::new(g, mw, mh, self.cfg.mm_per_px));
        let mut best: Option<Region> = None;
        self.regions.find(map, mw, mh, level, |r| {
            if r.max >= peak && best.is_none() {
                best = Some(r);
            }
        });
        if let Some(r) = best {
            out.defects.push(to_frame.defect(&r));
        }
    }

    fn collect_regions(&mut self, g: &FrameGeometry, out: &mut Inspection) {
        let (mw, mh) = self.map_size;
        let to_frame = RegionScale::new(g, mw, mh, self.cfg.mm_per_px);
        let (min_area, cap) = (self.cfg.min_area_px, self.cfg.max_defects);
        self.regions
            .find(&self.map, mw, mh, self.cfg.pixel_threshold, |r| {
                if to_frame.area(&r) < min_area {
                    return;
                }
                if out.defects.len() == cap {
                    out.defects_truncated += 1;
                    return;
                }
                out.defects.push(to_frame.defect(&r));
            });
    }
}

/// How far below the map's maximum (in normalised units, where the pixel threshold is
/// 0.5 and the calibration range spans 1) the strongest region reaches.
pub const PEAK_BAND: f32 = 0.1;

/// Map pixels → model-input pixels → frame pixels.
struct RegionScale {
    kx: f32,
    ky: f32,
    t: Transform,
    px_area: f32,
    mm2_per_px: Option<f32>,
}

impl RegionScale {
    fn new(g: &FrameGeometry, mw: usize, mh: usize, mm_per_px: Option<f32>) -> Self {
        let (kx, ky) = (g.input.0 as f32 / mw as f32, g.input.1 as f32 / mh as f32);
        let t = g.transform;
        RegionScale {
            kx,
            ky,
            t,
            px_area: kx * ky * t.scale.0 * t.scale.1,
            mm2_per_px: mm_per_px.map(|s| s * s),
        }
    }

    fn area(&self, r: &Region) -> f32 {
        r.pixels as f32 * self.px_area
    }

    fn defect(&self, r: &Region) -> Defect {
        let (x0, y0) = self
            .t
            .to_frame(r.x0 as f32 * self.kx, r.y0 as f32 * self.ky);
        let (x1, y1) = self
            .t
            .to_frame(r.x1 as f32 * self.kx, r.y1 as f32 * self.ky);
        let area = self.area(r);
        Defect {
            class: None,
            bbox: [x0, y0, x1 - x0, y1 - y0],
            area_px: area,
            area_mm2: self.mm2_per_px.map(|k| area * k),
            score: r.max.clamp(0.0, 1.0),
        }
    }
}

/// Copies an export's score and map into the head's buffers (the map is small, and
/// one copy keeps a single decision path for both kinds of model).
fn read_export(
    map_buf: &mut Vec<f32>,
    map_size: &mut (usize, usize),
    outputs: &SessionOutputs<'_>,
    score_output: &str,
    map_output: Option<&str>,
) -> Result<f32, HeadError> {
    let (shape, data) = f32_output(outputs, score_output)?;
    let Some(&score) = data.first() else {
        return Err(HeadError::Shape {
            name: score_output.to_string(),
            shape: shape.to_vec(),
            expected: "expected one image score",
        });
    };
    let Some(map_name) = map_output else {
        *map_size = (0, 0);
        return Ok(score);
    };
    let (shape, map) = f32_output(outputs, map_name)?;
    let (mh, mw) = match shape {
        [.., h, w] if *h > 0 && *w > 0 => (*h as usize, *w as usize),
        _ => {
            return Err(HeadError::Shape {
                name: map_name.to_string(),
                shape: shape.to_vec(),
                expected: "expected [.., height, width]",
            })
        }
    };
    if map_buf.len() != mw * mh {
        // Once, on the first frame: export map sizes are only known from the outputs.
        map_buf.resize(mw * mh, 0.0);
    }
    map_buf.copy_from_slice(&map[..mw * mh]);
    *map_size = (mw, mh);
    Ok(score)
}

fn model_label(outputs: &SessionOutputs<'_>, name: &str) -> Result<bool, HeadError> {
    let value = outputs.get(name).ok_or_else(|| HeadError::MissingOutput {
        name: name.to_string(),
        available: outputs.keys().collect::<Vec<_>>().join(", "),
    })?;
    let extract_err = |e: ort::Error| HeadError::Extract {
        name: name.to_string(),
        reason: e.to_string(),
    };
    if let Ok((_, v)) = value.try_extract_tensor::<bool>() {
        return Ok(v.first().copied().unwrap_or(false));
    }
    let (_, v) = value.try_extract_tensor::<i64>().map_err(extract_err)?;
    Ok(v.first().is_some_and(|&x| x != 0))
}

impl Head for AnomalyHead {
    fn inspection(&self) -> Inspection {
        Inspection::with_capacity(0, self.max_defects())
    }

    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        _frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        AnomalyHead::interpret(self, outputs, geometry, out)
    }

    fn tiling(&self) -> Option<Tiling> {
        self.tile_spec().map(|spec| Tiling {
            spec,
            stretch: true,
        })
    }

    fn begin_tiles(&mut self, layout: &TileLayout) {
        AnomalyHead::begin_tiles(self, layout.map_size.0, layout.map_size.1);
    }

    fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        tile: &TileView<'_>,
    ) -> Result<(), HeadError> {
        AnomalyHead::add_tile(self, outputs, tile.map_xy.0, tile.map_xy.1)
    }

    fn finish_tiles(&mut self, layout: &TileLayout, _frame: FrameRef<'_>, out: &mut Inspection) {
        AnomalyHead::finish_tiles(self, &layout.geometry, out);
    }

    fn evidence(&self) -> Option<Evidence<'_>> {
        Some(AnomalyHead::evidence(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    fn head(pixel_threshold: f32) -> AnomalyHead {
        AnomalyHead::new(AnomalyConfig {
            scoring: AnomalyScoring::Export {
                score_output: "pred_score".into(),
                label_output: None,
                map_output: Some("anomaly_map".into()),
            },
            score_threshold: Some(0.5),
            pixel_threshold,
            min_area_px: 0.0,
            region_decides: false,
            mm_per_px: None,
            max_defects: 8,
            tile: None,
        })
    }

    fn geometry() -> FrameGeometry {
        FrameGeometry {
            transform: Transform {
                origin: (0.0, 0.0),
                scale: (2.0, 2.0),
                pad: (0.0, 0.0),
            },
            input: (4, 4),
        }
    }

    #[test]
    fn item_12_ng_part_with_no_pixel_region_reports_the_strongest_region() {
        let mut h = head(0.5);
        // Image score passes; no map pixel reaches 0.5. The peak (0.45) and its
        // neighbour within the band (0.4) form the reported region; 0.3 is outside it.
        #[rustfmt::skip]
        let map = vec![
            0.1, 0.1, 0.1, 0.1,
            0.1, 0.45, 0.4, 0.1,
            0.1, 0.1, 0.1, 0.3,
            0.1, 0.1, 0.1, 0.1,
        ];
        (h.map, h.map_size, h.score) = (map, (4, 4), 0.8);
        let mut out = Inspection::with_capacity(0, 8);
        h.decide(None, &geometry(), &mut out);
        assert_eq!(out.verdict, Verdict::Ng);
        assert_eq!(out.defects.len(), 1, "{:?}", out.defects);
        let d = &out.defects[0];
        assert_eq!(d.bbox, [2.0, 2.0, 4.0, 2.0]);
        assert_eq!(d.area_px, 8.0);
        assert!((d.score - 0.45).abs() < 1e-6);
    }

    #[test]
    fn issue_15_min_area_decides_on_regions_and_ng_always_names_one() {
        // One hot map pixel (area 4 frame px at scale 2) above the pixel threshold, image
        // score past the threshold, minimum area 8 px.
        #[rustfmt::skip]
        let hot = vec![
            0.1, 0.1, 0.1, 0.1,
            0.1, 0.9, 0.1, 0.1,
            0.1, 0.1, 0.1, 0.1,
            0.1, 0.1, 0.1, 0.1,
        ];
        let with_min_area = |region_decides: bool| {
            let mut h = head(0.5);
            h.cfg.min_area_px = 8.0;
            h.cfg.region_decides = region_decides;
            (h.map, h.map_size, h.score) = (hot.clone(), (4, 4), 0.9);
            let mut out = Inspection::with_capacity(0, 8);
            h.decide(None, &geometry(), &mut out);
            out
        };
        // The area rule decides: the hot pixel is below it, the part is OK.
        let out = with_min_area(true);
        assert_eq!((out.verdict, out.defects.len()), (Verdict::Ok, 0));
        // `reject_without_region = true`: the score alone rejects, naming the strongest
        // region with its area.
        let out = with_min_area(false);
        assert_eq!(out.verdict, Verdict::Ng);
        assert_eq!(out.defects.len(), 1);
        assert_eq!(out.defects[0].area_px, 4.0);
        assert!((out.defects[0].score - 0.9).abs() < 1e-6);
        // A region of 2x2 map pixels (16 frame px) reaches the minimum: NG with it.
        let mut h = head(0.5);
        (h.cfg.min_area_px, h.cfg.region_decides) = (8.0, true);
        let mut map = hot.clone();
        (map[6], map[9], map[10]) = (0.8, 0.7, 0.6);
        (h.map, h.map_size, h.score) = (map, (4, 4), 0.9);
        let mut out = Inspection::with_capacity(0, 8);
        h.decide(None, &geometry(), &mut out);
        assert_eq!(out.verdict, Verdict::Ng);
        assert_eq!(out.defects.len(), 1);
        assert_eq!(out.defects[0].area_px, 16.0);
        // Whatever the map, an NG never comes without a defect.
        for (score, pix) in [(0.9, 0.95), (0.6, 0.5), (1.0, 0.2)] {
            for decides in [false, true] {
                let mut h = head(pix);
                (h.cfg.min_area_px, h.cfg.region_decides) = (8.0, decides);
                (h.map, h.map_size, h.score) = (hot.clone(), (4, 4), score);
                let mut out = Inspection::with_capacity(0, 8);
                h.decide(None, &geometry(), &mut out);
                assert!(
                    out.verdict == Verdict::Ok || !out.defects.is_empty(),
                    "score {score} pixel {pix} decides {decides}: NG without a defect"
                );
            }
        }
    }

    #[test]
    fn item_12_ok_parts_and_thresholded_regions_are_unchanged() {
        let map = vec![0.1, 0.6, 0.1, 0.1];
        // OK part: nothing reported below the pixel threshold.
        let mut h = head(0.7);
        (h.map, h.map_size, h.score) = (map.clone(), (2, 2), 0.2);
        let mut out = Inspection::with_capacity(0, 8);
        h.decide(None, &geometry(), &mut out);
        assert_eq!((out.verdict, out.defects.len()), (Verdict::Ok, 0));
        // NG part with a region above the pixel threshold: only that region.
        let mut h = head(0.5);
        (h.map, h.map_size, h.score) = (map, (2, 2), 0.9);
        let mut out = Inspection::with_capacity(0, 8);
        h.decide(None, &geometry(), &mut out);
        assert_eq!(out.defects.len(), 1);
        assert_eq!(out.defects[0].score, 0.6);
    }
}
