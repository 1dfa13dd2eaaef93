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
//!
//! The steps live in one file each: [`detection`] (map → boxes), [`crop`] (box → upright
//! line image), [`decode`] (recogniser output → text); this file runs them per frame.

mod crop;
mod decode;
mod detection;
mod plan;

pub use self::decode::ctc_greedy;
pub use plan::KIND;

use std::sync::Arc;

use ort::session::Session;
use ort::value::TensorRef;

use self::crop::{crop, Crop};
use self::detection::{BoxFinder, BoxParams};
use super::text_rules::{self, TextRule};
use super::{f32_output, FrameGeometry, HeadError};
use crate::engine::{open_session, EngineError, ModelInfo};
use crate::frame::{FrameLayout, PixelFormat};
use crate::geometry::{self, Quad};
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

pub struct OcrHead {
    cfg: OcrConfig,
    rec: Session,
    /// The frame as packed RGB (crops are cut from it).
    rgb: Vec<u8>,
    finder: BoxFinder,
    /// Text boxes (top-left, top-right, bottom-right, bottom-left), frame pixels, in
    /// reading order.
    boxes: Vec<Quad>,
    batch: Vec<f32>,
}

impl OcrHead {
    pub fn new(cfg: OcrConfig) -> Result<Self, EngineError> {
        let rec = open_session(&cfg.recognizer.path, cfg.intra_threads)?;
        let finder = BoxFinder::new(BoxParams {
            det_threshold: cfg.det_threshold,
            box_threshold: cfg.box_threshold,
            unclip_ratio: cfg.unclip_ratio,
            max_candidates: cfg.max_candidates,
        });
        Ok(OcrHead {
            cfg,
            rec,
            rgb: Vec::new(),
            finder,
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
        self.finder
            .find(map, mw, mh, geometry, frame.1, &mut self.boxes);
        if !self.boxes.is_empty() {
            self.frame_rgb(frame.0, frame.1);
            self.recognize(frame.1, out)?;
        }
        out.score = out.texts.iter().map(|t| t.score).reduce(f32::min);
        text_rules::apply(&self.cfg.text_rules, self.cfg.today, out);
        Ok(())
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
            let [x0, y0, x1, y1] = geometry::bounds(q);
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
