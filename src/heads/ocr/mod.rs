//! OCR: PP-OCR text detection (DB) and recognition (CTC), run the way rapidocr runs them,
//! so a PaddleOCR/rapidocr export gives the same lines in lineside as in Python.
//!
//! Detection is the worker's main model (its input is the frame, preprocessed as the
//! scenario says); this head turns its probability map into text boxes:
//! threshold → 2x2 dilation → 8-connected regions → minimum-area rectangle of each region →
//! mean probability inside it (`box_threshold`) → unclip (grow by area × ratio / perimeter)
//! → frame coordinates. Each box is cut out of the frame with a perspective warp (bicubic,
//! edges replicated; tall crops are turned 90°), resized to the recogniser's height keeping
//! its ratio, and recognised in batches sorted by width, as PaddleOCR does. CTC greedy
//! decoding uses the character list stored in the recogniser's `character` metadata.
//!
//! Differences from rapidocr: a region's holes are not reported as extra boxes (OpenCV's
//! `RETR_LIST` lists inner contours too; PP-OCR maps rarely have holes), and OpenCV's
//! fixed-point warp/fill arithmetic is done in floating point, so a box edge or a crop
//! pixel can differ by one.
//!
//! Unlike the other heads, this one allocates per frame (crops, batches, text).

mod plan;

pub use plan::KIND;

use std::sync::Arc;

use ort::session::Session;
use ort::value::TensorRef;

use super::text_rules::{self, TextRule};
use super::{f32_output, FrameGeometry, HeadError};
use crate::engine::{open_session, EngineError, ModelInfo};
use crate::frame::{FrameLayout, PixelFormat};
use crate::preprocess::{
    convert_row, ColorOrder, Fit, Interpolation, Layout, PreprocessSpec, Preprocessor,
};
use crate::verdict::{Inspection, TextLine};

#[derive(Debug, Clone)]
pub struct OcrConfig {
    /// The detector's probability-map output.
    pub det_output: String,
    pub recognizer: Arc<ModelInfo>,
    /// CTC classes: index 0 is the blank, then the model's characters, then a space.
    pub characters: Arc<[String]>,
    /// Probability above which a map pixel is text (rapidocr `thresh`, 0.3).
    pub det_threshold: f32,
    /// Mean probability a box needs (rapidocr `box_thresh`, 0.5).
    pub box_threshold: f32,
    /// How far boxes grow: area × ratio / perimeter (rapidocr `unclip_ratio`, 1.6).
    pub unclip_ratio: f32,
    /// Regions considered per frame (rapidocr `max_candidates`, 1000).
    pub max_candidates: usize,
    /// Lines whose recognition confidence is below this are dropped (rapidocr `text_score`).
    pub text_score: f32,
    /// Recogniser input height (PP-OCRv3/v4: 48).
    pub rec_height: usize,
    /// Narrowest recogniser input (PP-OCR: 320 for height 48).
    pub rec_min_width: usize,
    /// Crops per recogniser run (PP-OCR: 6). Batching changes padding, so it is kept.
    pub rec_batch: usize,
    pub intra_threads: usize,
    /// `[[rules.text]]`, checked against the lines read.
    pub text_rules: Arc<[TextRule]>,
    /// The date text rules count from (`[rules] today`); `None`: the UTC date at run time.
    pub today: Option<time::Date>,
}

/// A text box: four corners (top-left, top-right, bottom-right, bottom-left), frame pixels.
type Quad = [[f32; 2]; 4];

pub struct OcrHead {
    cfg: OcrConfig,
    rec: Session,
    /// The frame as packed RGB (crops are cut from it).
    rgb: Vec<u8>,
    bitmap: Vec<u8>,
    seen: Vec<bool>,
    stack: Vec<u32>,
    pixels: Vec<(i32, i32)>,
    boxes: Vec<Quad>,
    batch: Vec<f32>,
}

impl OcrHead {
    pub fn new(cfg: OcrConfig) -> Result<Self, EngineError> {
        let rec = open_session(&cfg.recognizer.path, cfg.intra_threads)?;
        Ok(OcrHead {
            cfg,
            rec,
            rgb: Vec::new(),
            bitmap: Vec::new(),
            seen: Vec::new(),
            stack: Vec::new(),
            pixels: Vec::new(),
            boxes: Vec::new(),
            batch: Vec::new(),
        })
    }

    pub fn interpret(
        &mut self,
        outputs: &ort::session::SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame: (&[u8], &FrameLayout),
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let name = self.cfg.det_output.clone();
        let (shape, map) = f32_output(outputs, &name)?;
        let (mh, mw) = match shape {
            [1, 1, h, w] if *h > 0 && *w > 0 => (*h as usize, *w as usize),
            _ => {
                return Err(HeadError::Shape {
                    name,
                    shape: shape.to_vec(),
                    expected: "expected a DB probability map [1, 1, height, width]",
                })
            }
        };
        let map = &map[..mh * mw];
        self.detect(map, mw, mh, geometry, frame.1);
        if !self.boxes.is_empty() {
            self.frame_rgb(frame.0, frame.1);
            self.recognize(frame.1, out)?;
        }
        out.score = out.texts.iter().map(|t| t.score).reduce(f32::min);
        text_rules::apply(&self.cfg.text_rules, self.cfg.today, out);
        Ok(())
    }

    /// DB post-processing: fills `self.boxes` in reading order.
    fn detect(&mut self, map: &[f32], w: usize, h: usize, g: &FrameGeometry, layout: &FrameLayout) {
        self.boxes.clear();
        let n = w * h;
        self.bitmap.clear();
        self.bitmap
            .extend(map.iter().map(|&p| u8::from(p > self.cfg.det_threshold)));
        // cv2.dilate with a 2x2 kernel of ones (anchor at 1,1): a pixel is set when it,
        // its left, upper or upper-left neighbour is.
        for y in (0..h).rev() {
            for x in (0..w).rev() {
                let i = y * w + x;
                let mut v = self.bitmap[i];
                if x > 0 {
                    v |= self.bitmap[i - 1];
                }
                if y > 0 {
                    v |= self.bitmap[i - w];
                    if x > 0 {
                        v |= self.bitmap[i - w - 1];
                    }
                }
                self.bitmap[i] = v;
            }
        }
        self.seen.clear();
        self.seen.resize(n, false);
        // Frame extent of what the detector saw (the ROI, or the whole frame).
        let t = g.transform;
        let (dest_w, dest_h) = (
            (g.input.0 as f32 - 2.0 * t.pad.0) * t.scale.0,
            (g.input.1 as f32 - 2.0 * t.pad.1) * t.scale.1,
        );
        let (dest_w, dest_h) = (dest_w.round(), dest_h.round());
        let (kx, ky) = (dest_w / w as f32, dest_h / h as f32);
        let (frame_w, frame_h) = (layout.width as f32, layout.height as f32);
        let mut candidates = 0;
        for start in 0..n {
            if self.seen[start] || self.bitmap[start] == 0 {
                continue;
            }
            if candidates == self.cfg.max_candidates {
                break;
            }
            candidates += 1;
            self.region(start, w, h);
            let Some((rect, sside)) = min_area_rect(&mut self.pixels) else {
                continue;
            };
            if sside < 3.0 {
                continue;
            }
            let points = mini_box(&rect);
            let score = box_score_fast(map, w, h, &points);
            if self.cfg.box_threshold > score {
                continue;
            }
            let grown = unclip(&points, self.cfg.unclip_ratio);
            self.pixels.clear();
            self.pixels.extend(grown);
            let Some((rect, sside)) = min_area_rect(&mut self.pixels) else {
                continue;
            };
            if sside < 5.0 {
                continue;
            }
            let mut quad = mini_box(&rect);
            for p in quad.iter_mut() {
                // rapidocr: clip(round(x / width * dest_width), 0, dest_width) as int32.
                p[0] = (p[0] * kx).round_ties_even().clamp(0.0, dest_w);
                p[1] = (p[1] * ky).round_ties_even().clamp(0.0, dest_h);
                p[0] = (p[0] + t.origin.0).trunc();
                p[1] = (p[1] + t.origin.1).trunc();
            }
            // filter_tag_det_res: order clockwise, clip to the image, drop slivers.
            let mut quad = order_clockwise(quad);
            for p in quad.iter_mut() {
                p[0] = p[0].clamp(0.0, frame_w - 1.0).trunc();
                p[1] = p[1].clamp(0.0, frame_h - 1.0).trunc();
            }
            if dist(quad[0], quad[1]) as i64 <= 3 || dist(quad[0], quad[3]) as i64 <= 3 {
                continue;
            }
            self.boxes.push(quad);
        }
        sort_reading_order(&mut self.boxes);
    }

    /// Collects the pixels of the 8-connected region containing `start`.
    fn region(&mut self, start: usize, w: usize, h: usize) {
        self.pixels.clear();
        self.stack.clear();
        self.seen[start] = true;
        self.stack.push(start as u32);
        while let Some(i) = self.stack.pop() {
            let i = i as usize;
            let (x, y) = (i % w, i / w);
            // Only boundary pixels can be hull vertices.
            let inner = x > 0
                && y > 0
                && x + 1 < w
                && y + 1 < h
                && self.bitmap[i - 1] != 0
                && self.bitmap[i + 1] != 0
                && self.bitmap[i - w] != 0
                && self.bitmap[i + w] != 0;
            if !inner {
                self.pixels.push((x as i32, y as i32));
            }
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if !self.seen[j] && self.bitmap[j] != 0 {
                        self.seen[j] = true;
                        self.stack.push(j as u32);
                    }
                }
            }
        }
    }

    fn frame_rgb(&mut self, bytes: &[u8], layout: &FrameLayout) {
        let (w, h) = (layout.width as usize, layout.height as usize);
        self.rgb.resize(w * h * 3, 0);
        for y in 0..h {
            convert_row(
                bytes,
                layout,
                y,
                0,
                3,
                &mut self.rgb[y * w * 3..(y + 1) * w * 3],
            );
        }
    }

    fn recognize(&mut self, layout: &FrameLayout, out: &mut Inspection) -> Result<(), HeadError> {
        let (fw, fh) = (layout.width as usize, layout.height as usize);
        let crops: Vec<Crop> = self
            .boxes
            .iter()
            .map(|q| crop(&self.rgb, fw, fh, q))
            .collect();
        let mut order: Vec<usize> = (0..crops.len()).collect();
        // np.argsort (stable for the short lists PP-OCR sorts).
        order.sort_by(|&a, &b| crops[a].ratio().total_cmp(&crops[b].ratio()));
        let mut results: Vec<Option<(String, f32)>> = vec![None; crops.len()];
        let rh = self.cfg.rec_height;
        for chunk in order.chunks(self.cfg.rec_batch.max(1)) {
            let max_ratio = chunk
                .iter()
                .map(|&i| crops[i].ratio())
                .fold(self.cfg.rec_min_width as f32 / rh as f32, f32::max);
            let rw = (rh as f32 * max_ratio) as usize;
            let plane = rh * rw;
            self.batch.clear();
            self.batch.resize(chunk.len() * 3 * plane, 0.0);
            for (k, &i) in chunk.iter().enumerate() {
                let c = &crops[i];
                let resized_w = ((rh as f32 * c.ratio()).ceil() as usize).clamp(1, rw);
                let mut pre = Preprocessor::new(PreprocessSpec {
                    roi: None,
                    fit: Fit::Stretch,
                    crop_fraction: 1.0,
                    pad_value: 0,
                    interpolation: Interpolation::Linear,
                    color: ColorOrder::Bgr,
                    scale: 1.0 / 255.0,
                    mean: [0.5; 3],
                    std: [0.5; 3],
                    layout: Layout::Nchw,
                    width: resized_w,
                    height: rh,
                });
                let mut resized = vec![0f32; 3 * rh * resized_w];
                let crop_layout = FrameLayout::packed(c.w as u32, c.h as u32, PixelFormat::Rgb24);
                pre.run(&c.pixels, &crop_layout, &mut resized)
                    .map_err(|e| HeadError::Extract {
                        name: "text crop".into(),
                        reason: e.to_string(),
                    })?;
                for ch in 0..3 {
                    for y in 0..rh {
                        let dst = (k * 3 + ch) * plane + y * rw;
                        let src = (ch * rh + y) * resized_w;
                        self.batch[dst..dst + resized_w]
                            .copy_from_slice(&resized[src..src + resized_w]);
                    }
                }
            }
            let rec_name = self.cfg.recognizer.id.clone();
            let run_err = |e: ort::Error| HeadError::Extract {
                name: format!("recogniser {rec_name}"),
                reason: e.to_string(),
            };
            let input = TensorRef::from_array_view(([chunk.len(), 3, rh, rw], &self.batch[..]))
                .map_err(run_err)?;
            let outputs = self.rec.run(ort::inputs![input]).map_err(run_err)?;
            let (shape, probs) = outputs[0].try_extract_tensor::<f32>().map_err(run_err)?;
            let (steps, classes) = match &shape[..] {
                [b, t, c]
                    if *b as usize == chunk.len() && *c as usize == self.cfg.characters.len() =>
                {
                    (*t as usize, *c as usize)
                }
                _ => {
                    return Err(HeadError::Shape {
                        name: format!("recogniser {rec_name} output"),
                        shape: shape.to_vec(),
                        expected:
                            "expected [crops, steps, characters + 2] (blank and space included)",
                    })
                }
            };
            for (k, &i) in chunk.iter().enumerate() {
                let seq = &probs[k * steps * classes..(k + 1) * steps * classes];
                results[i] = Some(ctc_greedy(seq, classes, &self.cfg.characters));
            }
        }
        for (q, r) in self.boxes.iter().zip(results) {
            let Some((text, score)) = r else { continue };
            if score < self.cfg.text_score {
                continue;
            }
            let (x0, y0) = (
                q.iter().map(|p| p[0]).fold(f32::MAX, f32::min),
                q.iter().map(|p| p[1]).fold(f32::MAX, f32::min),
            );
            let (x1, y1) = (
                q.iter().map(|p| p[0]).fold(f32::MIN, f32::max),
                q.iter().map(|p| p[1]).fold(f32::MIN, f32::max),
            );
            out.texts.push(TextLine {
                quad: *q,
                bbox: [x0, y0, x1 - x0, y1 - y0],
                text,
                score,
            });
        }
        Ok(())
    }
}

/// CTC greedy decoding: best class per step, repeats merged, blanks (class 0) dropped;
/// the confidence is the mean probability of the kept steps (0 when none).
pub fn ctc_greedy(probs: &[f32], classes: usize, characters: &[String]) -> (String, f32) {
    let mut text = String::new();
    let (mut sum, mut kept) = (0f32, 0usize);
    let mut prev = usize::MAX;
    for step in probs.chunks_exact(classes) {
        let (mut best, mut p) = (0usize, f32::NEG_INFINITY);
        for (c, &v) in step.iter().enumerate() {
            if v > p {
                (best, p) = (c, v);
            }
        }
        if best != prev && best != 0 {
            if let Some(ch) = characters.get(best) {
                text.push_str(ch);
            }
            sum += p;
            kept += 1;
        }
        prev = best;
    }
    let score = if kept == 0 { 0.0 } else { sum / kept as f32 };
    (text, score)
}

struct Crop {
    w: usize,
    h: usize,
    /// Packed RGB.
    pixels: Vec<u8>,
}

impl Crop {
    fn ratio(&self) -> f32 {
        self.w as f32 / self.h as f32
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// rapidocr's `get_rotate_crop_image`: a perspective warp of the quad onto an upright
/// rectangle (OpenCV INTER_CUBIC, BORDER_REPLICATE), turned 90° counter-clockwise when it
/// is at least 1.5 times taller than wide.
fn crop(rgb: &[u8], fw: usize, fh: usize, q: &Quad) -> Crop {
    let w = (dist(q[0], q[1]).max(dist(q[2], q[3])) as usize).max(1);
    let h = (dist(q[0], q[3]).max(dist(q[1], q[2])) as usize).max(1);
    let dst = [
        [0.0, 0.0],
        [w as f64, 0.0],
        [w as f64, h as f64],
        [0.0, h as f64],
    ];
    let src = q.map(|p| [f64::from(p[0]), f64::from(p[1])]);
    // The map from crop pixels to frame pixels.
    let m = perspective(&dst, &src).unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    let mut pixels = vec![0u8; w * h * 3];
    let at = |x: i64, y: i64, c: usize| {
        let x = x.clamp(0, fw as i64 - 1) as usize;
        let y = y.clamp(0, fh as i64 - 1) as usize;
        f32::from(rgb[(y * fw + x) * 3 + c])
    };
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f64, y as f64);
            let d = m[6] * xf + m[7] * yf + m[8];
            let d = if d != 0.0 { 32.0 / d } else { 0.0 };
            // OpenCV quantises source positions to 1/32 pixel.
            let sx = ((m[0] * xf + m[1] * yf + m[2]) * d).round() as i64;
            let sy = ((m[3] * xf + m[4] * yf + m[5]) * d).round() as i64;
            let (ix, iy) = (sx >> 5, sy >> 5);
            let cx = cubic_weights((sx & 31) as f32 / 32.0);
            let cy = cubic_weights((sy & 31) as f32 / 32.0);
            for c in 0..3 {
                let mut v = 0f32;
                for (j, wy) in cy.iter().enumerate() {
                    let mut row = 0f32;
                    for (i, wx) in cx.iter().enumerate() {
                        row += wx * at(ix - 1 + i as i64, iy - 1 + j as i64, c);
                    }
                    v += wy * row;
                }
                pixels[(y * w + x) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    if h as f32 / w as f32 >= 1.5 {
        // np.rot90: out[i][j] = in[j][w - 1 - i], shape (w, h).
        let mut rot = vec![0u8; w * h * 3];
        for i in 0..w {
            for j in 0..h {
                let s = (j * w + (w - 1 - i)) * 3;
                let d = (i * h + j) * 3;
                rot[d..d + 3].copy_from_slice(&pixels[s..s + 3]);
            }
        }
        return Crop {
            w: h,
            h: w,
            pixels: rot,
        };
    }
    Crop { w, h, pixels }
}

/// OpenCV's bicubic weights (A = -0.75) for a fractional offset.
fn cubic_weights(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// The 3x3 homography taking `from[i]` to `to[i]` (OpenCV `getPerspectiveTransform`).
fn perspective(from: &[[f64; 2]; 4], to: &[[f64; 2]; 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (from[i], to[i]);
        a[i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[i + 4] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for r in 0..8 {
            if r != col {
                let f = a[r][col] / a[col][col];
                let pivot_row = a[col];
                for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut m = [1f64; 9];
    for (i, row) in a.iter().enumerate() {
        m[i] = row[8] / row[i];
    }
    Some(m)
}

/// A rotated rectangle: centre, the unit direction of its first side, and side lengths.
#[derive(Debug, Clone, Copy)]
struct RotRect {
    corners: [[f32; 2]; 4],
}

/// OpenCV `minAreaRect` (rotating calipers over the convex hull); `None` for no points.
/// Returns the rectangle and its shorter side.
fn min_area_rect(points: &mut [(i32, i32)]) -> Option<(RotRect, f32)> {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return None,
        1 => {
            let p = [hull[0].0 as f32, hull[0].1 as f32];
            return Some((RotRect { corners: [p; 4] }, 0.0));
        }
        _ => {}
    }
    let mut best: Option<(f64, RotRect, f32)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let (dx, dy) = (f64::from(b.0 - a.0), f64::from(b.1 - a.1));
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        let (vx, vy) = (-uy, ux);
        let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &hull {
            let (px, py) = (f64::from(p.0 - a.0), f64::from(p.1 - a.1));
            let u = px * ux + py * uy;
            let v = px * vx + py * vy;
            u0 = u0.min(u);
            u1 = u1.max(u);
            v0 = v0.min(v);
            v1 = v1.max(v);
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_none_or(|(b, _, _)| area < *b - 1e-9) {
            let corner = |u: f64, v: f64| {
                [
                    (f64::from(a.0) + u * ux + v * vx) as f32,
                    (f64::from(a.1) + u * uy + v * vy) as f32,
                ]
            };
            let rect = RotRect {
                corners: [
                    corner(u0, v0),
                    corner(u1, v0),
                    corner(u1, v1),
                    corner(u0, v1),
                ],
            };
            best = Some((area, rect, (u1 - u0).min(v1 - v0) as f32));
        }
    }
    best.map(|(_, r, s)| (r, s))
}

/// Andrew's monotone chain; sorts `points` in place.
fn convex_hull(points: &mut [(i32, i32)]) -> Vec<(i32, i32)> {
    points.sort_unstable();
    let cross = |o: (i32, i32), a: (i32, i32), b: (i32, i32)| {
        i64::from(a.0 - o.0) * i64::from(b.1 - o.1) - i64::from(a.1 - o.1) * i64::from(b.0 - o.0)
    };
    let mut hull: Vec<(i32, i32)> = Vec::with_capacity(points.len() + 1);
    for &p in points.iter() {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    }
    let lower = hull.len() + 1;
    for &p in points.iter().rev().skip(1) {
        while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    }
    hull.pop();
    hull.dedup();
    hull
}

/// rapidocr's `get_mini_boxes` corner order: top-left, top-right, bottom-right, bottom-left.
fn mini_box(r: &RotRect) -> Quad {
    let mut p = r.corners;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    [p[i1], p[i2], p[i3], p[i4]]
}

/// rapidocr's `order_points_clockwise`.
fn order_clockwise(q: Quad) -> Quad {
    let mut p = q;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (mut left, mut right) = ([p[0], p[1]], [p[2], p[3]]);
    left.sort_by(|a, b| a[1].total_cmp(&b[1]));
    right.sort_by(|a, b| a[1].total_cmp(&b[1]));
    [left[0], right[0], right[1], left[1]]
}

/// Mean map value inside the quad (rapidocr `box_score_fast`: the quad's corners are
/// truncated to whole pixels, inside-or-on-edge pixels count).
fn box_score_fast(map: &[f32], w: usize, h: usize, q: &Quad) -> f32 {
    let clampi = |v: f32, hi: usize| (v as i64).clamp(0, hi as i64 - 1);
    let xmin = clampi(q.iter().map(|p| p[0]).fold(f32::MAX, f32::min).floor(), w);
    let xmax = clampi(q.iter().map(|p| p[0]).fold(f32::MIN, f32::max).ceil(), w);
    let ymin = clampi(q.iter().map(|p| p[1]).fold(f32::MAX, f32::min).floor(), h);
    let ymax = clampi(q.iter().map(|p| p[1]).fold(f32::MIN, f32::max).ceil(), h);
    let poly: Vec<(f64, f64)> = q
        .iter()
        .map(|p| {
            (
                f64::from((p[0] - xmin as f32).trunc()),
                f64::from((p[1] - ymin as f32).trunc()),
            )
        })
        .collect();
    let (mut sum, mut count) = (0f64, 0usize);
    for y in 0..=(ymax - ymin) {
        let yf = y as f64;
        // Span of the convex polygon on this scanline.
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for i in 0..4 {
            let (a, b) = (poly[i], poly[(i + 1) % 4]);
            if (a.1 - yf) * (b.1 - yf) > 0.0 {
                continue;
            }
            if a.1 == b.1 {
                lo = lo.min(a.0.min(b.0));
                hi = hi.max(a.0.max(b.0));
            } else {
                let x = a.0 + (yf - a.1) * (b.0 - a.0) / (b.1 - a.1);
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        if lo > hi {
            continue;
        }
        let lo = (lo.round() as i64).max(0);
        let hi = (hi.round() as i64).min(xmax - xmin);
        for x in lo..=hi {
            let i = ((ymin + y) as usize) * w + (xmin + x) as usize;
            sum += f64::from(map[i]);
            count += 1;
        }
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64) as f32
    }
}

/// rapidocr's `unclip` (pyclipper round offset by area × ratio / perimeter): the corners
/// are truncated to integers as pyclipper does, each moved out along both adjacent edge
/// normals, and rounded.
fn unclip(q: &Quad, ratio: f32) -> Vec<(i32, i32)> {
    let (mut area, mut length) = (0f64, 0f64);
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        area += f64::from(a[0]) * f64::from(b[1]) - f64::from(b[0]) * f64::from(a[1]);
        length += f64::from(dist(a, b));
    }
    let area = area.abs() / 2.0;
    if length == 0.0 {
        return Vec::new();
    }
    let d = area * f64::from(ratio) / length;
    let p: Vec<(f64, f64)> = q
        .iter()
        .map(|p| (f64::from(p[0]).trunc(), f64::from(p[1]).trunc()))
        .collect();
    // Orientation: positive signed area means counter-clockwise in y-down pixels.
    let signed: f64 = (0..4)
        .map(|i| p[i].0 * p[(i + 1) % 4].1 - p[(i + 1) % 4].0 * p[i].1)
        .sum();
    let sign = if signed >= 0.0 { 1.0 } else { -1.0 };
    let mut out = Vec::with_capacity(8);
    for i in 0..4 {
        let (a, b) = (p[i], p[(i + 1) % 4]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            continue;
        }
        // Outward normal of edge a→b.
        let (nx, ny) = (sign * dy / len, -sign * dx / len);
        for q in [a, b] {
            out.push(((q.0 + nx * d).round() as i32, (q.1 + ny * d).round() as i32));
        }
    }
    out
}

/// rapidocr's `sorted_boxes`: by the first corner's (y, x), then neighbours on the same
/// line (y within 10 px) swapped into left-to-right order.
fn sort_reading_order(boxes: &mut [Quad]) {
    boxes.sort_by(|a, b| {
        a[0][1]
            .total_cmp(&b[0][1])
            .then(a[0][0].total_cmp(&b[0][0]))
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            if (boxes[j + 1][0][1] - boxes[j][0][1]).abs() < 10.0
                && boxes[j + 1][0][0] < boxes[j][0][0]
            {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_area_rect_of_an_axis_aligned_block() {
        let mut pts: Vec<(i32, i32)> = (0..10).flat_map(|x| (0..4).map(move |y| (x, y))).collect();
        let (r, sside) = min_area_rect(&mut pts).unwrap();
        assert_eq!(sside, 3.0);
        let q = mini_box(&r);
        assert_eq!(q, [[0.0, 0.0], [9.0, 0.0], [9.0, 3.0], [0.0, 3.0]]);
    }

    #[test]
    fn unclip_matches_pyclipper_on_a_rectangle() {
        // pyclipper offsets [[0.9,0.9],[10.9,0.9],[10.9,5.9],[0.9,5.9]] by 2.0 to a shape
        // spanning x -2..12, y -2..7.
        let q = [[0.9, 0.9], [10.9, 0.9], [10.9, 5.9], [0.9, 5.9]];
        // area 50, perimeter 30: ratio 1.2 gives distance 2.
        let mut pts = unclip(&q, 1.2);
        let xs: Vec<i32> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<i32> = pts.iter().map(|p| p.1).collect();
        assert_eq!(
            (*xs.iter().min().unwrap(), *xs.iter().max().unwrap()),
            (-2, 12)
        );
        assert_eq!(
            (*ys.iter().min().unwrap(), *ys.iter().max().unwrap()),
            (-2, 7)
        );
        let (_, sside) = min_area_rect(&mut pts).unwrap();
        assert_eq!(sside, 9.0);
    }

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let chars: Vec<String> = ["blank", "a", "b", " "].map(String::from).to_vec();
        #[rustfmt::skip]
        let probs = [
            0.1, 0.9, 0.0, 0.0, // a
            0.1, 0.8, 0.1, 0.0, // a (repeat)
            0.9, 0.1, 0.0, 0.0, // blank
            0.2, 0.7, 0.1, 0.0, // a
            0.0, 0.0, 0.6, 0.4, // b
        ];
        let (text, score) = ctc_greedy(&probs, 4, &chars);
        assert_eq!(text, "aab");
        assert!((score - (0.9 + 0.7 + 0.6) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn perspective_maps_corners() {
        let from = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]];
        let to = [[3.0, 4.0], [13.0, 5.0], [12.0, 10.0], [2.0, 9.0]];
        let m = perspective(&from, &to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            let d = m[6] * f[0] + m[7] * f[1] + m[8];
            let x = (m[0] * f[0] + m[1] * f[1] + m[2]) / d;
            let y = (m[3] * f[0] + m[4] * f[1] + m[5]) / d;
            assert!((x - t[0]).abs() < 1e-9 && (y - t[1]).abs() < 1e-9);
        }
    }
}
