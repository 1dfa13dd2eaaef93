//! One inference worker: preprocess → infer → interpret, with everything it touches
//! allocated once up front.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{HeadPlan, ScenarioPlan};
use crate::engine::{EngineError, InferenceSession, SessionOptions};
use crate::frame::FrameLayout;
use crate::heads::{
    AnomalyHead, ClassifyHead, Evidence, FrameGeometry, FrameRef, Head, HeadError, OcrConfig,
    OcrHead,
};
use crate::preprocess::{PreprocessError, Preprocessor};
use crate::verdict::Inspection;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("preprocessing: {0}")]
    Preprocess(#[from] PreprocessError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("interpreting outputs: {0}")]
    Head(#[from] HeadError),
}

/// Time spent in each stage for one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub infer: Duration,
    pub head: Duration,
}

pub struct Worker {
    preprocessor: Preprocessor,
    session: InferenceSession,
    head: Head,
}

impl Worker {
    pub fn new(plan: &ScenarioPlan, intra_threads: usize) -> Result<Worker, EngineError> {
        let spec = plan.preprocess.clone();
        let session = InferenceSession::open(
            Arc::clone(&plan.model),
            spec.tensor_shape(),
            SessionOptions { intra_threads },
        )?;
        let head = match &plan.head {
            HeadPlan::Classify(c) => Head::Classify(ClassifyHead::new(c.clone())),
            HeadPlan::Anomaly(c) => Head::Anomaly(Box::new(AnomalyHead::new(c.clone()))),
            HeadPlan::Ocr(c) => Head::Ocr(Box::new(OcrHead::new(OcrConfig {
                intra_threads,
                ..c.clone()
            })?)),
        };
        Ok(Worker {
            preprocessor: Preprocessor::new(spec),
            session,
            head,
        })
    }

    /// An [`Inspection`] with the capacity this worker's head needs.
    pub fn new_inspection(&self) -> Inspection {
        self.head.inspection()
    }

    /// The anomaly head's score and map for the last frame (`lineside eval` reads them).
    pub fn anomaly_evidence(&self) -> Option<Evidence<'_>> {
        self.head.anomaly_evidence()
    }

    pub fn session(&self) -> &InferenceSession {
        &self.session
    }

    /// Inspects one frame's pixels, writing the result into `out`.
    pub fn process(
        &mut self,
        bytes: &[u8],
        layout: &FrameLayout,
        out: &mut Inspection,
    ) -> Result<StageTimes, WorkerError> {
        let t0 = Instant::now();
        let transform = self
            .preprocessor
            .run(bytes, layout, self.session.input_mut())?;
        let t1 = Instant::now();
        let spec = self.preprocessor.spec();
        let geometry = FrameGeometry {
            transform,
            input: (spec.width, spec.height),
        };
        let outputs = self.session.run()?;
        let t2 = Instant::now();
        let frame = FrameRef { bytes, layout };
        self.head.interpret(&outputs, &geometry, frame, out)?;
        let t3 = Instant::now();
        Ok(StageTimes {
            preprocess: t1 - t0,
            infer: t2 - t1,
            head: t3 - t2,
        })
    }
}
