//! Ultralytics segmentation exports: boxes with mask coefficients, and mask prototypes.
//!
//! Follows `SegmentationPredictor.construct_result` with `retina_masks=False` (predict's
//! default) and `ops.process_mask(..., upsample=True)`: after NMS, a box's mask logits are
//! its coefficients times the prototypes (`[nm] x [nm, mh, mw]`), upsampled bilinearly
//! (PyTorch's `align_corners=False`) to the model input, kept where the logit is above
//! the threshold's logit (0 for 0.5) and inside the box (`x1 <= col < x2`,
//! `y1 <= row < y2`). Boxes whose mask is empty are dropped, as Ultralytics does. The
//! region's area is the mask's, scaled to frame pixels; its box and score are the
//! detection's.

use ort::session::SessionOutputs;

use crate::heads::detect::{push_box, Candidate, DetectConfig, DetectHead};
use crate::heads::{f32_output, FrameGeometry, HeadError, NO_CLASS};
use crate::verdict::Inspection;

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// Boxes, scores and mask coefficients (`mask_coeffs` = nm).
    pub detect: DetectConfig,
    /// The prototypes output, `[1, nm, mh, mw]`.
    pub protos: String,
    /// Mask probability a pixel needs (0.5 = logit 0, Ultralytics' threshold).
    pub threshold: f32,
}

pub struct InstanceSegmenter {
    det: DetectHead,
    protos: String,
    /// The threshold as a logit.
    logit_threshold: f32,
    /// One box's mask logits at prototype resolution.
    logits: Vec<f32>,
    /// The frame's masks at prototype resolution: each pixel's box class, or
    /// [`NO_CLASS`] (evidence images blend it in).
    classes: Vec<u16>,
    mask_size: (usize, usize),
}

impl InstanceSegmenter {
    pub fn new(cfg: InstanceConfig) -> Self {
        let t = cfg.threshold.clamp(1e-6, 1.0 - 1e-6);
        InstanceSegmenter {
            det: DetectHead::new(cfg.detect),
            protos: cfg.protos,
            logit_threshold: (t / (1.0 - t)).ln(),
            logits: Vec::new(),
            classes: Vec::new(),
            mask_size: (0, 0),
        }
    }

    pub fn max_detections(&self) -> usize {
        self.det.max_detections()
    }

    /// The last frame's masks (class per prototype pixel) and their size.
    pub fn class_map(&self) -> (&[u16], (usize, usize)) {
        (&self.classes, self.mask_size)
    }

    pub fn segment(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame: (u32, u32),
        min_area_px: f32,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        self.det.run(outputs, &geometry.transform)?;
        let cfg = self.det.config();
        let (_, boxes) = f32_output(outputs, &cfg.output)?;
        let (shape, protos) = f32_output(outputs, &self.protos)?;
        let nm = cfg.mask_coeffs;
        let (mh, mw) = match shape {
            [1, c, h, w] if *c as usize == nm && *h > 0 && *w > 0 => (*h as usize, *w as usize),
            _ => {
                return Err(HeadError::Shape {
                    name: self.protos.clone(),
                    shape: shape.to_vec(),
                    expected: "expected [1, mask coefficients, height, width] (mask prototypes)",
                })
            }
        };
        if protos.len() != nm * mh * mw {
            return Err(HeadError::Shape {
                name: self.protos.clone(),
                shape: shape.to_vec(),
                expected: "the tensor holds fewer values than its shape says",
            });
        }
        if self.logits.len() != mh * mw {
            self.logits.resize(mh * mw, 0.0); // once: the prototype size is fixed
            self.classes.resize(mh * mw, NO_CLASS);
        }
        self.classes.fill(NO_CLASS);
        self.mask_size = (mw, mh);
        let anchors = boxes.len() / (4 + cfg.classes + nm).max(1);
        let scale = geometry.transform.scale;
        for k in self.det.kept() {
            let coeff = |j: usize| boxes[(4 + cfg.classes + j) * anchors + k.anchor];
            mask_logits(&mut self.logits, protos, nm, coeff);
            let pixels = mask_pixels(
                &self.logits,
                (mw, mh),
                geometry.input,
                k,
                self.logit_threshold,
            );
            if pixels == 0 {
                continue; // Ultralytics keeps only detections with a mask
            }
            let area = pixels as f32 * scale.0 * scale.1;
            if area < min_area_px {
                continue;
            }
            push_box(k, Some(area), cfg.mm_per_px, frame, out);
            paint_mask(
                &mut self.classes,
                &self.logits,
                (mw, mh),
                geometry.input,
                k,
                self.logit_threshold,
            );
        }
        Ok(())
    }
}

/// Marks the prototype pixels of box `k`'s mask (inside its box, above `threshold`) with
/// its class, for evidence images (prototype resolution: no upsampling here).
fn paint_mask(
    classes: &mut [u16],
    logits: &[f32],
    (mw, mh): (usize, usize),
    (iw, ih): (usize, usize),
    k: &Candidate,
    threshold: f32,
) {
    let [x1, y1, x2, y2] = k.input_xyxy;
    let (sx, sy) = (mw as f32 / iw.max(1) as f32, mh as f32 / ih.max(1) as f32);
    let span = |lo: f32, hi: f32, len: usize| {
        let a = (lo.max(0.0) as usize).min(len);
        let b = (hi.ceil().max(0.0) as usize).min(len);
        a..b.max(a)
    };
    let class = u16::try_from(k.class).unwrap_or(NO_CLASS - 1);
    for y in span(y1 * sy, y2 * sy, mh) {
        for x in span(x1 * sx, x2 * sx, mw) {
            if logits[y * mw + x] > threshold {
                classes[y * mw + x] = class;
            }
        }
    }
}

/// `out[p] = sum_j coeff(j) * protos[j][p]`.
fn mask_logits(out: &mut [f32], protos: &[f32], nm: usize, coeff: impl Fn(usize) -> f32) {
    let n = out.len();
    out.fill(0.0);
    for j in 0..nm {
        let c = coeff(j);
        for (o, p) in out.iter_mut().zip(&protos[j * n..(j + 1) * n]) {
            *o += c * p;
        }
    }
}

/// PyTorch's source index for `align_corners=False` bilinear: the left/top neighbour,
/// the right/bottom one (clamped), and the weight of the latter.
fn source_index(dst: usize, scale: f32, len: usize) -> (usize, usize, f32) {
    let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
    let i0 = (src as usize).min(len - 1);
    let i1 = if i0 < len - 1 { i0 + 1 } else { i0 };
    (i0, i1, src - i0 as f32)
}

/// Pixels of the mask upsampled to the model input (`input` = width, height) that are
/// above `threshold` and inside the box.
fn mask_pixels(
    logits: &[f32],
    (mw, mh): (usize, usize),
    (iw, ih): (usize, usize),
    k: &Candidate,
    threshold: f32,
) -> usize {
    let [x1, y1, x2, y2] = k.input_xyxy;
    // integer columns c with x1 <= c < x2, inside the input
    let span = |lo: f32, hi: f32, len: usize| {
        let a = lo.ceil().max(0.0) as usize;
        let b = (hi.ceil().max(0.0) as usize).min(len);
        a..b.max(a)
    };
    let (sx, sy) = (mw as f32 / iw as f32, mh as f32 / ih as f32);
    let mut count = 0;
    for y in span(y1, y2, ih) {
        let (r0, r1, ly) = source_index(y, sy, mh);
        let (row0, row1) = (
            &logits[r0 * mw..(r0 + 1) * mw],
            &logits[r1 * mw..(r1 + 1) * mw],
        );
        for x in span(x1, x2, iw) {
            let (c0, c1, lx) = source_index(x, sx, mw);
            let top = (1.0 - lx) * row0[c0] + lx * row0[c1];
            let bottom = (1.0 - lx) * row1[c0] + lx * row1[c1];
            let v = (1.0 - ly) * top + ly * bottom;
            if v > threshold {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_source_indices_follow_pytorch() {
        // 80 → 320: scale 0.25; dst 0 → src -0.375 → clamped 0
        assert_eq!(source_index(0, 0.25, 80), (0, 1, 0.0));
        // dst 2 → 0.125
        assert_eq!(source_index(2, 0.25, 80), (0, 1, 0.125));
        // last: dst 319 → 79.375 → both 79
        let (a, b, _) = source_index(319, 0.25, 80);
        assert_eq!((a, b), (79, 79));
    }

    #[test]
    fn mask_is_cropped_to_the_box_and_thresholded() {
        // a 2x2 prototype map, all positive → every pixel of the 8x8 input above 0
        let logits = [1.0, 1.0, 1.0, 1.0];
        let k = Candidate {
            xyxy: [0.0; 4],
            input_xyxy: [1.5, 2.0, 4.0, 8.0],
            score: 0.9,
            class: 0,
            tile: 0,
            anchor: 0,
        };
        // columns 2..4 (2), rows 2..8 (6)
        assert_eq!(mask_pixels(&logits, (2, 2), (8, 8), &k, 0.0), 12);
        assert_eq!(mask_pixels(&logits, (2, 2), (8, 8), &k, 1.5), 0);
        let mut out = [0.0; 4];
        let protos = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        mask_logits(&mut out, &protos, 2, |j| [1.0, -0.1][j]);
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0]);
    }
}
