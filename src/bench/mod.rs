//! `lineside bench SCENARIO [--cores 1,2,4] [--frames N] [--json F]`: what a line engineer
//! sizing a box needs. For each core count it measures
//!
//! - **ORT alone**: the scenario's model on ONNX Runtime with nothing around it, as N
//!   sessions x 1 thread (one per core, each in its own thread) and as 1 session x N
//!   threads; the better of the two is the ceiling any pipeline can reach;
//! - **the pipeline**: the scenario run end to end on its own frames (replayed as often as
//!   needed), with the workers `lineside run` would use, logging to a temporary folder; its
//!   steady rate (first to last verdict, so session start-up is not counted), the
//!   efficiency (pipeline / ORT alone) and per-stage p50/p99;
//! - **latency at 80% load**: the same run paced at 80% of the measured rate as a live
//!   camera would be, capture-to-verdict p50/p99 (and frames dropped, if any).
//!
//! Outputs (PLC, MQTT, HTTP endpoint) are left out: only the inspection is measured.

mod figures;

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde::Serialize;

use crate::engine::{EngineError, InferenceSession, SessionOptions};
use crate::plc::TriggerPlan;
use crate::runner::{self, RunError, RunOptions};
use crate::scenario::ScenarioPlan;
use crate::source::{self, SourceError, SourceKind};

pub use figures::{LoggedRun, Spread};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "scenario {0}: its source has no fixed number of frames to replay (a camera or a \
         watched folder)\nFix: bench a copy of the scenario whose [source] is kind = \"images\", \
         \"raw\" (frames recorded from the camera with lineside record) or \"synthetic\""
    )]
    NotReplayable(String),
    #[error("{0}")]
    Bad(String),
}

pub struct BenchOptions {
    /// Core counts to measure at.
    pub cores: Vec<usize>,
    /// Frames per measurement.
    pub frames: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub scenario: String,
    pub model: String,
    pub model_sha256: String,
    /// The model's input tensor, NCHW.
    pub input: [usize; 4],
    /// The execution provider both measurements ran on (`[model] providers`).
    pub provider: String,
    pub frames_per_measurement: u64,
    pub machine: Machine,
    pub rows: Vec<BenchRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub arch: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub cores: usize,
    /// N sessions x 1 thread, frames/s.
    pub ort_sessions_fps: f64,
    /// 1 session x N threads, frames/s.
    pub ort_threads_fps: f64,
    /// The better of the two.
    pub ort_alone_fps: f64,
    /// The whole pipeline, steady rate, frames/s.
    pub pipeline_fps: f64,
    /// pipeline / ORT alone.
    pub efficiency: f64,
    pub workers: usize,
    pub preprocess_ms: Spread,
    pub infer_ms: Spread,
    pub head_ms: Spread,
    /// Capture to verdict when running flat out (includes queueing).
    pub saturated_latency_ms: Spread,
    pub load80: Load,
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// Frames/s the paced source offered (80% of `pipeline_fps`).
    pub offered_fps: f64,
    pub latency_ms: Spread,
    /// p99 / p50.
    pub p99_over_p50: f64,
    pub dropped: u64,
}

/// The CPU's model name from /proc/cpuinfo (x86-64 `model name`, aarch64 `CPU part`), or
/// the architecture.
fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "model name" | "Model" | "CPU part").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// `frames` inferences spread over `sessions` sessions of `threads` intra-op threads each,
/// all started together after opening and warming up; frames/s.
fn ort_rate(
    plan: &ScenarioPlan,
    sessions: usize,
    threads: usize,
    frames: u64,
) -> Result<f64, BenchError> {
    let per = frames.div_ceil(sessions as u64).max(1);
    let start = Barrier::new(sessions + 1);
    let shape = plan.preprocess.tensor_shape();
    let (began, results) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..sessions)
            .map(|_| {
                let start = &start;
                scope.spawn(move || -> Result<(), EngineError> {
                    let opened = InferenceSession::open(
                        Arc::clone(&plan.model),
                        shape,
                        SessionOptions::on(&plan.provider, threads),
                    );
                    // Reach the barrier even when opening failed, so nobody waits forever.
                    let mut session = match opened {
                        Ok(mut s) => {
                            for _ in 0..3 {
                                s.run()?;
                            }
                            start.wait();
                            s
                        }
                        Err(e) => {
                            start.wait();
                            return Err(e);
                        }
                    };
                    for _ in 0..per {
                        session.run()?;
                    }
                    Ok(())
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (began, results)
    });
    let elapsed = began.elapsed().as_secs_f64();
    for r in results {
        match r {
            Ok(r) => r?,
            Err(_) => return Err(BenchError::Bad("an inference thread panicked".into())),
        }
    }
    Ok((per * sessions as u64) as f64 / elapsed.max(1e-9))
}

/// The scenario as the bench runs it: its frames replayed `repeat` times, paced at `fps`
/// (0: flat out) as a live source when paced, logging into `out` and nowhere else.
fn bench_plan(plan: &ScenarioPlan, repeat: u32, fps: f64, out: PathBuf) -> ScenarioPlan {
    let mut p = plan.clone();
    p.source.repeat = repeat;
    p.source.fps = fps;
    p.source.live = fps > 0.0;
    p.output_dir = out;
    p.sinks = vec!["defect_log", "summary"];
    p.plc = None;
    p.mqtt = None;
    p.listen = None;
    p.trigger = TriggerPlan::default();
    p
}

fn run_logged(plan: &ScenarioPlan, cores: usize) -> Result<(LoggedRun, u64, usize), BenchError> {
    let summary = runner::run_scenarios(std::slice::from_ref(plan), &RunOptions::unattended(cores))
        .into_iter()
        .next()
        .ok_or_else(|| BenchError::Bad("the run returned nothing".into()))??;
    let log = plan.output_dir.join("defects.jsonl");
    let run = LoggedRun::read(&log).map_err(|source| BenchError::Io { path: log, source })?;
    Ok((run, summary.dropped, summary.workers))
}

/// Measures `plan` at each core count of `opts`.
pub fn bench(
    plan: &ScenarioPlan,
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, BenchError> {
    let mut plan = plan.clone();
    let repeat = match plan.source.kind {
        SourceKind::Images | SourceKind::Raw => {
            let mut one_pass = plan.source.clone();
            one_pass.repeat = 1;
            let per_pass = source::open(&one_pass)?
                .len_hint()
                .filter(|&n| n > 0)
                .ok_or_else(|| BenchError::NotReplayable(plan.id.clone()))?;
            u32::try_from(opts.frames.div_ceil(per_pass).max(1)).unwrap_or(u32::MAX)
        }
        // Generated frames: as many as asked for.
        SourceKind::Synthetic => {
            plan.source.frames = opts.frames;
            1
        }
        _ => return Err(BenchError::NotReplayable(plan.id.clone())),
    };
    let plan = &plan;
    let tmp = tempfile::tempdir().map_err(|source| BenchError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut rows = Vec::new();
    for (i, &cores) in opts.cores.iter().enumerate() {
        let cores = cores.max(1);
        progress(&format!("{cores} core(s): ORT alone"));
        let sessions = ort_rate(plan, cores, 1, opts.frames)?;
        let threads = ort_rate(plan, 1, cores, opts.frames)?;
        progress(&format!("{cores} core(s): pipeline"));
        let flat = bench_plan(plan, repeat, 0.0, tmp.path().join(format!("flat-{i}")));
        let (run, _, workers) = run_logged(&flat, cores)?;
        let fps = run.steady_fps();
        progress(&format!("{cores} core(s): 80% load"));
        let offered = fps * 0.8;
        let paced = bench_plan(plan, repeat, offered, tmp.path().join(format!("paced-{i}")));
        let (load, dropped, _) = run_logged(&paced, cores)?;
        let lat = load.total();
        let ort = sessions.max(threads);
        rows.push(BenchRow {
            cores,
            ort_sessions_fps: sessions,
            ort_threads_fps: threads,
            ort_alone_fps: ort,
            pipeline_fps: fps,
            efficiency: fps / ort.max(1e-9),
            workers,
            preprocess_ms: run.stage(|l| l.preprocess),
            infer_ms: run.stage(|l| l.infer),
            head_ms: run.stage(|l| l.head),
            saturated_latency_ms: run.total(),
            load80: Load {
                offered_fps: offered,
                p99_over_p50: lat.p99 / lat.p50.max(1e-9),
                latency_ms: lat,
                dropped,
            },
        });
    }
    let (model, model_sha256) = plan.logged_model();
    Ok(BenchReport {
        scenario: plan.id.clone(),
        model,
        model_sha256,
        input: plan.preprocess.tensor_shape(),
        provider: plan.provider.label(),
        frames_per_measurement: opts.frames,
        machine: Machine {
            cpu: cpu_name(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            arch: std::env::consts::ARCH,
        },
        rows,
    })
}

impl BenchReport {
    /// The figures as a table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} ({} {:?} on {}) on {} ({} cores, {}), {} frames per measurement\n",
            self.scenario,
            self.model,
            self.input,
            self.provider,
            self.machine.cpu,
            self.machine.cores,
            self.machine.arch,
            self.frames_per_measurement
        );
        s += "cores | ORT alone fps (Nx1 / 1xN) | pipeline fps | efficiency | workers | \
              preprocess / infer / head p50 ms (p99) | at 80% load: p50 / p99 ms (p99/p50)\n";
        for r in &self.rows {
            s += &format!(
                "{:>5} | {:>8.1} ({:.1} / {:.1}) | {:>12.1} | {:>9.1}% | {:>7} | \
                 {:.2} ({:.2}) / {:.2} ({:.2}) / {:.2} ({:.2}) | {:.1} / {:.1} ({:.2}){}\n",
                r.cores,
                r.ort_alone_fps,
                r.ort_sessions_fps,
                r.ort_threads_fps,
                r.pipeline_fps,
                r.efficiency * 100.0,
                r.workers,
                r.preprocess_ms.p50,
                r.preprocess_ms.p99,
                r.infer_ms.p50,
                r.infer_ms.p99,
                r.head_ms.p50,
                r.head_ms.p99,
                r.load80.latency_ms.p50,
                r.load80.latency_ms.p99,
                r.load80.p99_over_p50,
                if r.load80.dropped > 0 {
                    format!(", {} dropped", r.load80.dropped)
                } else {
                    String::new()
                }
            );
        }
        s
    }
}
