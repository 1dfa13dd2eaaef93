//! Running several scenarios in one process: one pipeline each, one ONNX Runtime
//! environment for all, and a core budget shared between them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::config::{Diagnostic, Station};
use crate::outcome::{Outcome, OutcomeKind, RunSink};
use crate::pipeline::{self, PipelineError, PlanSlot, RunSettings};
use crate::plc::{PlcLink, TriggerMode};
use crate::scenario::{self, ScenarioPlan};
use crate::service::{notify, Endpoint, Metrics, MetricsSink};
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
    #[error("scenario {scenario}: {source}")]
    Plc {
        scenario: String,
        source: crate::plc::PlcError,
    },
    #[error("scenario {scenario}: panicked: {message}")]
    Panicked { scenario: String, message: String },
}

/// How long the end of a run waits for the PLC to take the last results.
const LINK_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);

pub struct RunOptions {
    pub progress: bool,
    pub stop: Arc<AtomicBool>,
    /// Stop now, logging nothing more (a second Ctrl-C); see [`RunSettings::abort`].
    pub abort: Arc<AtomicBool>,
    /// Cores to spread workers over (default: all).
    pub cores: usize,
    /// The station: records carry its name and local time.
    pub station: Arc<Station>,
}

impl RunOptions {
    /// No progress bars, nothing stopping the run, the default station: a run driven by a
    /// program (bench, tests) rather than a person.
    pub fn unattended(cores: usize) -> Self {
        RunOptions {
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            abort: Arc::new(AtomicBool::new(false)),
            cores,
            station: Arc::default(),
        }
    }
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
    run_service(plans, opts, &ServiceOptions::default())
}

/// What `lineside run` adds when it runs as a service.
#[derive(Default)]
pub struct ServiceOptions {
    /// Serves `/healthz` and `/metrics` while the scenarios run.
    pub endpoint: Option<Endpoint>,
    /// Bumped once per SIGHUP: scenario files are checked again and swapped in, and file
    /// sinks reopen their files.
    pub reload: Option<Arc<AtomicU64>>,
}

/// [`run_scenarios`] with the service around it: the health/metrics endpoint, hot reload
/// on request, and systemd notifications (READY, WATCHDOG, STOPPING, STATUS).
pub fn run_service(
    plans: &[ScenarioPlan],
    opts: &RunOptions,
    service: &ServiceOptions,
) -> Vec<Result<Summary, RunError>> {
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
    let statuses: Vec<Arc<ScenarioStatus>> = plans
        .iter()
        .map(|p| ScenarioStatus::new(p.id.clone()))
        .collect();
    let slots: Vec<Arc<PlanSlot>> = plans
        .iter()
        .map(|p| PlanSlot::new(Arc::new(p.clone())))
        .collect();
    let metrics = Metrics::new(statuses.clone());
    // Set when every scenario has returned: the endpoint and the supervisor stop.
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if let Some(endpoint) = &service.endpoint {
            let (metrics, statuses, done) = (&metrics, &statuses, &done);
            tracing::info!(
                "serving /healthz and /metrics on http://{}",
                endpoint.addr()
            );
            scope.spawn(move || endpoint.serve(metrics, statuses, done));
        }
        {
            let (statuses, slots, done) = (&statuses, &slots, &done);
            scope.spawn(move || supervise(statuses, slots, opts, service, done));
        }
        let handles: Vec<_> = plans
            .iter()
            .zip(&workers)
            .zip(statuses.iter().zip(&slots))
            .map(|((plan, &w), (status, slot))| {
                let (bars, run_id, metrics) = (&bars, run_id.as_str(), &metrics);
                let scenario = Scenario {
                    plan,
                    status: Arc::clone(status),
                    slot: Arc::clone(slot),
                    reload: service.reload.is_some(),
                };
                scope.spawn(move || run_one(&scenario, w, run_id, opts, bars, metrics))
            })
            .collect();
        let results = handles
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
            .collect();
        done.store(true, Ordering::SeqCst);
        results
    })
}

/// One scenario of the process and the state it shares with the service.
struct Scenario<'a> {
    plan: &'a ScenarioPlan,
    status: Arc<ScenarioStatus>,
    slot: Arc<PlanSlot>,
    /// Reloads may be published to `slot`.
    reload: bool,
}

/// The service's own thread: tells systemd how the run goes and carries out reload
/// requests, until `done`. WATCHDOG=1 comes from this loop, so a wedged supervisor (or a
/// process too starved to run it) is restarted by systemd.
fn supervise(
    statuses: &[Arc<ScenarioStatus>],
    slots: &[Arc<PlanSlot>],
    opts: &RunOptions,
    service: &ServiceOptions,
    done: &AtomicBool,
) {
    let watchdog = notify::watchdog_interval();
    let mut pinged: Option<Instant> = None;
    let (mut ready, mut stopping) = (false, false);
    let mut reloads_seen = service
        .reload
        .as_ref()
        .map_or(0, |r| r.load(Ordering::SeqCst));
    while !done.load(Ordering::SeqCst) {
        // Ready once every scenario has its sessions open and capture started (a
        // scenario whose source already ended counts: it will not start any more).
        if !ready
            && statuses
                .iter()
                .all(|s| s.started.load(Ordering::SeqCst) || !s.source_alive.load(Ordering::SeqCst))
        {
            ready = true;
            let status = format!("running {} scenario(s)", statuses.len());
            notify::send(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
            ]);
        }
        if !stopping && opts.stop.load(Ordering::SeqCst) {
            stopping = true;
            notify::send(&[
                sd_notify::NotifyState::Stopping,
                sd_notify::NotifyState::Status("stopping: finishing frames in flight"),
            ]);
        }
        if let Some(requests) = &service.reload {
            let n = requests.load(Ordering::SeqCst);
            if n != reloads_seen && !stopping {
                reloads_seen = n;
                reload(statuses, slots);
            }
        }
        if let Some(every) = watchdog {
            if pinged.is_none_or(|t| t.elapsed() >= every) {
                pinged = Some(Instant::now());
                notify::send(&[sd_notify::NotifyState::Watchdog]);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGHUP: every scenario's file sinks reopen their files, and every scenario file is
/// checked again. A file that passes and changes only what workers can rebuild
/// (`[preprocess]`, `[head]` settings of the same kind, `[rules]`, the model file) is
/// swapped in at a frame boundary; a file with errors, or one that changes what only a
/// restart can (`[source]`, `[output]`, `[service]`, workers, the head kind), is refused
/// and the running plan goes on.
fn reload(statuses: &[Arc<ScenarioStatus>], slots: &[Arc<PlanSlot>]) {
    for (status, slot) in statuses.iter().zip(slots) {
        status.reopen_files.fetch_add(1, Ordering::SeqCst);
        let (generation, running) = slot.current();
        let id = &running.id;
        let file = running.file.display();
        let new = match scenario::check(&running.file) {
            Ok(p) => p,
            Err(diags) => {
                for d in &diags {
                    tracing::error!(scenario = %id, "reload: {d}");
                }
                status.raise(
                    "reload_refused",
                    format!(
                        "reload refused: {file} has {} error(s) (logged above); plan \
                         {generation} keeps running",
                        diags.len()
                    ),
                );
                continue;
            }
        };
        let restart = needs_restart(&running, &new);
        if !restart.is_empty() {
            status.raise(
                "reload_needs_restart",
                format!(
                    "reload refused: {file} changes {}, which only a restart applies \
                     (systemctl restart); plan {generation} keeps running",
                    restart.join(", ")
                ),
            );
            continue;
        }
        if same_decisions(&running, &new) {
            tracing::info!(scenario = %id, "reload: {file} unchanged; plan {generation} goes on");
            continue;
        }
        let generation = slot.publish(Arc::new(new));
        status.plan_generation.store(generation, Ordering::SeqCst);
        tracing::info!(
            scenario = %id,
            "reload: {file} checked; plan {generation} takes over at the next frame"
        );
        let line = format!("{id}: plan {generation} loaded");
        notify::send(&[sd_notify::NotifyState::Status(&line)]);
    }
}

/// What a reload cannot change while the scenario runs, as the parts of the file to name.
fn needs_restart(running: &ScenarioPlan, new: &ScenarioPlan) -> Vec<&'static str> {
    let mut parts = Vec::new();
    if running.id != new.id {
        parts.push("[scenario] id");
    }
    if debug_text(&running.source) != debug_text(&new.source) {
        parts.push("[source]");
    }
    if running.output_dir != new.output_dir
        || running.file_mode != new.file_mode
        || running.sinks != new.sinks
        || running.summary_every_s != new.summary_every_s
    {
        parts.push("[output]");
    }
    if running.listen != new.listen {
        parts.push("[service]");
    }
    // The PLC link and the trigger are started with the run.
    if debug_text(&running.trigger) != debug_text(&new.trigger)
        || debug_text(&running.plc) != debug_text(&new.plc)
    {
        parts.push("[trigger]/[plc]");
    }
    if running.workers != new.workers || running.intra_threads != new.intra_threads {
        parts.push("[model] workers/intra_threads");
    }
    if running.head.kind() != new.head.kind() {
        parts.push("[head] kind");
    }
    parts
}

/// Whether `new` decides every frame as `running` does (nothing to swap).
fn same_decisions(running: &ScenarioPlan, new: &ScenarioPlan) -> bool {
    running.model.sha256 == new.model.sha256
        && debug_text(&running.preprocess) == debug_text(&new.preprocess)
        && debug_text(&running.head) == debug_text(&new.head)
}

/// Plans hold no comparable form of their sections: their Debug text is compared (same
/// types, same fields, so equal text means equal settings).
fn debug_text(v: &dyn std::fmt::Debug) -> String {
    format!("{v:?}")
}

fn run_one(
    scenario: &Scenario<'_>,
    workers: usize,
    run_id: &str,
    opts: &RunOptions,
    bars: &MultiProgress,
    metrics: &Metrics,
) -> Result<Summary, RunError> {
    let plan = scenario.plan;
    let output_err = |source| RunError::Output {
        scenario: plan.id.clone(),
        source,
    };
    // Held until the sinks are finished: one run per output folder at a time.
    let _lock = sink::output_dir::lock(&plan.output_dir, plan.file_mode).map_err(output_err)?;
    let mut source = source::open(&plan.source).map_err(|source| RunError::Source {
        scenario: plan.id.clone(),
        source,
    })?;
    let settle = source.settle();
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
        station: opts.station.record_name(),
        time_zone: opts.station.time_zone.clone(),
        run_id: run_id.to_string(),
        source: source.describe(),
        items: source.item_names(),
        labels: Arc::clone(&plan.labels),
        model_id,
        model_sha256,
        head: plan.head.clone(),
    });
    let status = Arc::clone(&scenario.status);
    // One link per scenario, shared by the trigger (capture) and the `plc` sink.
    let plc = match &plan.plc {
        Some(map) => Some(Arc::new(
            PlcLink::start(
                map.clone(),
                plan.trigger.mode == TriggerMode::Plc,
                Arc::clone(&status),
            )
            .map_err(|source| RunError::Plc {
                scenario: plan.id.clone(),
                source,
            })?,
        )),
        None => None,
    };
    let provider = plan.provider.label();
    let ctx = SinkContext {
        scenario: &plan.id,
        output_dir: &plan.output_dir,
        file_mode: plan.file_mode,
        run_id,
        workers,
        provider: &provider,
        record: Arc::clone(&record),
        status: Arc::clone(&status),
        plc: plc.clone(),
        trigger: plan.trigger,
        summary_every: (plan.summary_every_s > 0)
            .then(|| Duration::from_secs(plan.summary_every_s)),
        mqtt: plan.mqtt.as_ref(),
    };
    let outputs = sink::open_all(&plan.sinks, &ctx).map_err(output_err)?;
    let mut monitor = Monitor {
        stats: RunStats::default(),
        progress,
        metrics: metrics.sink(record),
        outputs,
        plc: plc.clone(),
        settle,
    };
    let settings = RunSettings {
        workers,
        intra_threads: plan.intra_threads,
        stop: Arc::clone(&opts.stop),
        abort: Arc::clone(&opts.abort),
        status: Arc::clone(&status),
        triggers: plc.as_ref().and_then(|l| l.triggers()),
        reload: scenario.reload.then(|| Arc::clone(&scenario.slot)),
    };
    let ran = pipeline::run(plan, source, &settings, &mut monitor);
    if let Some(link) = &plc {
        link.shutdown();
    }
    ran?;
    let log_path = plan.output_dir.join("defects.jsonl");
    Ok(monitor
        .stats
        .summary(&plan.id, run_id, &log_path, workers)
        .with_line_side(&status, plc.as_deref())
        .with_provider(&provider))
}

/// The run's own bookkeeping (counts for the summary table, the progress bar) in front
/// of the scenario's sinks.
struct Monitor {
    stats: RunStats,
    progress: ProgressBar,
    /// Every scenario is counted for `/metrics`, whatever its `[output] sinks`.
    metrics: MetricsSink,
    outputs: Vec<Box<dyn RunSink>>,
    plc: Option<Arc<PlcLink>>,
    /// Told once every sink has taken a verdict (a watched folder's ledger).
    settle: Option<Box<dyn source::Settle>>,
}

impl RunSink for Monitor {
    fn deliver(&mut self, outcome: &Outcome) -> Result<(), SinkError> {
        self.stats.add(outcome);
        self.metrics.deliver(outcome)?;
        self.outputs.deliver(outcome)?;
        if let Some(settle) = self.settle.as_mut() {
            // A dropped frame has no verdict: its file must stay undone.
            if !matches!(outcome.result, OutcomeKind::Dropped) {
                settle
                    .settled(&outcome.origin)
                    .map_err(|e| SinkError::Source(e.to_string()))?;
            }
        }
        self.progress.inc(1);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.progress.finish_and_clear();
        // The last results reach the PLC (bounded wait) before the summary counts them.
        if let Some(link) = &self.plc {
            if !link.flush(LINK_FLUSH) {
                tracing::warn!("PLC link: results still queued at the end of the run");
            }
        }
        self.outputs.finish()
    }
}

pub fn summary_path(output_dir: &Path) -> PathBuf {
    output_dir.join("summary.json")
}
