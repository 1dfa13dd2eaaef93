//! Object detection: Ultralytics YOLOv8/YOLO11 exports (`[1, 4+nc, N]`: cx, cy, w, h in
//! input pixels, then class scores) and the YOLOv5/YOLOX layout (`[1, N, 5+nc]`: box,
//! objectness, class scores) → confidence filter → class-aware NMS → boxes on the frame.
//!
//! The post-processing follows `ultralytics.utils.ops.non_max_suppression` with its predict
//! defaults (single label per box, the best class; conf 0.25, IoU 0.7, 300 detections,
//! 30000 boxes into NMS) and `ops.scale_boxes` (through the letterbox/ROI [`Transform`],
//! clipped to the frame). Buffers are sized once; a frame allocates nothing.

use ort::session::SessionOutputs;

mod plan;

pub(crate) use plan::{detect_preprocess_defaults, nms_settings, NmsSettings};
pub use plan::{yolo_seg_outputs, DetectLayoutSetting, KIND};

use super::{
    f32_output, FrameGeometry, FrameRef, Head, HeadError, TileCut, TileLayout, TileView, Tiling,
};
use crate::geometry::xywh_to_xyxy;
use crate::heads::box_measure::BoxMeasures;
use crate::heads::count_rules::{apply_count_rules, CountRule};
use crate::patchcore::TileSpec;
use crate::preprocess::Transform;
use crate::verdict::{Defect, Inspection};

/// Re-exported from the shared geometry: `tests/detect_tiles.rs` names it here.
pub use crate::geometry::iou;

/// How the output tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectLayout {
    /// `[1, 4 + nc, N]`, no objectness (Ultralytics YOLOv8, YOLO11).
    Yolov8,
    /// `[1, N, 5 + nc]`, objectness × class score (YOLOv5, YOLOX).
    Yolov5,
}

impl DetectLayout {
    /// The layout implied by an output shape `[1, a, b]`: the smaller of `a`, `b` holds the
    /// box and scores; with `classes` known, 4+nc means YOLOv8 and 5+nc YOLOv5.
    pub fn infer(shape: &[i64], classes: Option<usize>) -> Option<(DetectLayout, usize)> {
        let [_, a, b] = shape else { return None };
        let (a, b) = (*a, *b);
        if a <= 0 || b <= 0 {
            return None;
        }
        let (small, channels_first) = if a <= b { (a, true) } else { (b, false) };
        let small = small as usize;
        match classes {
            Some(nc) if channels_first && small == 4 + nc => Some((DetectLayout::Yolov8, nc)),
            Some(nc) if !channels_first && small == 5 + nc => Some((DetectLayout::Yolov5, nc)),
            Some(_) => None,
            None if channels_first && small > 4 => Some((DetectLayout::Yolov8, small - 4)),
            None if !channels_first && small > 5 => Some((DetectLayout::Yolov5, small - 5)),
            None => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DetectConfig {
    pub output: String,
    pub layout: DetectLayout,
    pub classes: usize,
    /// Values after the class scores (YOLOv8 layout): a segmentation model's mask
    /// coefficients; 0 for a detector.
    pub mask_coeffs: usize,
    /// Anchors in the output (N), used to size the candidate buffer.
    pub anchors: usize,
    pub conf_threshold: f32,
    pub iou_threshold: f32,
    pub max_detections: usize,
    /// Boxes that go into NMS at most, best first (Ultralytics' `max_nms`).
    pub max_nms: usize,
    /// Frame pixels per mm, for `area_mm2` (`[rules] mm_per_px`).
    pub mm_per_px: Option<f32>,
    pub count_rules: std::sync::Arc<[CountRule]>,
    /// `[[rules.measure]]` on the kept boxes.
    pub measures: std::sync::Arc<BoxMeasures>,
    /// Inspect the frame as overlapping tiles (the worker drives it).
    pub tile: Option<TileSpec>,
}

/// One box before NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// xyxy in frame pixels (not clipped yet); NMS compares these, so boxes from
    /// different tiles meet on one scale.
    pub xyxy: [f32; 4],
    /// xyxy in the model input of the tile it came from.
    pub input_xyxy: [f32; 4],
    pub score: f32,
    pub class: usize,
    /// Tile and anchor index: the tie-breaker that makes the order deterministic, and
    /// where a segment head finds the box's mask coefficients.
    pub tile: usize,
    pub anchor: usize,
}

pub struct DetectHead {
    cfg: DetectConfig,
    candidates: Vec<Candidate>,
    keep: Vec<Candidate>,
}

impl DetectHead {
    pub fn new(cfg: DetectConfig) -> Self {
        DetectHead {
            candidates: Vec::with_capacity(cfg.anchors),
            keep: Vec::with_capacity(cfg.max_detections),
            cfg,
        }
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    pub fn tile_spec(&self) -> Option<TileSpec> {
        self.cfg.tile
    }

    pub fn max_detections(&self) -> usize {
        self.cfg.max_detections
    }

    pub fn failures_capacity(&self) -> usize {
        (self.cfg.count_rules.len() + self.cfg.measures.rules.len()).max(4)
    }

    /// Makes room for the candidates of `tiles` tiles (called when the tiling changes,
    /// so frames allocate nothing).
    pub fn reserve_tiles(&mut self, tiles: usize) {
        let want = self.cfg.anchors * tiles.max(1);
        self.candidates
            .reserve(want.saturating_sub(self.candidates.len()));
    }

    pub fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame_size: (u32, u32),
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.output)?;
        self.candidates.clear();
        self.add(shape, data, &geometry.transform, 0, &TileCut::default())?;
        self.finish(frame_size, out);
        Ok(())
    }

    /// Decodes one untiled frame's outputs and runs NMS into [`Self::kept`].
    pub fn run(
        &mut self,
        outputs: &SessionOutputs<'_>,
        transform: &Transform,
    ) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.output)?;
        self.candidates.clear();
        self.add(shape, data, transform, 0, &TileCut::default())?;
        self.nms();
        Ok(())
    }

    /// Starts a tiled frame.
    pub fn begin_tiles(&mut self) {
        self.candidates.clear();
    }

    /// Adds one tile's boxes (its model outputs, its transform to the frame).
    pub fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        transform: &Transform,
        tile: usize,
        cut: &TileCut,
    ) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.output)?;
        self.add(shape, data, transform, tile, cut)
    }

    /// NMS over every tile's boxes, then the boxes and the count rules into `out`.
    pub fn finish(&mut self, frame_size: (u32, u32), out: &mut Inspection) {
        self.nms();
        out.score = self.keep.first().map(|k| k.score);
        for k in &self.keep {
            push_box(k, None, self.cfg.mm_per_px, frame_size, out);
        }
        apply_count_rules(&self.cfg.count_rules, out);
        self.cfg.measures.apply(out);
    }

    /// The kept boxes of the last frame, best first.
    pub fn kept(&self) -> &[Candidate] {
        &self.keep
    }

    /// Decodes one untiled output tensor (identity transform) and runs NMS into
    /// [`Self::kept`].
    pub fn detect(&mut self, shape: &[i64], data: &[f32]) -> Result<(), HeadError> {
        self.candidates.clear();
        let identity = Transform {
            origin: (0.0, 0.0),
            scale: (1.0, 1.0),
            pad: (0.0, 0.0),
        };
        self.add(shape, data, &identity, 0, &TileCut::default())?;
        self.nms();
        Ok(())
    }

    /// Values per anchor: box, scores (YOLOv5: objectness) and any mask coefficients.
    fn stride(&self) -> usize {
        let c = &self.cfg;
        match c.layout {
            DetectLayout::Yolov8 => 4 + c.classes + c.mask_coeffs,
            DetectLayout::Yolov5 => 5 + c.classes,
        }
    }

    /// Decodes one output tensor into candidates (confidence filter, frame coordinates).
    fn add(
        &mut self,
        shape: &[i64],
        data: &[f32],
        transform: &Transform,
        tile: usize,
        cut: &TileCut,
    ) -> Result<(), HeadError> {
        let stride = self.stride();
        let c = &self.cfg;
        let n = match (c.layout, shape) {
            (DetectLayout::Yolov8, [1, ch, n]) if *ch as usize == stride && *n >= 0 => *n as usize,
            (DetectLayout::Yolov5, [1, n, ch]) if *ch as usize == stride && *n >= 0 => *n as usize,
            _ => return Err(HeadError::Shape {
                name: c.output.clone(),
                shape: shape.to_vec(),
                expected: match c.layout {
                    DetectLayout::Yolov8 => {
                        "expected [1, 4 + classes (+ mask coefficients), anchors] (YOLOv8 layout)"
                    }
                    DetectLayout::Yolov5 => "expected [1, anchors, 5 + classes] (YOLOv5 layout)",
                },
            }),
        };
        if data.len() != n * stride {
            return Err(HeadError::Shape {
                name: c.output.clone(),
                shape: shape.to_vec(),
                expected: "the tensor holds fewer values than its shape says",
            });
        }
        let margin = (2.0 * transform.scale.0, 2.0 * transform.scale.1);
        let mut push = |input_xyxy: [f32; 4], score: f32, class: usize, anchor: usize| {
            let (x0, y0) = transform.to_frame(input_xyxy[0], input_xyxy[1]);
            let (x1, y1) = transform.to_frame(input_xyxy[2], input_xyxy[3]);
            let xyxy = [x0, y0, x1, y1];
            if !cut.cuts(&xyxy, margin) && self.candidates.len() < self.candidates.capacity() {
                self.candidates.push(Candidate {
                    xyxy,
                    input_xyxy,
                    score,
                    class,
                    tile,
                    anchor,
                });
            }
        };
        match c.layout {
            DetectLayout::Yolov8 => {
                // channel-major: value (ch, i) at ch * n + i
                for i in 0..n {
                    let mut best = f32::NEG_INFINITY;
                    let mut class = 0;
                    for k in 0..c.classes {
                        let s = data[(4 + k) * n + i];
                        if s > best {
                            best = s;
                            class = k;
                        }
                    }
                    if best > c.conf_threshold {
                        let b = [data[i], data[n + i], data[2 * n + i], data[3 * n + i]];
                        push(xywh_to_xyxy(b), best, class, i);
                    }
                }
            }
            DetectLayout::Yolov5 => {
                for i in 0..n {
                    let row = &data[i * stride..(i + 1) * stride];
                    let obj = row[4];
                    if obj <= c.conf_threshold {
                        continue;
                    }
                    let mut best = f32::NEG_INFINITY;
                    let mut class = 0;
                    for (k, &s) in row[5..].iter().enumerate() {
                        let s = s * obj;
                        if s > best {
                            best = s;
                            class = k;
                        }
                    }
                    if best > c.conf_threshold {
                        push(
                            xywh_to_xyxy([row[0], row[1], row[2], row[3]]),
                            best,
                            class,
                            i,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Best first, at most `max_nms` into class-aware NMS, at most `max_detections` kept.
    fn nms(&mut self) {
        let c = &self.cfg;
        // ties by tile and anchor so runs are reproducible (unstable sort: no allocation)
        self.candidates.sort_unstable_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| (a.tile, a.anchor).cmp(&(b.tile, b.anchor)))
        });
        self.candidates.truncate(c.max_nms);
        self.keep.clear();
        for cand in &self.candidates {
            if self.keep.len() >= c.max_detections {
                break;
            }
            let suppressed = self
                .keep
                .iter()
                .any(|k| k.class == cand.class && iou(&k.xyxy, &cand.xyxy) > c.iou_threshold);
            if !suppressed {
                self.keep.push(*cand);
            }
        }
    }
}

/// A kept box as a defect on the frame (clipped to it); `area_px` defaults to the box's.
pub(crate) fn push_box(
    k: &Candidate,
    area_px: Option<f32>,
    mm_per_px: Option<f32>,
    frame: (u32, u32),
    out: &mut Inspection,
) {
    let (fw, fh) = (frame.0 as f32, frame.1 as f32);
    let (x1, x2) = (k.xyxy[0].clamp(0.0, fw), k.xyxy[2].clamp(0.0, fw));
    let (y1, y2) = (k.xyxy[1].clamp(0.0, fh), k.xyxy[3].clamp(0.0, fh));
    let (w, h) = ((x2 - x1).max(0.0), (y2 - y1).max(0.0));
    let area_px = area_px.unwrap_or(w * h);
    let d = Defect {
        class: Some(k.class),
        bbox: [x1, y1, w, h],
        area_px,
        area_mm2: mm_per_px.map(|m| area_px * m * m),
        score: k.score,
    };
    if out.defects.len() < out.defects.capacity() {
        out.defects.push(d);
    } else {
        out.defects_truncated += 1;
    }
}

impl Head for DetectHead {
    fn inspection(&self) -> Inspection {
        let mut i = Inspection::with_capacity(0, self.max_detections());
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
        DetectHead::interpret(self, outputs, geometry, frame.size(), out)
    }

    fn tiling(&self) -> Option<Tiling> {
        self.tile_spec().map(|spec| Tiling {
            spec,
            stretch: false,
        })
    }

    fn begin_tiles(&mut self, layout: &TileLayout) {
        DetectHead::begin_tiles(self);
        // Room for every tile's candidates; grows only when the tiling does.
        self.reserve_tiles(layout.count);
    }

    fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        tile: &TileView<'_>,
    ) -> Result<(), HeadError> {
        DetectHead::add_tile(self, outputs, tile.transform, tile.index, tile.cut)
    }

    fn finish_tiles(&mut self, _layout: &TileLayout, frame: FrameRef<'_>, out: &mut Inspection) {
        self.finish(frame.size(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(layout: DetectLayout, classes: usize, anchors: usize) -> DetectConfig {
        DetectConfig {
            output: "output0".into(),
            layout,
            classes,
            mask_coeffs: 0,
            anchors,
            conf_threshold: 0.25,
            iou_threshold: 0.7,
            max_detections: 300,
            max_nms: 30000,
            mm_per_px: None,
            count_rules: Vec::new().into(),
            measures: Default::default(),
            tile: None,
        }
    }

    /// Channel-major YOLOv8 tensor from rows (cx, cy, w, h, scores...).
    fn v8(rows: &[Vec<f32>]) -> (Vec<i64>, Vec<f32>) {
        let ch = rows[0].len();
        let n = rows.len();
        let mut data = vec![0.0; ch * n];
        for (i, r) in rows.iter().enumerate() {
            for (c, v) in r.iter().enumerate() {
                data[c * n + i] = *v;
            }
        }
        (vec![1, ch as i64, n as i64], data)
    }

    #[test]
    fn layout_is_inferred_from_the_smaller_dimension() {
        assert_eq!(
            DetectLayout::infer(&[1, 84, 8400], None),
            Some((DetectLayout::Yolov8, 80))
        );
        assert_eq!(
            DetectLayout::infer(&[1, 25200, 85], None),
            Some((DetectLayout::Yolov5, 80))
        );
        assert_eq!(
            DetectLayout::infer(&[1, 6, 1344], Some(2)),
            Some((DetectLayout::Yolov8, 2))
        );
        assert_eq!(DetectLayout::infer(&[1, 6, 1344], Some(3)), None);
        assert_eq!(DetectLayout::infer(&[1, 1000], None), None);
    }

    #[test]
    fn nms_is_class_aware_and_keeps_the_best() {
        let (shape, data) = v8(&[
            vec![50.0, 50.0, 20.0, 20.0, 0.9, 0.1],
            vec![51.0, 50.0, 20.0, 20.0, 0.8, 0.1], // same class, IoU ~0.9: suppressed
            vec![51.0, 50.0, 20.0, 20.0, 0.1, 0.7], // other class: kept
            vec![150.0, 50.0, 20.0, 20.0, 0.6, 0.1],
            vec![10.0, 10.0, 5.0, 5.0, 0.2, 0.25], // at the threshold: dropped (strict >)
        ]);
        let mut h = DetectHead::new(cfg(DetectLayout::Yolov8, 2, 5));
        h.detect(&shape, &data).unwrap();
        let got: Vec<(usize, usize)> = h.kept().iter().map(|k| (k.anchor, k.class)).collect();
        assert_eq!(got, [(0, 0), (2, 1), (3, 0)]);
        assert_eq!(h.kept()[0].xyxy, [40.0, 40.0, 60.0, 60.0]);
    }

    #[test]
    fn yolov5_multiplies_objectness() {
        let data = vec![
            50.0, 50.0, 20.0, 20.0, 0.5, 0.9, 0.1, // 0.45 class 0
            90.0, 50.0, 20.0, 20.0, 0.3, 0.2, 0.95, // 0.285 class 1
            10.0, 10.0, 20.0, 20.0, 0.2, 1.0, 1.0, // objectness below threshold
        ];
        let mut h = DetectHead::new(cfg(DetectLayout::Yolov5, 2, 3));
        h.detect(&[1, 3, 7], &data).unwrap();
        let got: Vec<(usize, usize)> = h.kept().iter().map(|k| (k.anchor, k.class)).collect();
        assert_eq!(got, [(0, 0), (1, 1)]);
        assert!((h.kept()[1].score - 0.285).abs() < 1e-6);
    }

    #[test]
    fn wrong_shape_is_an_error_not_a_panic() {
        let mut h = DetectHead::new(cfg(DetectLayout::Yolov8, 2, 5));
        assert!(h.detect(&[1, 7, 5], &[0.0; 35]).is_err());
        assert!(h.detect(&[1, 6, 5], &[0.0; 10]).is_err());
    }
}
