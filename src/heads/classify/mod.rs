//! Classification: logits or probabilities → top classes → OK/NG by class lists and score.

mod plan;

pub(crate) use plan::no_defaults_pub;
pub use plan::{Softmax, KIND};

use ort::session::SessionOutputs;

use super::{f32_output, FrameGeometry, FrameRef, Head, HeadError};
use crate::verdict::{ClassScore, Failure, Inspection};

#[derive(Debug, Clone)]
pub struct ClassifyConfig {
    pub output: String,
    pub classes: usize,
    pub softmax: Softmax,
    pub top_k: usize,
    /// Per class: the part is OK only if its top class is marked (all true when unset).
    pub ok: Vec<bool>,
    /// Per class: the part is NG if its top class is marked.
    pub ng: Vec<bool>,
    pub min_score: Option<f32>,
}

pub struct ClassifyHead {
    cfg: ClassifyConfig,
    probs: Vec<f32>,
}

impl ClassifyHead {
    pub fn new(cfg: ClassifyConfig) -> Self {
        ClassifyHead {
            probs: Vec::with_capacity(cfg.classes),
            cfg,
        }
    }

    pub fn top_k(&self) -> usize {
        self.cfg.top_k
    }

    fn classify(
        &mut self,
        outputs: &SessionOutputs<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.output)?;
        if data.len() != self.cfg.classes {
            return Err(HeadError::Shape {
                name: self.cfg.output.clone(),
                shape: shape.to_vec(),
                expected: "expected one score per class for a single image",
            });
        }
        self.probs.clear();
        self.probs.extend_from_slice(data);
        let already_probabilities = {
            let sum: f32 = data.iter().sum();
            data.iter().all(|&v| (0.0..=1.0).contains(&v)) && (sum - 1.0).abs() < 1e-3
        };
        let apply = match self.cfg.softmax {
            Softmax::Always => true,
            Softmax::Never => false,
            Softmax::Auto => !already_probabilities,
        };
        if apply {
            softmax(&mut self.probs);
        }
        top_k(&self.probs, self.cfg.top_k, &mut out.classes);
        let Some(best) = out.classes.first().copied() else {
            return Ok(());
        };
        out.score = Some(best.score);
        if !self.cfg.ok.get(best.index).copied().unwrap_or(true) {
            out.fail(Failure::ClassNotAllowed { class: best.index });
        }
        if self.cfg.ng.get(best.index).copied().unwrap_or(false) {
            out.fail(Failure::NgClass { class: best.index });
        }
        if let Some(min) = self.cfg.min_score {
            if best.score < min {
                out.fail(Failure::LowScore {
                    score: best.score,
                    min,
                });
            }
        }
        Ok(())
    }
}

impl Head for ClassifyHead {
    fn inspection(&self) -> Inspection {
        Inspection::with_capacity(self.top_k(), 0)
    }

    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        _geometry: &FrameGeometry,
        _frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        self.classify(outputs, out)
    }
}

/// Numerically stable softmax in place.
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    if sum > 0.0 {
        for x in v.iter_mut() {
            *x /= sum;
        }
    }
}

/// The `k` best scores, best first, written into `out` (whose capacity is reused).
/// Ties keep the lower class index first, as `numpy.argsort(-x, kind="stable")` does.
pub fn top_k(scores: &[f32], k: usize, out: &mut Vec<ClassScore>) {
    out.clear();
    for (index, &score) in scores.iter().enumerate() {
        if out.len() == k && out.last().is_some_and(|l| score <= l.score) {
            continue;
        }
        let pos = out.partition_point(|c| c.score >= score);
        if out.len() == k {
            out.pop();
        }
        if out.len() < k {
            out.insert(pos, ClassScore { index, score });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let mut out = Vec::with_capacity(3);
        top_k(&[0.1, 0.5, 0.2, 0.5, 0.05], 3, &mut out);
        let idx: Vec<usize> = out.iter().map(|c| c.index).collect();
        assert_eq!(idx, [1, 3, 2]);
        assert_eq!(out.capacity(), 3, "no reallocation");
    }

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let mut v = [1000.0, 1000.0, -1000.0];
        softmax(&mut v);
        assert!((v[0] - 0.5).abs() < 1e-6 && (v[1] - 0.5).abs() < 1e-6 && v[2] == 0.0);
    }
}
