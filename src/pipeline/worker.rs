//! One inference worker: preprocess → infer → interpret, with everything it touches
//! allocated once up front. It drives any head through the [`Head`] trait, tiled or not.

use std::time::Instant;

use crate::engine::{EngineError, InferenceSession, SessionOptions};
use crate::frame::FrameLayout;
use crate::heads::{Evidence, FrameGeometry, FrameRef, Head, HeadError, TileSet, TileView};
use crate::outcome::StageTimes;
use crate::preprocess::{PreprocessError, Preprocessor};
use crate::scenario::ScenarioPlan;
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

pub struct Worker {
    preprocessor: Preprocessor,
    session: InferenceSession,
    head: Box<dyn Head>,
    tiles: Option<TileSet>,
    /// The outputs the session was given buffers for (a reload may keep the session).
    outputs: Vec<(String, Vec<usize>)>,
}

impl Worker {
    pub fn new(plan: &ScenarioPlan, intra_threads: usize) -> Result<Worker, EngineError> {
        let spec = plan.preprocess.clone();
        let mut session = InferenceSession::open(
            std::sync::Arc::clone(&plan.model),
            spec.tensor_shape(),
            SessionOptions::on(&plan.provider, intra_threads),
        )?;
        let outputs = plan.head.preallocated_outputs();
        if !outputs.is_empty() {
            let named: Vec<(&str, Vec<usize>)> = outputs
                .iter()
                .map(|(name, shape)| (name.as_str(), shape.clone()))
                .collect();
            session.preallocate_outputs(&named)?;
        }
        let head = plan.head.build(intra_threads)?;
        let tiles = head.tiling().map(TileSet::new);
        Ok(Worker {
            preprocessor: Preprocessor::new(spec),
            session,
            head,
            tiles,
            outputs,
        })
    }

    /// Switches to a reloaded `plan` between frames. The inference session is kept when
    /// the model, its input shape and the preallocated outputs are unchanged (the usual
    /// case: a rule or threshold changed), so a reload costs no session start-up.
    pub fn rebuild(
        &mut self,
        plan: &ScenarioPlan,
        intra_threads: usize,
    ) -> Result<(), EngineError> {
        let same_session = self.session.info().sha256 == plan.model.sha256
            && self.preprocessor.spec().tensor_shape() == plan.preprocess.tensor_shape()
            && self.outputs == plan.head.preallocated_outputs();
        if !same_session {
            *self = Worker::new(plan, intra_threads)?;
            return Ok(());
        }
        let head = plan.head.build(intra_threads)?;
        self.tiles = head.tiling().map(TileSet::new);
        self.head = head;
        self.preprocessor = Preprocessor::new(plan.preprocess.clone());
        Ok(())
    }

    /// An [`Inspection`] with the capacity this worker's head needs.
    pub fn new_inspection(&self) -> Inspection {
        self.head.inspection()
    }

    /// The head's map for the last frame: the anomaly score and map (`lineside eval`
    /// reads them), or a segment head's class map (evidence images).
    pub fn anomaly_evidence(&self) -> Option<Evidence<'_>> {
        self.head.evidence()
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
        if self.tiles.is_some() {
            return self.process_tiled(bytes, layout, out);
        }
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
        out.clear();
        self.head.interpret(&outputs, &geometry, frame, out)?;
        let t3 = Instant::now();
        Ok(StageTimes {
            preprocess: t1 - t0,
            infer: t2 - t1,
            head: t3 - t2,
        })
    }

    /// As [`Self::process`], tile by tile: each tile is preprocessed and run and handed
    /// to the head, which decides once every tile is in.
    fn process_tiled(
        &mut self,
        bytes: &[u8],
        layout: &FrameLayout,
        out: &mut Inspection,
    ) -> Result<StageTimes, WorkerError> {
        let Some(tiles) = self.tiles.as_mut() else {
            return Ok(StageTimes::default());
        };
        layout.check(bytes.len()).map_err(PreprocessError::from)?;
        let (tile_layout, tiles) =
            tiles.for_frame(self.preprocessor.spec(), layout.width, layout.height)?;
        let mut times = StageTimes::default();
        out.clear();
        self.head.begin_tiles(&tile_layout);
        for (index, tile) in tiles.iter_mut().enumerate() {
            let t0 = Instant::now();
            let transform = tile.pre.run(bytes, layout, self.session.input_mut())?;
            let t1 = Instant::now();
            let outputs = self.session.run()?;
            let t2 = Instant::now();
            let view = TileView {
                index,
                transform: &transform,
                map_xy: tile.map_xy,
                cut: &tile.cut,
            };
            self.head.add_tile(&outputs, &view)?;
            times.preprocess += t1 - t0;
            times.infer += t2 - t1;
            times.head += t2.elapsed();
        }
        let t3 = Instant::now();
        let frame = FrameRef { bytes, layout };
        self.head.finish_tiles(&tile_layout, frame, out);
        times.head += t3.elapsed();
        Ok(times)
    }
}
