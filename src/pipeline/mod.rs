//! Threads and queues for one scenario:
//!
//! ```text
//! capture ──frames (bounded)──▶ worker × N ──outcomes (bounded)──▶ ordering + sinks
//! ```
//!
//! Replays block when the queue is full, so every frame is inspected; live sources drop
//! the oldest queued frame and count it. Outcomes are put back in sequence order before
//! the sinks, so defect logs are deterministic. Stopping (Ctrl-C) ends capture; frames
//! already queued are still inspected and logged before the run returns.

mod worker;

pub use worker::{Worker, WorkerError};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::frame::{Frame, FrameOrigin, PixelBuf};
use crate::outcome::{Outcome, OutcomeKind, RunSink, SinkError};
use crate::pool::Pool;
use crate::scenario::ScenarioPlan;
use crate::source::{Next, Source, SourceEvent};
use crate::verdict::Inspection;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("scenario {scenario}: cannot start a worker: {source}")]
    Worker {
        scenario: String,
        source: crate::engine::EngineError,
    },
    #[error("scenario {scenario}: {source}")]
    Sink { scenario: String, source: SinkError },
}

/// Settings of one pipeline run.
#[derive(Clone)]
pub struct RunSettings {
    pub workers: usize,
    pub intra_threads: usize,
    pub stop: Arc<AtomicBool>,
}

/// Runs one scenario to the end of its source (or until `stop`), feeding `sink`.
pub fn run(
    plan: &ScenarioPlan,
    mut source: Box<dyn Source>,
    settings: &RunSettings,
    sink: &mut dyn RunSink,
) -> Result<(), PipelineError> {
    let workers_n = settings.workers.max(1);
    // Open every session before the first frame, so a bad model fails fast.
    let mut workers = Vec::with_capacity(workers_n);
    for _ in 0..workers_n {
        workers.push(Worker::new(plan, settings.intra_threads).map_err(|source| {
            PipelineError::Worker {
                scenario: plan.id.clone(),
                source,
            }
        })?);
    }
    let queue = workers_n * 2;
    let buffers = plan.source.buffers.unwrap_or(queue + workers_n + 1).max(1);
    let frame_bytes = source.max_frame_bytes();
    let pool: Pool<PixelBuf> = Pool::new(buffers, || PixelBuf::with_capacity(frame_bytes));
    let inspections: Pool<Inspection> =
        Pool::new(workers_n * 2 + queue + 2, || workers[0].new_inspection());
    let (frame_tx, frame_rx) = bounded::<Frame>(queue);
    let (out_tx, out_rx) = bounded::<Outcome>(queue + workers_n);
    let dropped = Arc::new(AtomicU64::new(0));

    std::thread::scope(|scope| {
        // Capture.
        {
            let (frame_tx, frame_rx, out_tx) = (frame_tx, frame_rx.clone(), out_tx.clone());
            let (pool, stop) = (pool.clone(), Arc::clone(&settings.stop));
            let (live, fps) = (plan.source.live, plan.source.fps);
            let dropped = Arc::clone(&dropped);
            let source = &mut source;
            std::thread::Builder::new()
                .name(format!("{}-capture", plan.id))
                .spawn_scoped(scope, move || {
                    capture(
                        source.as_mut(),
                        &pool,
                        live,
                        fps,
                        &stop,
                        &frame_tx,
                        &frame_rx,
                        &out_tx,
                        &dropped,
                    )
                })
                .ok();
        }
        // Workers.
        for (i, mut worker) in workers.drain(..).enumerate() {
            let (frame_rx, out_tx, inspections) =
                (frame_rx.clone(), out_tx.clone(), inspections.clone());
            std::thread::Builder::new()
                .name(format!("{}-worker{i}", plan.id))
                .spawn_scoped(scope, move || {
                    inspect(&mut worker, &frame_rx, &out_tx, &inspections)
                })
                .ok();
        }
        drop((frame_rx, out_tx));
        // Ordering and sinks run here, on the calling thread.
        deliver_in_order(&out_rx, sink).map_err(|source| PipelineError::Sink {
            scenario: plan.id.clone(),
            source,
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn capture(
    source: &mut dyn Source,
    pool: &Pool<PixelBuf>,
    live: bool,
    fps: f64,
    stop: &AtomicBool,
    frame_tx: &Sender<Frame>,
    frame_rx: &Receiver<Frame>,
    out_tx: &Sender<Outcome>,
    dropped: &AtomicU64,
) {
    let start = Instant::now();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if fps > 0.0 {
            let due = start + Duration::from_secs_f64(seq as f64 / fps);
            while let Some(wait) = due.checked_duration_since(Instant::now()) {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(wait.min(Duration::from_millis(50)));
            }
        }
        let frame = match source.next(seq, pool) {
            Next::Frame(f) => f,
            Next::Skipped { item, error } => {
                let outcome = Outcome {
                    seq,
                    origin: FrameOrigin::Item(item),
                    captured: Instant::now(),
                    decided: SystemTime::now(),
                    result: OutcomeKind::Failed(error.to_string()),
                };
                if out_tx.send(outcome).is_err() {
                    return;
                }
                seq += 1;
                continue;
            }
            Next::Lost { count, origin } => {
                // Frames a camera's driver dropped: each gets its sequence number and is
                // counted, so the defect log's gaps are exactly the dropped count.
                for _ in 0..count {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    let outcome = Outcome {
                        seq,
                        origin: origin.clone(),
                        captured: Instant::now(),
                        decided: SystemTime::now(),
                        result: OutcomeKind::Dropped,
                    };
                    if out_tx.send(outcome).is_err() {
                        return;
                    }
                    seq += 1;
                }
                continue;
            }
            Next::Event(event) => {
                match event {
                    SourceEvent::Waiting => {}
                    SourceEvent::Reconnected(m) => tracing::info!("{m}"),
                    SourceEvent::Timeout(m)
                    | SourceEvent::Disconnected(m)
                    | SourceEvent::Starved(m) => tracing::warn!("{m}"),
                }
                continue;
            }
            Next::End => return,
        };
        seq += 1;
        if !live {
            if frame_tx.send(frame).is_err() {
                return;
            }
            continue;
        }
        // Live: never wait for inference; make room by dropping the oldest queued frame.
        let mut frame = frame;
        loop {
            match frame_tx.try_send(frame) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(f)) => {
                    frame = f;
                    if let Ok(old) = frame_rx.try_recv() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        let outcome = Outcome {
                            seq: old.meta.seq,
                            origin: old.meta.origin.clone(),
                            captured: old.meta.captured,
                            decided: SystemTime::now(),
                            result: OutcomeKind::Dropped,
                        };
                        drop(old);
                        if out_tx.send(outcome).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn inspect(
    worker: &mut Worker,
    frames: &Receiver<Frame>,
    out_tx: &Sender<Outcome>,
    inspections: &Pool<Inspection>,
) {
    for frame in frames.iter() {
        let Some(mut inspection) = inspections.take() else {
            return;
        };
        let result = match worker.process(frame.bytes(), &frame.layout, &mut inspection) {
            Ok(times) => OutcomeKind::Inspected {
                inspection,
                times,
                latency: frame.meta.captured.elapsed(),
            },
            Err(e) => OutcomeKind::Failed(e.to_string()),
        };
        let outcome = Outcome {
            seq: frame.meta.seq,
            origin: frame.meta.origin.clone(),
            captured: frame.meta.captured,
            decided: SystemTime::now(),
            result,
        };
        // Return the pixel buffer before waiting on the sink.
        drop(frame);
        if out_tx.send(outcome).is_err() {
            return;
        }
    }
}

/// Puts outcomes back in sequence order and hands them to the sink.
fn deliver_in_order(rx: &Receiver<Outcome>, sink: &mut dyn RunSink) -> Result<(), SinkError> {
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, Outcome> = BTreeMap::new();
    for outcome in rx.iter() {
        waiting.insert(outcome.seq, outcome);
        while let Some(o) = waiting.remove(&next) {
            sink.deliver(&o)?;
            next += 1;
        }
    }
    // Channels closed: whatever is left (gaps can only come from a crashed worker) goes
    // out in order rather than being lost.
    for (_, o) in waiting {
        sink.deliver(&o)?;
    }
    sink.finish()
}
