//! Teach by example: a classifier fitted on the box (`lineside fit`) from folders of
//! labelled images. The bundled backbone's feature maps are pooled into one embedding
//! per frame; its k nearest training examples vote on the class, and a frame farther
//! than the calibrated threshold from every example is an unknown (NG).
//!
//! `[model] path` is the backbone, `[head] artifact` the fitted model
//! (`docs/examples.md`).

pub mod artifact;
pub mod embed;
pub mod knn;
mod plan;

use std::sync::Arc;

use ndarray::ArrayView2;
use ort::session::SessionOutputs;

pub use artifact::{ExamplesArtifact, ExamplesArtifactError, ExamplesHeader};
pub use knn::{Decision, Neighbours};
pub use plan::{ExamplesHeadKeys, KIND};

use super::classify::top_k;
use super::{f32_output, FrameGeometry, FrameRef, Head, HeadError};
use crate::verdict::{Failure, Inspection};

#[derive(Debug, Clone)]
pub struct ExamplesConfig {
    pub artifact: Arc<ExamplesArtifact>,
    /// Per class: the part is OK when this is its class (all true when unset).
    pub ok: Vec<bool>,
    pub min_score: Option<f32>,
    /// Classes listed in the defect log, best first.
    pub top_k: usize,
}

impl ExamplesConfig {
    /// The distance above which a part is unknown.
    pub fn threshold(&self) -> f32 {
        self.artifact.header.rejection.threshold
    }
}

pub struct ExamplesHead {
    cfg: ExamplesConfig,
    embedding: Vec<f32>,
    neighbours: Neighbours,
}

impl ExamplesHead {
    pub fn new(cfg: ExamplesConfig) -> Self {
        let h = &cfg.artifact.header;
        ExamplesHead {
            embedding: vec![0.0; h.embedding.dim],
            neighbours: Neighbours::new(h.data.rows, h.classes.len(), h.k),
            cfg,
        }
    }

    /// Embeds the frame from the backbone's outputs.
    fn embed(&mut self, outputs: &SessionOutputs<'_>) -> Result<(), HeadError> {
        let blocks = &self.cfg.artifact.header.embedding.blocks;
        // Missing outputs are reported as such before the embedding reads them.
        for b in blocks {
            f32_output(outputs, &b.output)?;
        }
        embed::embed(
            blocks,
            |name| f32_output(outputs, name).ok().map(|(_, d)| d),
            &mut self.embedding,
        )
        .map_err(|name| HeadError::Shape {
            shape: f32_output(outputs, &name)
                .map(|(s, _)| s.to_vec())
                .unwrap_or_default(),
            name,
            expected: "does not have the channels the examples were fitted with",
        })
    }
}

impl Head for ExamplesHead {
    fn inspection(&self) -> Inspection {
        Inspection::with_capacity(self.cfg.top_k, 0)
    }

    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        _geometry: &FrameGeometry,
        _frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        self.embed(outputs)?;
        let a = &self.cfg.artifact;
        let Ok(bank) =
            ArrayView2::from_shape((a.header.data.rows, a.header.data.dim), &a.embeddings[..])
        else {
            return Err(HeadError::Extract {
                name: "examples".into(),
                reason: "the fitted embeddings do not match their header".into(),
            });
        };
        let Some(d) = self.neighbours.decide(bank, &a.row_class, &self.embedding) else {
            return Err(HeadError::Extract {
                name: "examples".into(),
                reason: "the embedding does not match the fitted examples".into(),
            });
        };
        top_k(self.neighbours.votes(), self.cfg.top_k, &mut out.classes);
        out.score = Some(d.score);
        let threshold = self.cfg.threshold();
        if d.nearest > threshold {
            // Unknown: like none of the examples. The class says which one it is nearest.
            out.fail(Failure::Rule {
                rule: u16::try_from(d.nearest_class).unwrap_or(u16::MAX),
                value: d.nearest,
            });
            return Ok(());
        }
        if !self.cfg.ok.get(d.class).copied().unwrap_or(true) {
            out.fail(Failure::ClassNotAllowed { class: d.class });
        }
        if let Some(min) = self.cfg.min_score {
            if d.score < min {
                out.fail(Failure::LowScore {
                    score: d.score,
                    min,
                });
            }
        }
        Ok(())
    }
}
