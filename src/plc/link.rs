//! One Modbus TCP client to the PLC, on its own thread with a current-thread tokio
//! runtime, so network waits never reach capture or the ordering stage. It polls the
//! trigger counter (handing triggers to capture through a bounded channel), writes
//! results from a bounded queue, runs the acknowledge handshake, and reconnects with
//! capped exponential backoff when the PLC goes away.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_modbus::client::{Client, Context, Reader, Writer};
use tokio_modbus::prelude::{tcp, Slave};

use super::map::{part_id, PlcMap, ResultBlock};
use super::trigger::Trigger;
use crate::status::{LinkStatus, ScenarioStatus};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A session shorter than this does not reset the backoff (a PLC that accepts and then
/// refuses every request must not be hammered).
const STABLE_SESSION: Duration = Duration::from_secs(1);
/// Triggers seen but not yet taken by capture.
const TRIGGER_QUEUE: usize = 64;
/// How long shutting down may spend writing queued results (plus one acknowledge wait).
const FLUSH_TIME: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PlcError {
    #[error("cannot start the PLC link thread: {0}")]
    Start(std::io::Error),
}

/// What the link did, for the run summary.
#[derive(Debug, Default)]
pub struct PlcCounters {
    pub triggers: AtomicU64,
    /// Triggers the PLC fired between two polls (counter jumped by more than one).
    pub triggers_missed: AtomicU64,
    pub results_written: AtomicU64,
    pub acks: AtomicU64,
    pub acks_missed: AtomicU64,
    /// Results given up: the queue was full, or shutting down with the PLC away.
    pub results_dropped: AtomicU64,
    submitted: AtomicU64,
    /// Results written and acknowledged (or whose acknowledge was missed), or dropped.
    completed: AtomicU64,
}

/// [`PlcCounters`] as numbers, for `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlcStats {
    pub triggers: u64,
    pub triggers_missed: u64,
    pub results_written: u64,
    pub acks: u64,
    pub acks_missed: u64,
    pub results_dropped: u64,
    pub reconnects: u64,
}

/// A result waiting for the link: the sequence number is the link's to give.
#[derive(Debug, Clone, Copy)]
pub struct PlcResult {
    pub code: u16,
    pub part_id: u32,
    pub defects: u16,
    pub latency_ms: u16,
}

/// The link to one PLC, shared by the trigger (capture) and the `plc` sink.
pub struct PlcLink {
    map: PlcMap,
    results: mpsc::Sender<PlcResult>,
    triggers: Option<Receiver<Trigger>>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Cleared by a full queue, set again by the next result accepted: one alarm per
    /// overflow, not one per result.
    queue_ok: AtomicBool,
}

struct Shared {
    stop: AtomicBool,
    counters: PlcCounters,
    link: Arc<LinkStatus>,
    scenario: Arc<ScenarioStatus>,
}

impl PlcLink {
    /// Starts the link thread. With `triggers`, the trigger counter is polled and each
    /// new count becomes a [`Trigger`] for capture.
    pub fn start(
        map: PlcMap,
        triggers: bool,
        status: Arc<ScenarioStatus>,
    ) -> Result<PlcLink, PlcError> {
        let (results, results_rx) = mpsc::channel(map.queue);
        let (trigger_tx, trigger_rx) = if triggers && map.trigger_register.is_some() {
            let (tx, rx) = crossbeam_channel::bounded(TRIGGER_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            counters: PlcCounters::default(),
            link: status.link("plc"),
            scenario: status,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(PlcError::Start)?;
        let thread = {
            let (map, shared) = (map.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("{}-plc", shared.scenario.id))
                .spawn(move || runtime.block_on(run(map, results_rx, trigger_tx, &shared)))
                .map_err(PlcError::Start)?
        };
        Ok(PlcLink {
            map,
            results,
            triggers: trigger_rx,
            shared,
            thread: Mutex::new(Some(thread)),
            queue_ok: AtomicBool::new(true),
        })
    }

    pub fn map(&self) -> &PlcMap {
        &self.map
    }

    /// Triggers for capture (when the link was started with them).
    pub fn triggers(&self) -> Option<Receiver<Trigger>> {
        self.triggers.clone()
    }

    pub fn counters(&self) -> &PlcCounters {
        &self.shared.counters
    }

    pub fn stats(&self) -> PlcStats {
        let c = &self.shared.counters;
        let n = |a: &AtomicU64| a.load(Ordering::SeqCst);
        PlcStats {
            triggers: n(&c.triggers),
            triggers_missed: n(&c.triggers_missed),
            results_written: n(&c.results_written),
            acks: n(&c.acks),
            acks_missed: n(&c.acks_missed),
            results_dropped: n(&c.results_dropped),
            reconnects: n(&self.shared.link.reconnects),
        }
    }

    /// Queues a result for the PLC without waiting. A full queue (the PLC away for longer
    /// than the queue covers) drops the result, counts it and raises `plc_queue_full`.
    pub fn send(&self, r: PlcResult) {
        let c = &self.shared.counters;
        c.submitted.fetch_add(1, Ordering::SeqCst);
        match self.results.try_send(r) {
            Ok(()) => {
                self.queue_ok.store(true, Ordering::Relaxed);
                self.shared
                    .link
                    .backlog
                    .store(self.backlog(), Ordering::Relaxed);
            }
            Err(_) => {
                c.results_dropped.fetch_add(1, Ordering::SeqCst);
                c.completed.fetch_add(1, Ordering::SeqCst);
                self.shared.link.dropped.fetch_add(1, Ordering::Relaxed);
                if self.queue_ok.swap(false, Ordering::Relaxed) {
                    self.shared.scenario.raise(
                        "plc_queue_full",
                        format!(
                            "PLC result queue full ({} results): results are dropped until the PLC takes them again",
                            self.map.queue
                        ),
                    );
                }
            }
        }
    }

    fn backlog(&self) -> u64 {
        (self.results.max_capacity() - self.results.capacity()) as u64
    }

    /// Waits (at most `within`) until every queued result is written and acknowledged
    /// (or its acknowledge missed). True when nothing is left.
    pub fn flush(&self, within: Duration) -> bool {
        let c = &self.shared.counters;
        let until = Instant::now() + within;
        loop {
            if c.completed.load(Ordering::SeqCst) >= c.submitted.load(Ordering::SeqCst) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Writes what is queued (bounded in time), then stops the link thread.
    pub fn shutdown(&self) {
        self.flush(FLUSH_TIME + self.map.ack_timeout);
        self.shared.stop.store(true, Ordering::SeqCst);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::error!("the PLC link thread panicked");
            }
        }
    }
}

impl Drop for PlcLink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What survives a reconnect: the result sequence, a result not yet written, and one
/// written but not acknowledged (sent again after a reconnect: the PLC may have restarted
/// before it read it).
#[derive(Default)]
struct State {
    sequence: u16,
    /// The acknowledge register's value at connect: a number a new result must not take,
    /// or it would look acknowledged before the PLC saw it (lineside restarted, the PLC
    /// did not).
    stale_ack: Option<u16>,
    unwritten: Option<ResultBlock>,
    awaiting_ack: Option<(ResultBlock, Instant)>,
}

impl State {
    fn block(&mut self, r: PlcResult) -> ResultBlock {
        let next = |s: u16| s.checked_add(1).unwrap_or(1);
        self.sequence = next(self.sequence);
        if Some(self.sequence) == self.stale_ack {
            self.sequence = next(self.sequence);
        }
        ResultBlock {
            code: r.code,
            part_id: r.part_id,
            defects: r.defects,
            latency_ms: r.latency_ms,
            sequence: self.sequence,
        }
    }
}

async fn run(
    map: PlcMap,
    mut results: mpsc::Receiver<PlcResult>,
    triggers: Option<Sender<Trigger>>,
    shared: &Shared,
) {
    let mut state = State::default();
    let mut backoff = BACKOFF_MIN;
    let mut sessions = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let mut ctx = match connect(&map).await {
            Ok(ctx) => ctx,
            Err(e) => {
                shared.link.set_error(e.clone());
                tracing::debug!("PLC link: {e}; retrying in {backoff:?}");
                sleep_unless_stopped(backoff, &shared.stop).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if sessions > 0 {
            shared.link.reconnects.fetch_add(1, Ordering::SeqCst);
            tracing::info!("PLC link to {}:{} re-established", map.host, map.port);
        }
        sessions += 1;
        shared.link.set_connected(true);
        let began = Instant::now();
        let ended = session(
            &map,
            &mut ctx,
            &mut state,
            &mut results,
            triggers.as_ref(),
            shared,
        )
        .await;
        // Best effort: the peer may already be gone.
        let _ = tokio::time::timeout(map.timeout, ctx.disconnect()).await;
        if let Some((block, _)) = state.awaiting_ack.take() {
            state.unwritten.get_or_insert(block);
        }
        match ended {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!("PLC link to {}:{} lost: {e}", map.host, map.port);
                shared.link.set_error(e);
                if began.elapsed() >= STABLE_SESSION {
                    backoff = BACKOFF_MIN;
                } else {
                    sleep_unless_stopped(backoff, &shared.stop).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
    shared.link.set_connected(false);
    // Whatever is still queued never reached the PLC: counted, not lost silently.
    results.close();
    let mut left = u64::from(state.unwritten.is_some());
    while results.try_recv().is_ok() {
        left += 1;
    }
    if left > 0 {
        let c = &shared.counters;
        c.results_dropped.fetch_add(left, Ordering::SeqCst);
        c.completed.fetch_add(left, Ordering::SeqCst);
        shared.link.dropped.fetch_add(left, Ordering::Relaxed);
        tracing::warn!("PLC link stopped with {left} results not written");
    }
}

async fn connect(map: &PlcMap) -> Result<Context, String> {
    let addr: SocketAddr = (map.host.as_str(), map.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}:{}: {e}", map.host, map.port))?
        .next()
        .ok_or_else(|| format!("{}:{} resolves to no address", map.host, map.port))?;
    match tokio::time::timeout(map.timeout, tcp::connect_slave(addr, Slave(map.unit_id))).await {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {addr}: no answer in {:?}",
            map.timeout
        )),
    }
}

/// Serves one connection until it fails (`Err`: reconnect) or the link stops (`Ok`).
async fn session(
    map: &PlcMap,
    ctx: &mut Context,
    state: &mut State,
    results: &mut mpsc::Receiver<PlcResult>,
    triggers: Option<&Sender<Trigger>>,
    shared: &Shared,
) -> Result<(), String> {
    let c = &shared.counters;
    // The counter's value at connect is the baseline: a PLC that restarted begins anew.
    let mut last_count = match (triggers, map.trigger_register) {
        (Some(_), Some(reg)) => Some(read(map, ctx, reg, 1).await?.first().copied().unwrap_or(0)),
        _ => None,
    };
    if let Some(reg) = map.ack_register {
        state.stale_ack = read(map, ctx, reg, 1).await?.first().copied();
    }
    let mut stopping_since: Option<Instant> = None;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            let idle =
                state.unwritten.is_none() && state.awaiting_ack.is_none() && results.is_empty();
            if idle || since.elapsed() > FLUSH_TIME + map.ack_timeout {
                return Ok(());
            }
        }
        // The acknowledge of the result written last.
        if let (Some((block, due)), Some(reg)) = (state.awaiting_ack, map.ack_register) {
            let ack = read(map, ctx, reg, 1).await?.first().copied().unwrap_or(0);
            if ack == block.sequence {
                c.acks.fetch_add(1, Ordering::SeqCst);
                c.completed.fetch_add(1, Ordering::SeqCst);
                state.awaiting_ack = None;
            } else if Instant::now() >= due {
                c.acks_missed.fetch_add(1, Ordering::SeqCst);
                c.completed.fetch_add(1, Ordering::SeqCst);
                state.awaiting_ack = None;
                shared.scenario.raise(
                    "plc_ack_missed",
                    format!(
                        "PLC did not acknowledge result {} (part {}) within {} ms (register {reg} holds {ack})",
                        block.sequence,
                        block.part_id,
                        map.ack_timeout.as_millis()
                    ),
                );
            }
        }
        // The next result, once the PLC has taken the last one.
        if state.awaiting_ack.is_none() {
            if state.unwritten.is_none() {
                if let Ok(r) = results.try_recv() {
                    state.unwritten = Some(state.block(r));
                }
            }
            if let Some(block) = state.unwritten {
                write(map, ctx, map.result_register, &block.words()).await?;
                state.unwritten = None;
                c.results_written.fetch_add(1, Ordering::SeqCst);
                shared
                    .link
                    .backlog
                    .store(results.len() as u64, Ordering::Relaxed);
                match map.ack_register {
                    Some(_) => state.awaiting_ack = Some((block, Instant::now() + map.ack_timeout)),
                    None => {
                        c.completed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        // The trigger counter.
        if let (Some(tx), Some(reg), Some(last)) =
            (triggers, map.trigger_register, last_count.as_mut())
        {
            let count = read(map, ctx, reg, 1)
                .await?
                .first()
                .copied()
                .unwrap_or(*last);
            if count != *last {
                let id = match map.part_id {
                    Some((start, words)) => part_id(&read(map, ctx, start, words).await?),
                    None => 0,
                };
                let (at, wall) = (Instant::now(), SystemTime::now());
                let jumped = count.wrapping_sub(*last);
                *last = count;
                c.triggers.fetch_add(1, Ordering::SeqCst);
                if jumped > 1 {
                    let missed = u64::from(jumped - 1);
                    c.triggers_missed.fetch_add(missed, Ordering::SeqCst);
                    shared.scenario.raise(
                        "plc_trigger_missed",
                        format!("the PLC trigger counter jumped by {jumped} between two polls: {missed} parts were not inspected (poll faster: [plc] poll_ms)"),
                    );
                }
                let t = Trigger {
                    part_id: id,
                    counter: count,
                    at,
                    wall,
                };
                if let Err(TrySendError::Full(_)) = tx.try_send(t) {
                    shared.scenario.raise(
                        "plc_trigger_overflow",
                        format!("part {id}: {TRIGGER_QUEUE} triggers already wait for a frame; this one is not inspected"),
                    );
                }
                continue;
            }
        }
        // Wait for the next poll, or for a result if the link is free for one.
        if state.awaiting_ack.is_none() && state.unwritten.is_none() {
            tokio::select! {
                () = tokio::time::sleep(map.poll) => {}
                r = results.recv() => match r {
                    Some(r) => state.unwritten = Some(state.block(r)),
                    None => tokio::time::sleep(map.poll).await,
                },
            }
        } else {
            tokio::time::sleep(map.poll).await;
        }
    }
}

async fn read(map: &PlcMap, ctx: &mut Context, reg: u16, n: u16) -> Result<Vec<u16>, String> {
    match tokio::time::timeout(map.timeout, ctx.read_holding_registers(reg, n)).await {
        Ok(Ok(Ok(words))) if words.len() == usize::from(n) => Ok(words),
        Ok(Ok(Ok(words))) => Err(format!("reading {n} registers at {reg}: got {}", words.len())),
        Ok(Ok(Err(code))) => Err(format!("reading {n} registers at {reg}: the PLC refused: {code:?} (check the [plc] register map)")),
        Ok(Err(e)) => Err(format!("reading register {reg}: {e}")),
        Err(_) => Err(format!("reading register {reg}: no answer in {:?}", map.timeout)),
    }
}

async fn write(map: &PlcMap, ctx: &mut Context, reg: u16, words: &[u16]) -> Result<(), String> {
    match tokio::time::timeout(map.timeout, ctx.write_multiple_registers(reg, words)).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(code))) => Err(format!("writing {} registers at {reg}: the PLC refused: {code:?} (check the [plc] register map)", words.len())),
        Ok(Err(e)) => Err(format!("writing registers at {reg}: {e}")),
        Err(_) => Err(format!("writing registers at {reg}: no answer in {:?}", map.timeout)),
    }
}

async fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20).min(d)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> PlcResult {
        PlcResult {
            code: 1,
            part_id: 7,
            defects: 0,
            latency_ms: 3,
        }
    }

    #[test]
    fn sequences_skip_0_and_the_acknowledge_left_from_before() {
        let mut s = State {
            stale_ack: Some(1),
            ..State::default()
        };
        assert_eq!(
            s.block(result()).sequence,
            2,
            "1 would look acknowledged already"
        );
        s.sequence = 65534;
        assert_eq!(s.block(result()).sequence, 65535);
        assert_eq!(
            s.block(result()).sequence,
            2,
            "wraps past 0 and the stale 1"
        );
    }
}
