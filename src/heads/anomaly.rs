//! Anomaly detection: anomalib exports (and later fitted PatchCore models) as-is.
//!
//! anomalib's contract: input `input` (RGB, NCHW, [0,1]); outputs `pred_score` (image
//! score, already normalised so 0.5 is the trained threshold), `pred_label` (bool),
//! `anomaly_map` (normalised per pixel) and `pred_mask` (bool). Shapes vary between
//! exports (`[1]` or `[1,1]`; maps smaller than the input), so they are read per frame.

use ort::session::SessionOutputs;

use super::regions::RegionFinder;
use super::{f32_output, FrameGeometry, HeadError};
use crate::verdict::{Defect, Failure, Inspection};

#[derive(Debug, Clone)]
pub struct AnomalyConfig {
    pub score_output: String,
    /// Bool output with the model's own decision; used when no score threshold is set.
    pub label_output: Option<String>,
    pub map_output: Option<String>,
    /// The threshold the score is compared with; `None` trusts `label_output` (or 0.5).
    pub score_threshold: Option<f32>,
    pub pixel_threshold: f32,
    pub min_area_px: f32,
    pub max_defects: usize,
}

pub struct AnomalyHead {
    cfg: AnomalyConfig,
    regions: RegionFinder,
}

impl AnomalyHead {
    pub fn new(cfg: AnomalyConfig) -> Self {
        AnomalyHead {
            cfg,
            regions: RegionFinder::default(),
        }
    }

    pub fn max_defects(&self) -> usize {
        self.cfg.max_defects
    }

    pub fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.score_output)?;
        let Some(&score) = data.first() else {
            return Err(HeadError::Shape {
                name: self.cfg.score_output.clone(),
                shape: shape.to_vec(),
                expected: "expected one image score",
            });
        };
        out.score = Some(score);
        let threshold = self.cfg.score_threshold.unwrap_or(0.5);
        let is_anomalous = match (&self.cfg.score_threshold, &self.cfg.label_output) {
            (None, Some(label)) => model_label(outputs, label)?,
            _ => score >= threshold,
        };
        if is_anomalous {
            out.fail(Failure::AnomalyScore { score, threshold });
        }
        if let Some(map_name) = &self.cfg.map_output {
            let (shape, map) = f32_output(outputs, map_name)?;
            let (mh, mw) = match shape {
                [.., h, w] if *h > 0 && *w > 0 => (*h as usize, *w as usize),
                _ => {
                    return Err(HeadError::Shape {
                        name: map_name.clone(),
                        shape: shape.to_vec(),
                        expected: "expected [.., height, width]",
                    })
                }
            };
            self.collect_regions(&map[..mh * mw], mw, mh, geometry, out);
        }
        Ok(())
    }

    fn collect_regions(
        &mut self,
        map: &[f32],
        mw: usize,
        mh: usize,
        g: &FrameGeometry,
        out: &mut Inspection,
    ) {
        // Map pixels → model-input pixels → frame pixels.
        let (kx, ky) = (g.input.0 as f32 / mw as f32, g.input.1 as f32 / mh as f32);
        let t = g.transform;
        let px_area = kx * ky * t.scale.0 * t.scale.1;
        let (min_area, cap) = (self.cfg.min_area_px, self.cfg.max_defects);
        self.regions
            .find(map, mw, mh, self.cfg.pixel_threshold, |r| {
                let area = r.pixels as f32 * px_area;
                if area < min_area {
                    return;
                }
                if out.defects.len() == cap {
                    out.defects_truncated += 1;
                    return;
                }
                let (x0, y0) = t.to_frame(r.x0 as f32 * kx, r.y0 as f32 * ky);
                let (x1, y1) = t.to_frame(r.x1 as f32 * kx, r.y1 as f32 * ky);
                out.defects.push(Defect {
                    class: None,
                    bbox: [x0, y0, x1 - x0, y1 - y0],
                    area_px: area,
                    score: r.max,
                });
            });
    }
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
