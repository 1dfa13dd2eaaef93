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
//!
//! Triggered scenarios (`[trigger]`) wait for each trigger before taking a frame, and a
//! part with a deadline gets `TIMEOUT` at its deadline, in sequence, without waiting for
//! the slow inspection: capture tells the ordering stage each part's trigger time on a
//! side channel, and a late real result is discarded (counted in `late_verdicts`).
//!
//! Faults never hang the run: a sink error or an abort (second Ctrl-C) halts capture and
//! workers while the ordering stage keeps draining outcomes, so no thread stays blocked on
//! a full queue. A panic while inspecting a frame becomes an ERROR record for that frame.
//!
//! A reloaded plan ([`PlanSlot`], SIGHUP) is taken up between frames: capture stamps each
//! frame with the plan generation, and a worker rebuilds before the first newer frame.

mod reload;
mod worker;

pub use reload::PlanSlot;
pub use worker::{Worker, WorkerError};

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{
    bounded, select, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError,
};

use crate::evidence::{Decided, Router, Slot, Tap};
use crate::frame::{Frame, FrameOrigin, PixelBuf};
use crate::outcome::{Outcome, OutcomeKind, Part, RunSink, SinkError};
use crate::plc::{Trigger, TriggerMode, TriggerPlan};
use crate::pool::Pool;
use crate::scenario::ScenarioPlan;
use crate::source::{Next, Source, SourceEvent};
use crate::status::ScenarioStatus;
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
    #[error("scenario {scenario}: thread {thread} panicked: {message}")]
    Panicked {
        scenario: String,
        thread: String,
        message: String,
    },
    #[error(
        "scenario {scenario}: aborted (Ctrl-C twice): frames in flight were not logged; \
         the defect log holds every record decided before"
    )]
    Aborted { scenario: String },
}

/// Settings of one pipeline run.
#[derive(Clone)]
pub struct RunSettings {
    pub workers: usize,
    pub intra_threads: usize,
    pub stop: Arc<AtomicBool>,
    /// Stop now: queued frames are not inspected and no further outcome reaches the
    /// sinks (a second Ctrl-C); the sinks are still finished, so the log is synced.
    pub abort: Arc<AtomicBool>,
    /// The scenario's live state (last frame, queue depth) for health and metrics.
    pub status: Arc<ScenarioStatus>,
    /// PLC triggers, for a scenario with `[trigger] mode = "plc"`: capture takes one frame
    /// per trigger.
    pub triggers: Option<Receiver<Trigger>>,
    /// Where a reloaded plan is published while the run goes on (SIGHUP); `None`: the
    /// plan given to [`run`] is kept to the end.
    pub reload: Option<Arc<PlanSlot>>,
}

/// What capture tells the ordering stage about a part before its frame is queued.
struct InFlight {
    seq: u64,
    origin: FrameOrigin,
    captured: Instant,
    part: Part,
    /// When the part must have its verdict, and the deadline as configured.
    due: Option<(Instant, Duration)>,
}

/// A frame on its way to the workers, with the plan generation it is to be decided under.
struct Queued {
    frame: Frame,
    plan: u64,
}

/// Runs one scenario to the end of its source (or until `stop`), feeding `sink`.
pub fn run(
    plan: &ScenarioPlan,
    mut source: Box<dyn Source>,
    settings: &RunSettings,
    sink: &mut dyn RunSink,
) -> Result<(), PipelineError> {
    let workers_n = settings.workers.max(1);
    // Open every session before the first frame, so a bad model fails fast; all at once,
    // since each one optimises the graph on its own (seconds for a large model).
    let mut workers = open_workers(plan, workers_n, settings.intra_threads)?;
    let queue = workers_n * 2;
    let buffers = plan.source.buffers.unwrap_or(queue + workers_n + 1).max(1);
    let frame_bytes = source.max_frame_bytes();
    let pool: Pool<PixelBuf> = Pool::new(buffers, || PixelBuf::with_capacity(frame_bytes));
    let inspections: Pool<Inspection> =
        Pool::new(workers_n * 2 + queue + 2, || workers[0].new_inspection());
    let (frame_tx, frame_rx) = bounded::<Queued>(queue);
    let (out_tx, out_rx) = bounded::<Outcome>(queue + workers_n);
    let dropped = Arc::new(AtomicU64::new(0));
    // Frames in flight are bounded by the pool (copying sources) or by the frame queue and
    // the workers (sources that lend frames in place), so this many records always fit.
    let tracked = plan.trigger.tracks_parts();
    let (part_tx, part_rx) = bounded::<InFlight>(buffers + queue + workers_n + 2);
    let parts = Parts {
        plan: plan.trigger,
        tx: tracked.then_some(part_tx),
        triggers: settings
            .triggers
            .as_ref()
            .filter(|_| plan.trigger.mode == TriggerMode::Plc),
    };

    // Set on a sink error, an abort, or when no worker is left: capture and workers take
    // no new work while the ordering stage drains, so no thread blocks on a full queue.
    let halt = AtomicBool::new(false);
    let flags = Halt {
        halt: &halt,
        abort: &settings.abort,
    };
    let alive = AtomicUsize::new(workers_n);
    let scenario = || plan.id.clone();
    // Evidence images: workers copy into the tap's buffers, the ordering stage routes
    // them to the writer thread.
    let evidence = plan.evidence.as_ref().filter(|e| e.enabled);
    let tap = evidence.map(|e| Tap::new(e, workers_n));
    let mut router = evidence.map(|e| {
        Router::start(
            e,
            &plan.id,
            &plan.output_dir,
            Arc::clone(&plan.labels),
            plan.head.clone(),
            plan.file_mode,
            Arc::clone(&settings.status),
        )
    });

    std::thread::scope(|scope| {
        let mut threads = Vec::with_capacity(workers_n + 1);
        // Capture.
        {
            let (frame_tx, frame_rx, out_tx) = (frame_tx, frame_rx.clone(), out_tx.clone());
            let (pool, stop) = (pool.clone(), Arc::clone(&settings.stop));
            let (live, fps) = (plan.source.live, plan.source.fps);
            let dropped = Arc::clone(&dropped);
            let status = Arc::clone(&settings.status);
            let reload = settings.reload.clone();
            let source = &mut source;
            let (flags, parts) = (&flags, &parts);
            let name = format!("{}-capture", plan.id);
            let spawned =
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || {
                        let ended = capture(
                            source.as_mut(),
                            &pool,
                            live,
                            fps,
                            &stop,
                            flags,
                            &frame_tx,
                            &frame_rx,
                            &out_tx,
                            &dropped,
                            &status,
                            parts,
                            reload.as_deref(),
                        );
                        status.source_alive.store(false, Ordering::Relaxed);
                        ended
                    });
            if let Ok(h) = spawned {
                threads.push((name, h));
            }
        }
        // Workers.
        for (i, mut worker) in workers.drain(..).enumerate() {
            let (frame_rx, out_tx, inspections) =
                (frame_rx.clone(), out_tx.clone(), inspections.clone());
            let tap = tap.clone();
            let (flags, alive) = (&flags, &alive);
            let intra_threads = settings.intra_threads;
            let reload = settings.reload.clone();
            let name = format!("{}-worker{i}", plan.id);
            let spawned =
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || {
                        let _leaving = Leaving { alive, flags };
                        inspect(
                            plan,
                            reload.as_deref(),
                            intra_threads,
                            &mut worker,
                            &frame_rx,
                            &out_tx,
                            &inspections,
                            tap.as_ref(),
                            flags,
                        )
                    });
            match spawned {
                Ok(h) => threads.push((name, h)),
                // Never started: it must not count as a worker still running.
                Err(_) => drop(Leaving { alive, flags }),
            }
        }
        drop((frame_rx, out_tx));
        settings.status.started.store(true, Ordering::SeqCst);
        // Ordering and sinks run here, on the calling thread.
        let part_rx = tracked.then_some(part_rx);
        let delivered = deliver_in_order(
            &out_rx,
            part_rx,
            sink,
            router.as_mut(),
            &flags,
            &settings.status,
        );
        // Every sender is gone, so every thread has finished or is finishing.
        let mut panicked = None;
        for (thread, h) in threads {
            let message = match h.join() {
                Ok(Ok(())) => continue,
                Ok(Err(message)) => message,
                Err(payload) => panic_message(payload.as_ref()),
            };
            panicked.get_or_insert(PipelineError::Panicked {
                scenario: scenario(),
                thread,
                message,
            });
        }
        match delivered {
            Err(Stopped::Sink(source)) => Err(PipelineError::Sink {
                scenario: scenario(),
                source,
            }),
            _ if panicked.is_some() => panicked.map_or(Ok(()), Err),
            Err(Stopped::Aborted) => Err(PipelineError::Aborted {
                scenario: scenario(),
            }),
            Ok(()) => Ok(()),
        }
    })
}

/// `n` workers for `plan`, their sessions opened in parallel; the first failure is returned.
fn open_workers(
    plan: &ScenarioPlan,
    n: usize,
    intra_threads: usize,
) -> Result<Vec<Worker>, PipelineError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| Worker::new(plan, intra_threads)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(Ok(w)) => Ok(w),
                Ok(Err(source)) => Err(PipelineError::Worker {
                    scenario: plan.id.clone(),
                    source,
                }),
                Err(payload) => Err(PipelineError::Panicked {
                    scenario: plan.id.clone(),
                    thread: "worker start".into(),
                    message: panic_message(payload.as_ref()),
                }),
            })
            .collect()
    })
}

/// When capture and workers must stop taking new work.
struct Halt<'a> {
    /// Set by this run: a sink failed, or no worker is left.
    halt: &'a AtomicBool,
    /// Set from outside: stop now (a second Ctrl-C).
    abort: &'a AtomicBool,
}

impl Halt<'_> {
    fn is_set(&self) -> bool {
        self.halt.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }
}

/// Counts a worker thread out, even when it unwinds; the last one out halts capture, which
/// would otherwise wait forever on a queue nobody reads.
struct Leaving<'a> {
    alive: &'a AtomicUsize,
    flags: &'a Halt<'a>,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if self.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.flags.halt.store(true, Ordering::SeqCst);
        }
    }
}

/// The message a panic carried (`panic!` payloads are a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// What capture needs to make parts of frames.
struct Parts<'a> {
    plan: TriggerPlan,
    /// To the ordering stage, when it tracks parts (a trigger mode or a deadline).
    tx: Option<Sender<InFlight>>,
    /// PLC triggers (`mode = "plc"`).
    triggers: Option<&'a Receiver<Trigger>>,
}

impl Parts<'_> {
    /// Waits for the next PLC trigger; `None` when stopping or the link is gone.
    fn wait_trigger(&self, stopping: &dyn Fn() -> bool) -> Option<Trigger> {
        let rx = self.triggers?;
        while !stopping() {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(t) => return Some(t),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    /// Tells the ordering stage about part `seq` (before its frame or outcome is queued,
    /// so the record is there first). False when the run is halting.
    fn announce(
        &self,
        seq: u64,
        origin: &FrameOrigin,
        captured: Instant,
        trigger: Option<Trigger>,
        flags: &Halt<'_>,
    ) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let part = match trigger {
            Some(t) => Part {
                id: Some(t.part_id),
                triggered: t.at,
                triggered_wall: t.wall,
            },
            None => Part {
                id: None,
                triggered: captured,
                triggered_wall: SystemTime::now()
                    .checked_sub(captured.elapsed())
                    .unwrap_or_else(SystemTime::now),
            },
        };
        let mut record = InFlight {
            seq,
            origin: origin.clone(),
            captured,
            part,
            due: self
                .plan
                .deadline
                .and_then(|d| Some((part.triggered.checked_add(d)?, d))),
        };
        loop {
            match tx.send_timeout(record, Duration::from_millis(100)) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(r)) if !flags.is_set() => record = r,
                Err(_) => return false,
            }
        }
    }
}

/// Returns an error only when the source panicked (the message), after which capture ends.
#[allow(clippy::too_many_arguments)]
fn capture(
    source: &mut dyn Source,
    pool: &Pool<PixelBuf>,
    live: bool,
    fps: f64,
    stop: &AtomicBool,
    flags: &Halt<'_>,
    frame_tx: &Sender<Queued>,
    frame_rx: &Receiver<Queued>,
    out_tx: &Sender<Outcome>,
    dropped: &AtomicU64,
    status: &ScenarioStatus,
    parts: &Parts<'_>,
    reload: Option<&PlanSlot>,
) -> Result<(), String> {
    let start = Instant::now();
    let mut seq = 0u64;
    let mut plan_now = 1u64;
    let stopping = || stop.load(Ordering::Relaxed) || flags.is_set();
    // A PLC trigger waiting for its frame.
    let mut trigger: Option<Trigger> = None;
    while !stopping() {
        if parts.triggers.is_some() && trigger.is_none() {
            trigger = parts.wait_trigger(&stopping);
            if trigger.is_none() {
                return Ok(());
            }
        } else if fps > 0.0 {
            let due = start + Duration::from_secs_f64(seq as f64 / fps);
            while let Some(wait) = due.checked_duration_since(Instant::now()) {
                if stopping() {
                    return Ok(());
                }
                std::thread::sleep(wait.min(Duration::from_millis(50)));
            }
        }
        // A source that panics cannot be trusted to go on: capture ends and the run
        // reports the panic's own message.
        let next =
            catch_unwind(AssertUnwindSafe(|| source.next(seq, pool))).map_err(|payload| {
                format!("the source panicked: {}", panic_message(payload.as_ref()))
            })?;
        let frame = match next {
            // A live camera's frames from before the trigger show the previous part.
            Next::Frame(f) if live && trigger.is_some_and(|t| f.meta.captured < t.at) => continue,
            Next::Frame(f) => {
                if !parts.announce(seq, &f.meta.origin, f.meta.captured, trigger.take(), flags) {
                    return Ok(());
                }
                status.frame_arrived();
                status
                    .queue_depth
                    .store(frame_tx.len() as u64, Ordering::Relaxed);
                f
            }
            Next::Skipped { origin, error } => {
                let captured = Instant::now();
                if !parts.announce(seq, &origin, captured, trigger.take(), flags) {
                    return Ok(());
                }
                let outcome = Outcome {
                    seq,
                    origin,
                    captured,
                    decided: SystemTime::now(),
                    result: OutcomeKind::Failed(error.to_string()),
                    part: None,
                    evidence: Slot::None,
                };
                if out_tx.send(outcome).is_err() {
                    return Ok(());
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
                        part: None,
                        evidence: Slot::None,
                    };
                    if out_tx.send(outcome).is_err() {
                        return Ok(());
                    }
                    seq += 1;
                }
                continue;
            }
            Next::Event(event) => {
                // A camera unplugged or a watched folder gone is not alive until it is back
                // (health checks read this).
                match event {
                    SourceEvent::Waiting => {}
                    SourceEvent::Reconnected(m) => {
                        status.source_alive.store(true, Ordering::Relaxed);
                        tracing::info!("{m}")
                    }
                    SourceEvent::Disconnected(m) => {
                        status.source_alive.store(false, Ordering::Relaxed);
                        tracing::warn!("{m}")
                    }
                    SourceEvent::Timeout(m) | SourceEvent::Starved(m) => tracing::warn!("{m}"),
                }
                continue;
            }
            Next::End => return Ok(()),
        };
        let plan = reload.map_or(1, PlanSlot::generation);
        if plan != plan_now {
            tracing::info!(
                scenario = %status.id,
                "plan {plan} (reloaded) decides frames from seq {seq} on"
            );
            plan_now = plan;
        }
        let frame = Queued { frame, plan };
        seq += 1;
        if !live {
            // Wait for room, but not past a halt: capture itself holds a receiver, so the
            // queue never disconnects while it waits.
            let mut frame = frame;
            loop {
                match frame_tx.send_timeout(frame, Duration::from_millis(100)) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(f)) if !flags.is_set() => frame = f,
                    Err(_) => return Ok(()),
                }
            }
            continue;
        }
        // Live: never wait for inference; make room by dropping the oldest queued frame.
        let mut frame = frame;
        loop {
            match frame_tx.try_send(frame) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Ok(()),
                Err(TrySendError::Full(f)) => {
                    frame = f;
                    if let Ok(Queued { frame: old, .. }) = frame_rx.try_recv() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        let outcome = Outcome {
                            seq: old.meta.seq,
                            origin: old.meta.origin.clone(),
                            captured: old.meta.captured,
                            decided: SystemTime::now(),
                            result: OutcomeKind::Dropped,
                            part: None,
                            evidence: Slot::None,
                        };
                        drop(old);
                        if out_tx.send(outcome).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Inspects frames until the queue closes. Returns an error only when a worker that
/// panicked could not be rebuilt (the other workers go on).
#[allow(clippy::too_many_arguments)]
fn inspect(
    plan: &ScenarioPlan,
    reload: Option<&PlanSlot>,
    intra_threads: usize,
    worker: &mut Worker,
    frames: &Receiver<Queued>,
    out_tx: &Sender<Outcome>,
    inspections: &Pool<Inspection>,
    tap: Option<&Tap>,
    flags: &Halt<'_>,
) -> Result<(), String> {
    // The plan generation this worker follows (1: the plan the run started with) and,
    // after a reload, that plan.
    let mut generation = 1u64;
    let mut reloaded: Option<Arc<ScenarioPlan>> = None;
    for Queued {
        frame,
        plan: wanted,
    } in frames.iter()
    {
        if flags.is_set() {
            // Halted: drop queued frames unread so capture can finish.
            continue;
        }
        if let Some(slot) = reload.filter(|_| wanted > generation) {
            // A reload: rebuild before this frame, off every later frame's path.
            let (newest, new_plan) = slot.current();
            generation = newest;
            match worker.rebuild(&new_plan, intra_threads) {
                Ok(()) => reloaded = Some(new_plan),
                Err(e) => tracing::error!(
                    scenario = %plan.id,
                    "cannot switch a worker to plan {newest}; it keeps the previous plan: {e}"
                ),
            }
        }
        let plan = reloaded.as_deref().unwrap_or(plan);
        let Some(mut inspection) = inspections.take() else {
            return Ok(());
        };
        let processed = catch_unwind(AssertUnwindSafe(|| {
            worker.process(frame.bytes(), &frame.layout, &mut inspection)
        }));
        let mut rebuild_failed = None;
        let result = match processed {
            Ok(Ok(times)) => OutcomeKind::Inspected {
                inspection,
                times,
                latency: frame.meta.captured.elapsed(),
            },
            Ok(Err(e)) => OutcomeKind::Failed(e.to_string()),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                // The worker may be half-way through its buffers: start from a fresh one.
                match Worker::new(plan, intra_threads) {
                    Ok(fresh) => *worker = fresh,
                    Err(e) => {
                        rebuild_failed = Some(format!(
                            "inspection panicked ({message}) and the worker could not be \
                             restarted: {e}"
                        ))
                    }
                }
                OutcomeKind::Failed(format!("inspection panicked: {message}"))
            }
        };
        // Evidence: copy the frame and the head's map now, while both are at hand.
        let seq = frame.meta.seq;
        let evidence = match (tap, &result) {
            (Some(t), OutcomeKind::Inspected { inspection, .. })
                if t.due(seq, Some(inspection.verdict)) =>
            {
                t.capture(seq, frame.bytes(), &frame.layout, worker.anomaly_evidence())
            }
            (Some(t), OutcomeKind::Failed(_)) => t.capture(seq, frame.bytes(), &frame.layout, None),
            _ => Slot::None,
        };
        let outcome = Outcome {
            seq,
            origin: frame.meta.origin.clone(),
            captured: frame.meta.captured,
            decided: SystemTime::now(),
            result,
            part: None,
            evidence,
        };
        // Return the pixel buffer before waiting on the sink.
        drop(frame);
        if out_tx.send(outcome).is_err() {
            return Ok(());
        }
        if let Some(e) = rebuild_failed {
            return Err(e);
        }
    }
    Ok(())
}

/// Why the ordering stage stopped delivering before the end.
enum Stopped {
    Sink(SinkError),
    Aborted,
}

/// Puts outcomes back in sequence order and hands them to the sink. A part whose deadline
/// passes before its outcome arrives goes out as `TIMEOUT` then, in sequence; its real
/// outcome is discarded when it comes (counted as a late verdict). After a sink error or
/// an abort it stops delivering but keeps receiving until every sender has gone, so no
/// worker or capture thread stays blocked on a full queue.
fn deliver_in_order(
    rx: &Receiver<Outcome>,
    parts: Option<Receiver<InFlight>>,
    sink: &mut dyn RunSink,
    mut evidence: Option<&mut Router>,
    flags: &Halt<'_>,
    status: &ScenarioStatus,
) -> Result<(), Stopped> {
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, Outcome> = BTreeMap::new();
    let mut in_flight: BTreeMap<u64, InFlight> = BTreeMap::new();
    let mut parts = parts.unwrap_or_else(crossbeam_channel::never);
    let mut failed = None;
    loop {
        // The next part's deadline, while its outcome has not come.
        let due = in_flight
            .get(&next)
            .filter(|_| !waiting.contains_key(&next))
            .and_then(|f| f.due)
            .map(|(at, _)| at.saturating_duration_since(Instant::now()));
        let received = match due {
            Some(wait) => select! {
                recv(rx) -> o => Received::Outcome(o.ok()),
                recv(parts) -> p => Received::Part(p.ok()),
                default(wait) => Received::Due,
            },
            None => select! {
                recv(rx) -> o => Received::Outcome(o.ok()),
                recv(parts) -> p => Received::Part(p.ok()),
            },
        };
        match received {
            Received::Outcome(None) => break,
            Received::Outcome(Some(outcome)) => {
                if failed.is_some() || flags.abort.load(Ordering::Relaxed) {
                    continue;
                }
                // Capture announced this part before queueing its frame.
                in_flight.extend(parts.try_iter().map(|p| (p.seq, p)));
                if outcome.seq < next {
                    status.late_verdicts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        seq = outcome.seq,
                        "verdict came after the part's deadline; the part was sent as TIMEOUT"
                    );
                    continue;
                }
                waiting.insert(outcome.seq, outcome);
            }
            Received::Part(Some(p)) => {
                in_flight.insert(p.seq, p);
            }
            // Capture has ended; outcomes may still come.
            Received::Part(None) => parts = crossbeam_channel::never(),
            Received::Due => {}
        }
        if failed.is_some() || flags.abort.load(Ordering::Relaxed) {
            continue;
        }
        while let Some(mut o) = ready(next, &mut waiting, &mut in_flight, status) {
            route_evidence(evidence.as_deref_mut(), &mut o);
            if let Err(e) = sink.deliver(&o) {
                flags.halt.store(true, Ordering::SeqCst);
                failed = Some(e);
                break;
            }
            next += 1;
        }
    }
    if let Some(e) = failed {
        return Err(Stopped::Sink(e));
    }
    if flags.abort.load(Ordering::Relaxed) {
        // Outcomes not yet delivered are dropped: after an abort only what was decided
        // before reaches the log, which is still synced.
        drop(waiting);
        if let Some(r) = evidence {
            r.finish();
        }
        sink.finish().map_err(Stopped::Sink)?;
        return Err(Stopped::Aborted);
    }
    // Channels closed: whatever is left (gaps can only come from a worker that could not
    // be restarted) goes out in order rather than being lost.
    for (seq, mut o) in waiting {
        o.part = in_flight.remove(&seq).map(|f| f.part);
        route_evidence(evidence.as_deref_mut(), &mut o);
        sink.deliver(&o).map_err(Stopped::Sink)?;
    }
    // The writer finishes what is queued first, so the summary counts it.
    if let Some(r) = evidence {
        r.finish();
    }
    sink.finish().map_err(Stopped::Sink)
}

/// Queues (or drops) the outcome's evidence and notes which, before the sinks see it.
fn route_evidence(router: Option<&mut Router>, o: &mut Outcome) {
    let Some(router) = router else {
        return;
    };
    let how = match &o.result {
        OutcomeKind::Inspected { inspection, .. } => Decided::Inspected(inspection),
        OutcomeKind::Failed(message) => Decided::Failed(message),
        OutcomeKind::Dropped | OutcomeKind::TimedOut { .. } => Decided::Other,
    };
    router.route(o.seq, o.decided, how, &mut o.evidence);
}

// One value on the stack per loop turn: boxing the outcome would allocate per frame.
#[allow(clippy::large_enum_variant)]
enum Received {
    Outcome(Option<Outcome>),
    Part(Option<InFlight>),
    /// The next part's deadline passed.
    Due,
}

/// The outcome for `next`, if it can go out now: its own (in time), or `TIMEOUT` once its
/// deadline has passed.
fn ready(
    next: u64,
    waiting: &mut BTreeMap<u64, Outcome>,
    in_flight: &mut BTreeMap<u64, InFlight>,
    status: &ScenarioStatus,
) -> Option<Outcome> {
    let now = Instant::now();
    let overdue = in_flight
        .get(&next)
        .and_then(|f| f.due)
        .is_some_and(|(at, _)| now >= at);
    if let Some(mut o) = waiting.remove(&next) {
        let f = in_flight.remove(&next);
        o.part = f.as_ref().map(|f| f.part);
        // Decided in time, but seen here after the deadline: the PLC would get it too late.
        if let (true, Some((_, deadline))) = (overdue, f.and_then(|f| f.due)) {
            if matches!(
                o.result,
                OutcomeKind::Inspected { .. } | OutcomeKind::Failed(_)
            ) {
                o.result = OutcomeKind::TimedOut { deadline };
                status.late_verdicts.fetch_add(1, Ordering::Relaxed);
            }
        }
        return Some(o);
    }
    if !overdue {
        return None;
    }
    let f = in_flight.remove(&next)?;
    Some(Outcome {
        seq: f.seq,
        origin: f.origin,
        captured: f.captured,
        decided: SystemTime::now(),
        result: OutcomeKind::TimedOut {
            deadline: f.due.map_or(Duration::ZERO, |(_, d)| d),
        },
        part: Some(f.part),
        evidence: Slot::None,
    })
}
