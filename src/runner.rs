//! Running several scenarios in one process: one pipeline each, one ONNX Runtime
//! environment for all, and a core budget shared between them.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::config::Diagnostic;
use crate::outcome::{Outcome, RunSink};
use crate::pipeline::{self, PipelineError, RunSettings};
use crate::scenario::ScenarioPlan;
use crate::sink::{self, RecordContext, RunStats, SinkContext, SinkError, Summary};
use crate::source::{self, SourceError};
use crate::status::ScenarioStatus;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("scenario {scenario}: cannot open source: {source}")]
    Source {
        scenario: String,
        source: SourceError,
    },
    #[error("scenario {scenario}: {source}")]
    Output { scenario: String, source: SinkError },
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("scenario {scenario}: panicked: {message}")]
    Panicked { scenario: String, message: String },
}

pub struct RunOptions {
    pub progress: bool,
    pub stop: Arc<AtomicBool>,
    /// Stop now, logging nothing more (a second Ctrl-C); see [`RunSettings::abort`].
    pub abort: Arc<AtomicBool>,
    /// Cores to spread workers over (default: all).
    pub cores: usize,
}

/// Workers per scenario so that workers x intra-op threads stays within the cores.
pub fn worker_budget(plans: &[ScenarioPlan], cores: usize) -> Vec<usize> {
    let share = (cores / plans.len().max(1)).max(1);
    plans
        .iter()
        .map(|p| p.workers.unwrap_or((share / p.intra_threads.max(1)).max(1)))
        .collect()
}

/// Expands folders into the `*.toml` files they contain (sorted).
pub fn expand_scenario_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Diagnostic {
                    file: p.clone(),
                    line: None,
                    key: String::new(),
                    message: format!("cannot list folder: {e}"),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            // An empty folder checks nothing: say so rather than pass silently.
            if files.is_empty() {
                return Err(Diagnostic {
                    file: p.clone(),
                    line: None,
                    key: String::new(),
                    message: "no scenario files (*.toml) in this folder".into(),
                });
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Runs every plan to completion (or until `stop`), each in its own thread, and returns
/// their summaries in the order given. Each summary is also written as
/// `summary.json` beside its defect log.
pub fn run_scenarios(plans: &[ScenarioPlan], opts: &RunOptions) -> Vec<Result<Summary, RunError>> {
    let workers = worker_budget(plans, opts.cores);
    let threads: usize = plans
        .iter()
        .zip(&workers)
        .map(|(p, w)| w * p.intra_threads)
        .sum();
    if threads > opts.cores {
        tracing::warn!(
            "workers x intra_threads across scenarios is {threads}, more than the {} cores given: \
             inference will be slower and jittery; lower [model].workers or intra_threads",
            opts.cores
        );
    }
    // One id for every scenario of this invocation: their records can be matched up.
    let run_id = sink::new_run_id();
    let bars = MultiProgress::new();
    if !opts.progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .zip(&workers)
            .map(|(plan, &w)| {
                let (bars, run_id) = (&bars, run_id.as_str());
                scope.spawn(move || run_one(plan, w, run_id, opts, bars))
            })
            .collect();
        handles
            .into_iter()
            .zip(plans)
            .map(|(h, plan)| {
                h.join().unwrap_or_else(|payload| {
                    Err(RunError::Panicked {
                        scenario: plan.id.clone(),
                        message: pipeline::panic_message(payload.as_ref()),
                    })
                })
            })
            .collect()
    })
}

fn run_one(
    plan: &ScenarioPlan,
    workers: usize,
    run_id: &str,
    opts: &RunOptions,
    bars: &MultiProgress,
) -> Result<Summary, RunError> {
    let output_err = |source| RunError::Output {
        scenario: plan.id.clone(),
        source,
    };
    // Held until the sinks are finished: one run per output folder at a time.
    let _lock = sink::output_dir::lock(&plan.output_dir, plan.file_mode).map_err(output_err)?;
    let source = source::open(&plan.source).map_err(|source| RunError::Source {
        scenario: plan.id.clone(),
        source,
    })?;
    let progress = bars.add(match source.len_hint() {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    });
    progress.set_style(
        ProgressStyle::with_template(
            "{prefix:>20} {bar:30} {pos}/{len} frames {per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix(plan.id.clone());
    let (model_id, model_sha256) = plan.logged_model();
    let record = Arc::new(RecordContext {
        scenario: plan.id.clone(),
        run_id: run_id.to_string(),
        source: source.describe(),
        items: source.item_names(),
        labels: Arc::clone(&plan.labels),
        model_id,
        model_sha256,
        head: plan.head.clone(),
    });
    let status = ScenarioStatus::new(plan.id.clone());
    let ctx = SinkContext {
        scenario: &plan.id,
        output_dir: &plan.output_dir,
        file_mode: plan.file_mode,
        run_id,
        workers,
        record,
        status: Arc::clone(&status),
        mqtt: plan.mqtt.as_ref(),
    };
    let outputs = sink::open_all(&plan.sinks, &ctx).map_err(output_err)?;
    let mut monitor = Monitor {
        stats: RunStats::default(),
        progress,
        outputs,
    };
    let settings = RunSettings {
        workers,
        intra_threads: plan.intra_threads,
        stop: Arc::clone(&opts.stop),
        abort: Arc::clone(&opts.abort),
        status,
    };
    pipeline::run(plan, source, &settings, &mut monitor)?;
    let log_path = plan.output_dir.join("defects.jsonl");
    Ok(monitor.stats.summary(&plan.id, run_id, &log_path, workers))
}

/// The run's own bookkeeping (counts for the summary table, the progress bar) in front
/// of the scenario's sinks.
struct Monitor {
    stats: RunStats,
    progress: ProgressBar,
    outputs: Vec<Box<dyn RunSink>>,
}

impl RunSink for Monitor {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.stats.add(outcome);
        self.outputs.deliver(outcome)?;
        self.progress.inc(1);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.progress.finish_and_clear();
        self.outputs.finish()
    }
}

pub fn summary_path(output_dir: &Path) -> PathBuf {
    output_dir.join("summary.json")
}
