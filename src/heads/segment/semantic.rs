//! Per-pixel class maps (`[1, C, H, W]`) → regions.
//!
//! Each pixel takes the class with the largest value (the first on ties, as numpy's
//! argmax) and that class's probability; pixels of one class that touch (8-connectivity)
//! form a region. Regions are listed class by class, each class in the row-major order of
//! the regions' first pixels. A one-channel map is one defect class: pixels at or above
//! `threshold` (after the activation) form its regions.

use ort::session::SessionOutputs;

use crate::heads::regions::{Region, RegionFinder};
use crate::heads::{f32_output, FrameGeometry, HeadError};
use crate::verdict::{Defect, Inspection};

/// What turns the model's values into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// C > 1: softmax unless a pixel's values already are probabilities summing to 1;
    /// C = 1: sigmoid unless every value already lies in [0, 1].
    #[default]
    Auto,
    Softmax,
    Sigmoid,
    /// The values are probabilities.
    None,
}

#[derive(Debug, Clone)]
pub struct SemanticConfig {
    pub output: String,
    /// Channels (C) of the output.
    pub classes: usize,
    /// The class that is not a defect (no regions); `None`: every class makes regions.
    pub background: Option<usize>,
    pub activation: Activation,
    /// C = 1: probability at which a pixel belongs to the class.
    pub threshold: f32,
}

/// A pixel that belongs to no region.
const NONE: u16 = u16::MAX;

pub struct SemanticSegmenter {
    cfg: SemanticConfig,
    /// Per pixel: the class (or [`NONE`]) and its probability.
    class: Vec<u16>,
    prob: Vec<f32>,
    size: (usize, usize),
    regions: RegionFinder,
    /// Tiled frames: the tiles' classes pasted into one map over the frame.
    stitched: Option<Stitched>,
}

/// Per pixel of the stitched map: the class and probability of the tile most sure of it.
struct Stitched {
    class: Vec<u16>,
    prob: Vec<f32>,
    size: (usize, usize),
}

impl SemanticSegmenter {
    pub fn new(cfg: SemanticConfig) -> Self {
        SemanticSegmenter {
            cfg,
            class: Vec::new(),
            prob: Vec::new(),
            size: (0, 0),
            regions: RegionFinder::default(),
            stitched: None,
        }
    }

    /// Starts a tiled frame whose stitched map is `width` x `height` (map pixels; the
    /// buffers grow only when the frame geometry changes).
    pub fn begin_tiles(&mut self, width: usize, height: usize) {
        let m = self.stitched.get_or_insert_with(|| Stitched {
            class: Vec::new(),
            prob: Vec::new(),
            size: (0, 0),
        });
        let n = width * height;
        m.class.resize(n, NONE);
        m.prob.resize(n, 0.0);
        m.class.fill(NONE);
        m.prob.fill(f32::NEG_INFINITY);
        m.size = (width, height);
    }

    /// Labels one tile and pastes it at `(x, y)` of the stitched map; where tiles overlap,
    /// the tile surer of its class wins.
    pub fn add_tile(
        &mut self,
        outputs: &SessionOutputs<'_>,
        x: usize,
        y: usize,
    ) -> Result<(), HeadError> {
        self.segment(outputs)?;
        let Some(m) = self.stitched.as_mut() else {
            return Ok(());
        };
        let ((tw, th), (w, h)) = (self.size, m.size);
        for r in 0..th.min(h.saturating_sub(y)) {
            let cols = tw.min(w.saturating_sub(x));
            let dst = (y + r) * w + x;
            let src = r * tw;
            for i in 0..cols {
                let p = self.prob[src + i];
                if p > m.prob[dst + i] {
                    m.prob[dst + i] = p;
                    m.class[dst + i] = self.class[src + i];
                }
            }
        }
        Ok(())
    }

    /// Map size (width, height) of the last frame.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// Per-pixel class of the last frame (`u16::MAX`: no class).
    pub fn classes(&self) -> &[u16] {
        &self.class
    }

    pub fn segment(&mut self, outputs: &SessionOutputs<'_>) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.output)?;
        self.segment_tensor(shape, data)
    }

    /// Labels every pixel of one `[1, C, H, W]` tensor.
    pub fn segment_tensor(&mut self, shape: &[i64], data: &[f32]) -> Result<(), HeadError> {
        let c = self.cfg.classes;
        let (h, w) = match shape {
            [1, ch, h, w] if *ch as usize == c && *h > 0 && *w > 0 => (*h as usize, *w as usize),
            _ => {
                return Err(HeadError::Shape {
                    name: self.cfg.output.clone(),
                    shape: shape.to_vec(),
                    expected:
                        "expected [1, classes, height, width] as when the scenario was checked",
                })
            }
        };
        let n = h * w;
        if data.len() != c * n {
            return Err(HeadError::Shape {
                name: self.cfg.output.clone(),
                shape: shape.to_vec(),
                expected: "the tensor holds fewer values than its shape says",
            });
        }
        if self.size != (w, h) {
            // Once, on the first frame (or when a dynamic-size model changes size).
            self.class.resize(n, NONE);
            self.prob.resize(n, 0.0);
            self.size = (w, h);
        }
        if c == 1 {
            self.one_class(data);
        } else {
            self.many_classes(data, c, n);
        }
        Ok(())
    }

    fn one_class(&mut self, data: &[f32]) {
        let sigmoid = match self.cfg.activation {
            Activation::Sigmoid | Activation::Softmax => true,
            Activation::None => false,
            Activation::Auto => data.iter().any(|v| !(0.0..=1.0).contains(v)),
        };
        let (t, bg) = (self.cfg.threshold, self.cfg.background == Some(0));
        for ((v, cls), p) in data.iter().zip(&mut self.class).zip(&mut self.prob) {
            *p = if sigmoid {
                1.0 / (1.0 + (-v).exp())
            } else {
                *v
            };
            *cls = if *p >= t && !bg { 0 } else { NONE };
        }
    }

    fn many_classes(&mut self, data: &[f32], c: usize, n: usize) {
        let act = self.cfg.activation;
        for i in 0..n {
            let (mut best, mut arg, mut sum) = (f32::NEG_INFINITY, 0usize, 0.0f32);
            let mut in_unit = true;
            for k in 0..c {
                let v = data[k * n + i];
                sum += v;
                in_unit &= (0.0..=1.0).contains(&v);
                if v > best {
                    best = v;
                    arg = k;
                }
            }
            let softmax = match act {
                Activation::Softmax => true,
                Activation::Auto => !(in_unit && (sum - 1.0).abs() < 1e-3),
                Activation::Sigmoid | Activation::None => false,
            };
            let p = if softmax {
                let mut z = 0.0f32;
                for k in 0..c {
                    z += (data[k * n + i] - best).exp();
                }
                1.0 / z
            } else if act == Activation::Sigmoid {
                1.0 / (1.0 + (-best).exp())
            } else {
                best
            };
            self.prob[i] = p;
            self.class[i] = if self.cfg.background == Some(arg) {
                NONE
            } else {
                arg as u16
            };
        }
    }

    /// The last frame's regions, class by class, as defects on the frame.
    /// The last frame's class map (the stitched one for tiled frames) and its size.
    pub fn class_map(&self) -> (&[u16], (usize, usize)) {
        match &self.stitched {
            Some(m) => (&m.class, m.size),
            None => (&self.class, self.size),
        }
    }

    pub fn regions(
        &mut self,
        g: &FrameGeometry,
        frame: (u32, u32),
        min_area_px: f32,
        mm_per_px: Option<f32>,
        out: &mut Inspection,
    ) {
        let (class, prob) = match &self.stitched {
            Some(m) => (&m.class, &m.prob),
            None => (&self.class, &self.prob),
        };
        let (mw, mh) = self.stitched.as_ref().map_or(self.size, |m| m.size);
        if mw == 0 {
            return;
        }
        // Map pixels → model-input pixels → frame pixels.
        let (kx, ky) = (g.input.0 as f32 / mw as f32, g.input.1 as f32 / mh as f32);
        let t = g.transform;
        let px_area = kx * ky * t.scale.0 * t.scale.1;
        let (fw, fh) = (frame.0 as f32, frame.1 as f32);
        for c in 0..self.cfg.classes {
            let c16 = c as u16;
            let emit = |r: Region| {
                let area = r.pixels as f32 * px_area;
                if area < min_area_px {
                    return;
                }
                if out.defects.len() == out.defects.capacity() {
                    out.defects_truncated += 1;
                    return;
                }
                let (x0, y0) = t.to_frame(r.x0 as f32 * kx, r.y0 as f32 * ky);
                let (x1, y1) = t.to_frame(r.x1 as f32 * kx, r.y1 as f32 * ky);
                let (x0, x1) = (x0.clamp(0.0, fw), x1.clamp(0.0, fw));
                let (y0, y1) = (y0.clamp(0.0, fh), y1.clamp(0.0, fh));
                out.defects.push(Defect {
                    class: Some(c),
                    bbox: [x0, y0, x1 - x0, y1 - y0],
                    area_px: area,
                    area_mm2: mm_per_px.map(|m| area * m * m),
                    score: r.sum / r.pixels as f32,
                });
            };
            self.regions
                .find_where(mw, mh, |i| class[i] == c16, |i| prob[i], emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Transform;

    fn seg(classes: usize, background: Option<usize>, activation: Activation) -> SemanticSegmenter {
        SemanticSegmenter::new(SemanticConfig {
            output: "logits".into(),
            classes,
            background,
            activation,
            threshold: 0.5,
        })
    }

    fn geometry(scale: f32, input: (usize, usize)) -> FrameGeometry {
        FrameGeometry {
            transform: Transform {
                origin: (0.0, 0.0),
                scale: (scale, scale),
                pad: (0.0, 0.0),
            },
            input,
        }
    }

    #[test]
    fn argmax_regions_per_class_with_mean_probability() {
        // 3 classes on a 4x3 map: class 1 in the top-left corner (2 px), class 2 on the right.
        #[rustfmt::skip]
        let logits: Vec<f32> = [
            // class 0 (background)
            [0.0, 0.0, 5.0, 0.0,
             5.0, 0.0, 5.0, 0.0,
             5.0, 5.0, 5.0, 0.0],
            // class 1
            [3.0, 2.0, 0.0, 0.0,
             0.0, 4.0, 0.0, 0.0,
             0.0, 0.0, 0.0, 0.0],
            // class 2
            [0.0, 0.0, 0.0, 2.0,
             0.0, 0.0, 0.0, 2.0,
             0.0, 0.0, 0.0, 2.0],
        ]
        .concat();
        let mut s = seg(3, Some(0), Activation::Auto);
        s.segment_tensor(&[1, 3, 3, 4], &logits).unwrap();
        let mut out = Inspection::with_capacity(0, 8);
        // frame is twice the map: areas x4
        s.regions(&geometry(2.0, (4, 3)), (8, 6), 0.0, Some(0.5), &mut out);
        assert_eq!(out.defects.len(), 2);
        let (a, b) = (out.defects[0], out.defects[1]);
        assert_eq!(a.class, Some(1));
        assert_eq!(a.bbox, [0.0, 0.0, 4.0, 4.0]);
        assert_eq!(a.area_px, 12.0);
        assert_eq!(a.area_mm2, Some(3.0));
        let p = |l: [f32; 3], k: usize| l[k].exp() / l.iter().map(|v| v.exp()).sum::<f32>();
        let mean = (p([0.0, 3.0, 0.0], 1) + p([0.0, 2.0, 0.0], 1) + p([0.0, 4.0, 0.0], 1)) / 3.0;
        assert!((a.score - mean).abs() < 1e-6, "{} vs {mean}", a.score);
        assert_eq!(b.class, Some(2));
        assert_eq!(b.bbox, [6.0, 0.0, 2.0, 6.0]);
        // min area drops the small one
        let mut out = Inspection::with_capacity(0, 8);
        s.regions(&geometry(2.0, (4, 3)), (8, 6), 12.5, None, &mut out);
        assert_eq!(out.defects.len(), 0);
    }

    #[test]
    fn probabilities_are_not_softmaxed_again() {
        let probs = [0.2, 0.9, 0.8, 0.1];
        let mut s = seg(2, Some(0), Activation::Auto);
        s.segment_tensor(&[1, 2, 1, 2], &probs).unwrap();
        assert_eq!(s.classes(), [1, u16::MAX]);
        assert_eq!(s.prob[0], 0.8);
    }

    #[test]
    fn one_channel_maps_take_sigmoid_only_for_logits() {
        let mut s = seg(1, None, Activation::Auto);
        s.segment_tensor(&[1, 1, 1, 3], &[0.2, 0.6, 0.5]).unwrap();
        assert_eq!(s.classes(), [u16::MAX, 0, 0]);
        s.segment_tensor(&[1, 1, 1, 3], &[-2.0, 0.1, 3.0]).unwrap();
        assert_eq!(s.classes(), [u16::MAX, 0, 0]);
        assert!((s.prob[1] - 0.524_979).abs() < 1e-5);
    }

    #[test]
    fn wrong_shape_is_an_error() {
        let mut s = seg(3, Some(0), Activation::Auto);
        assert!(s.segment_tensor(&[1, 2, 2, 2], &[0.0; 8]).is_err());
        assert!(s.segment_tensor(&[1, 3, 2, 2], &[0.0; 8]).is_err());
    }
}
