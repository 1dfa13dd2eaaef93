//! The `lineside` command line. All work happens in the library; this file parses
//! arguments, prints, and chooses exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use lineside::config::{Diagnostic, Station};
use lineside::engine::{ModelInfo, OpenvinoDevice, Provider, ProviderList};
use lineside::runner::{self, RunOptions, ServiceOptions};
use lineside::sink::Summary;
use lineside::source::v4l2;

#[derive(Parser)]
#[command(
    name = "lineside",
    version,
    about = "On-device vision inspection: camera frames → ONNX models → OK/NG per part"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (files or folders of *.toml). With none, runs ./scenarios/demo.toml.
    Run {
        scenarios: Vec<PathBuf>,
        /// Do not draw progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Cores to spread workers over (default: all).
        #[arg(long)]
        cores: Option<usize>,
        /// Serve /healthz and /metrics here ("127.0.0.1:9898", or a port alone for
        /// 127.0.0.1); overrides [service] listen.
        #[arg(long)]
        listen: Option<String>,
        /// Station file: the name and time zone records carry (default
        /// /etc/lineside/station.toml when it exists, else the host name and the system's
        /// time zone); docs/report.md.
        #[arg(long)]
        station: Option<PathBuf>,
    },
    /// Check scenario files (schema, files, model fit) without running them.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// List V4L2 capture devices: formats, sizes, frame rates and controls.
    Devices {
        /// Device nodes to describe (default: every /dev/video*).
        paths: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Record raw frames from a scenario's camera, with the JSON sidecar that
    /// `[source] kind = "raw"` replays.
    Record {
        scenario: PathBuf,
        /// Frames to record.
        #[arg(long, default_value_t = 100)]
        frames: u64,
        /// Output folder (gets frames.raw and frames.raw.json).
        #[arg(long)]
        out: PathBuf,
    },
    /// Fit a PatchCore anomaly model from good images, or a teach-by-example classifier
    /// from one folder per class (the scenario's [fit] section), and write it where its
    /// [head] artifact points.
    Fit {
        scenario: PathBuf,
        /// Do not draw progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Also write the fit report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// ONNX Runtime threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Record the pixel size of a measurement scenario: measure a target of known size
    /// with one of its width/distance rules and write mm_per_px to its [rules] calibration
    /// file (docs/measure.md).
    Calibrate {
        scenario: PathBuf,
        /// A frame of the calibration target, taken by the scenario's camera.
        #[arg(long)]
        image: PathBuf,
        /// The measurement rule (`[[rules.measure]] name`) that spans the target.
        #[arg(long)]
        probe: String,
        /// The target's true size along that rule, in millimetres.
        #[arg(long)]
        known_mm: f32,
    },
    /// Measure a scenario on labelled images: anomaly heads (MVTec AD layout) get image and
    /// pixel AUROC, AUPRO and F1 per defect type; other heads get detection AP per class,
    /// OCR character accuracy and the OK/NG confusion from a truth.json or YOLO labels.
    Eval {
        scenario: PathBuf,
        /// Labelled images. Anomaly scenarios: a data set with test/good, test/<defect>
        /// and ground_truth/<defect> (MVTec AD layout). Other heads: a folder of images with
        /// a truth.json or YOLO labels (default: the scenario's own image folder).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        no_progress: bool,
        /// ONNX Runtime threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Turn defect logs into a report for QA: per scenario OK/NG/ERROR/TIMEOUT counts and
    /// yield, rejects per rule and defect class, a trend per hour, latency, the worst parts.
    Report {
        /// Output folders of scenarios (or defect-log files).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        /// From this time: RFC 3339, or a local date/time ("2026-12-01 06:00").
        #[arg(long)]
        since: Option<String>,
        /// Up to (not including) this time.
        #[arg(long)]
        until: Option<String>,
        /// Only parts decided in this shift (defined in the --station file).
        #[arg(long)]
        shift: Option<String>,
        /// Station file: name, time zone and shifts (docs/report.md).
        #[arg(long)]
        station: Option<PathBuf>,
        /// The HTML page (default report.html).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the tables as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write the tables as CSV files into this folder.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Show these `lineside eval --json` results beside their scenarios (repeatable).
        #[arg(long = "eval")]
        evals: Vec<PathBuf>,
    },
    /// Size a box: ORT alone on the scenario's model (N sessions x 1 thread and 1 x N)
    /// against the whole pipeline on the scenario's frames, per core count, with per-stage
    /// p50/p99 and the latency at 80% of the measured rate (docs/bench.md).
    Bench {
        scenario: PathBuf,
        /// Core counts to measure at, e.g. 1,2,4 (default: 1 and all).
        #[arg(long, value_delimiter = ',')]
        cores: Vec<usize>,
        /// Frames per measurement (the scenario's frames are replayed as often as needed).
        #[arg(long, default_value_t = 300)]
        frames: u64,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Look at model files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Inputs, outputs, shapes, dtypes and metadata of an ONNX model.
    Inspect {
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Execution providers to try, in order, as `[model] providers` would
        /// (e.g. `openvino,cpu`); says which one would run the model.
        #[arg(long, value_delimiter = ',', default_value = "cpu")]
        providers: Vec<String>,
        /// OpenVINO device, as `[model.openvino] device_type`: CPU, GPU or NPU.
        #[arg(long, default_value = "CPU")]
        openvino_device: String,
    },
}

fn main() -> ExitCode {
    // Before any thread starts (see the function); a line-side box sends and stores nothing.
    lineside::engine::runtime::disable_telemetry();
    // A file size limit (`ulimit -f`) must fail the write with EFBIG, reported with the
    // file's name, rather than kill the process silently with SIGXFSZ.
    // SAFETY: sets a signal disposition before any thread starts.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // Colour only for a person at a terminal: journald and log files get plain text.
    // `RUST_LOG=lineside=info` shows lineside's own events (every target is `lineside::…`).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenarios,
            no_progress,
            cores,
            listen,
            station,
        } => run(
            scenarios,
            !no_progress,
            cores,
            listen.as_deref(),
            station.as_deref(),
        ),
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Devices { paths, json } => devices(&paths, json),
        Command::Record {
            scenario,
            frames,
            out,
        } => record(&scenario, frames, &out),
        Command::Fit {
            scenario,
            no_progress,
            json,
            threads,
        } => fit(&scenario, !no_progress, json.as_deref(), threads),
        Command::Calibrate {
            scenario,
            image,
            probe,
            known_mm,
        } => calibrate(&scenario, &image, &probe, known_mm),
        Command::Eval {
            scenario,
            data,
            json,
            no_progress,
            threads,
        } => eval(
            &scenario,
            data.as_deref(),
            json.as_deref(),
            !no_progress,
            threads,
        ),
        Command::Report {
            logs,
            since,
            until,
            shift,
            station,
            out,
            json,
            csv,
            evals,
        } => report(ReportArgs {
            logs,
            since,
            until,
            shift,
            station,
            out,
            json,
            csv,
            evals,
        }),
        Command::Models {
            command:
                ModelsCommand::Inspect {
                    model,
                    json,
                    providers,
                    openvino_device,
                },
        } => inspect(&model, json, &providers, &openvino_device),
        Command::Bench {
            scenario,
            cores,
            frames,
            json,
        } => bench(&scenario, cores, frames, json.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The scenario `lineside run` runs with no argument: the demo in `./scenarios/`, relative
/// to the working directory only (never a path compiled into the binary), so what runs is
/// what the operator sees where they stand.
const DEFAULT_SCENARIO: &str = "scenarios/demo.toml";

fn default_scenario() -> anyhow::Result<PathBuf> {
    let p = PathBuf::from(DEFAULT_SCENARIO);
    if !p.is_file() {
        anyhow::bail!(
            "no scenario given and no ./{DEFAULT_SCENARIO} in this folder ({}); pass scenario \
             files or folders (`lineside run path/to/scenario.toml`), or run from the folder \
             that holds scenarios/",
            std::env::current_dir().map_or_else(|_| "?".into(), |d| d.display().to_string())
        );
    }
    eprintln!("no scenario given: running ./{DEFAULT_SCENARIO}");
    Ok(p)
}

/// The checked plan, or `None` once its diagnostics are printed.
fn or_print<T>(checked: Result<T, Vec<Diagnostic>>) -> Option<T> {
    checked.map_err(|diags| print_diagnostics(&diags)).ok()
}

fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("error: {d}");
    }
}

fn load_plans(paths: &[PathBuf]) -> Result<Vec<lineside::scenario::ScenarioPlan>, Vec<Diagnostic>> {
    let files = runner::expand_scenario_paths(paths).map_err(|d| vec![d])?;
    if files.is_empty() {
        return Err(vec![Diagnostic {
            file: paths.first().cloned().unwrap_or_default(),
            line: None,
            key: String::new(),
            message: "no scenario files (*.toml) found".into(),
        }]);
    }
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        match lineside::scenario::check(f) {
            Ok(p) => plans.push(p),
            Err(d) => errors.extend(d),
        }
    }
    if errors.is_empty() {
        errors = lineside::scenario::check_together(&plans);
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = match runner::expand_scenario_paths(paths) {
        Ok(f) => f,
        Err(d) => {
            print_diagnostics(&[d]);
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut failed = 0;
    let mut plans = Vec::new();
    for f in &files {
        match lineside::scenario::validate(f) {
            Ok(plan) => plans.push(plan),
            Err(diags) => {
                failed += 1;
                print_diagnostics(&diags);
            }
        }
    }
    // What `run` of these files together would refuse: shared ids and output folders.
    let together = lineside::scenario::check_together(&plans);
    print_diagnostics(&together);
    for plan in &plans {
        if together.iter().any(|d| d.file == plan.file) {
            failed += 1;
            continue;
        }
        println!(
            "ok: {} ({}; model {} {}x{} on {}; {}; output {})",
            plan.file.display(),
            plan.id,
            plan.model.id,
            plan.preprocess.width,
            plan.preprocess.height,
            plan.provider.label(),
            plan.head.outline(&plan.labels),
            plan.output_dir.display()
        );
    }
    if failed > 0 {
        eprintln!("{failed} of {} scenario file(s) have errors", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn run(
    paths: Vec<PathBuf>,
    progress: bool,
    cores: Option<usize>,
    listen: Option<&str>,
    station: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let station = Arc::new(Station::find(station)?);
    let paths = if paths.is_empty() {
        vec![default_scenario()?]
    } else {
        paths
    };
    let plans = match load_plans(&paths) {
        Ok(p) => p,
        Err(diags) => {
            print_diagnostics(&diags);
            return Ok(ExitCode::FAILURE);
        }
    };
    let listen = match listen {
        Some(text) => Some(lineside::scenario::parse_listen(text).with_context(|| {
            format!(
                "--listen {text}: write an IP address and port (127.0.0.1:9898) or a port \
                 alone (9898, meaning 127.0.0.1)"
            )
        })?),
        None => lineside::scenario::listen_of(&plans),
    };
    // Bound before any scenario starts: an address in use is an error now, not later.
    let endpoint = listen.map(lineside::service::Endpoint::bind).transpose()?;
    if let Some(e) = &endpoint {
        eprintln!("health and metrics: http://{}/healthz, /metrics", e.addr());
    }
    // Where the logs go, resolved, before anything is written: no surprise folders.
    for p in &plans {
        eprintln!("{}: writing to {}", p.id, p.output_dir.display());
        eprintln!(
            "{}: model {} runs on {}",
            p.id,
            p.model.id,
            p.provider.label()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicU64::new(0));
    handle_signals(&stop, &abort, &reload)?;
    let cores =
        cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = RunOptions {
        progress,
        stop,
        abort: Arc::clone(&abort),
        cores,
        station,
    };
    let service = ServiceOptions {
        endpoint,
        reload: Some(reload),
    };
    let results = runner::run_service(&plans, &opts, &service);
    let mut summaries = Vec::new();
    let mut failed = false;
    for r in results {
        match r {
            Ok(s) => summaries.push(s),
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if !summaries.is_empty() {
        print!("{}", Summary::table(&summaries));
        for s in &summaries {
            println!(
                "{}: defect log {} (summary.json beside it)",
                s.scenario, s.defect_log
            );
        }
    }
    Ok(if abort.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// SIGINT and SIGTERM drain (a second one aborts, a third exits at once); SIGHUP asks
/// for a reload (scenario files checked and swapped in, defect logs reopened).
///
/// Presses are counted inside the handler (one atomic add each), because signal-hook's
/// iterator merges signals that arrive before its thread wakes: a quick second Ctrl-C must
/// still abort. Everything else, messages included, happens on an ordinary thread.
fn handle_signals(
    stop: &Arc<AtomicBool>,
    abort: &Arc<AtomicBool>,
    reload: &Arc<AtomicU64>,
) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let presses = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM] {
        let (presses, stop, abort) = (Arc::clone(&presses), Arc::clone(stop), Arc::clone(abort));
        let action = move || match presses.fetch_add(1, Ordering::SeqCst) {
            0 => stop.store(true, Ordering::SeqCst),
            1 => {
                stop.store(true, Ordering::SeqCst);
                abort.store(true, Ordering::SeqCst);
            }
            // Last resort: leave without running any destructor, as `kill -9` would; the
            // defect log survives that (whole records, torn tail cut on reopen). Never
            // `process::exit`: it runs ONNX Runtime's static destructors under workers
            // still inferring.
            // SAFETY: _exit(2) is async-signal-safe and touches no Rust state.
            _ => unsafe { libc::_exit(130) },
        };
        // SAFETY: the action only does atomic operations and _exit(2), all
        // async-signal-safe; it allocates and locks nothing.
        unsafe { signal_hook::low_level::register(signal, action) }
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the signal handlers")?;
    let reload = Arc::clone(reload);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut told = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    eprintln!("reload: checking scenario files, reopening defect logs (SIGHUP)");
                    reload.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let pressed = presses.load(Ordering::SeqCst);
                if pressed >= 1 && told < 1 {
                    eprintln!("\nstopping: finishing frames in flight and flushing logs (Ctrl-C or SIGTERM again to abort)");
                }
                if pressed >= 2 && told < 2 {
                    eprintln!("\naborting: frames in flight are not logged; syncing logs (Ctrl-C again to exit at once)");
                }
                told = pressed;
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

fn devices(paths: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let found = v4l2::list_devices(paths);
    if found.is_empty() {
        // No camera attached is an answer, not an error: scripts get `[]` and exit 0.
        eprintln!("no V4L2 capture devices (/dev/video*) on this machine");
        if json {
            println!("[]");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    let mut infos = Vec::new();
    for (path, r) in found {
        match r {
            Ok(info) => infos.push(info),
            // Metadata nodes of UVC cameras are not capture devices: say so, go on.
            Err(v4l2::V4l2Error::NotCapture { .. }) if paths.is_empty() => {
                eprintln!("{}: not a capture node (skipped)", path.display())
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
    } else {
        for i in &infos {
            print!("{}", i.render());
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn record(scenario: &Path, frames: u64, out: &Path) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
    let s = v4l2::record_scenario(scenario, frames, out, &stop)?;
    println!(
        "recorded {} frames to {} (sidecar {}); replay with [source] kind = \"raw\", path = \"{}\"",
        s.frames,
        s.raw.display(),
        s.sidecar.display(),
        s.raw.display()
    );
    if s.stats.lost + s.stats.corrupt > 0 {
        println!(
            "the camera dropped {} and sent {} corrupt frame(s) meanwhile",
            s.stats.lost, s.stats.corrupt
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct ReportArgs {
    logs: Vec<PathBuf>,
    since: Option<String>,
    until: Option<String>,
    shift: Option<String>,
    station: Option<PathBuf>,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
    csv: Option<PathBuf>,
    evals: Vec<PathBuf>,
}

fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    use lineside::report::{self, Window};
    let station = Station::find(a.station.as_deref())?;
    let tz = &station.time_zone;
    let window = Window {
        since: a
            .since
            .as_deref()
            .map(|v| report::parse_time(v, tz))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|v| report::parse_time(v, tz))
            .transpose()?,
        shift: a.shift.as_deref().map(|s| station.shift(s)).transpose()?,
    };
    let tables = report::build(&a.logs, &window, &station)?;
    let evals = report::read_evals(&a.evals)?;
    let out = a.out.unwrap_or_else(|| PathBuf::from("report.html"));
    std::fs::write(&out, report::html(&tables, &evals, &station))
        .with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(p) = &a.json {
        write_json(p, &tables)?;
    }
    if let Some(dir) = &a.csv {
        report::write_csv(&tables, dir)?;
    }
    println!(
        "{}: {} parts in {} scenario(s): {} OK, {} NG, {} ERROR, {} TIMEOUT",
        out.display(),
        tables.total.parts,
        tables.scenarios.len(),
        tables.total.ok,
        tables.total.ng,
        tables.total.error,
        tables.total.timeout
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(
    scenario: &Path,
    cores: Vec<usize>,
    frames: u64,
    json: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Some(plan) = or_print(lineside::scenario::check(scenario)) else {
        return Ok(ExitCode::FAILURE);
    };
    let cores = if cores.is_empty() {
        let mut c = vec![1, all_cores()];
        c.dedup();
        c
    } else {
        cores
    };
    if cores.contains(&0) || frames == 0 {
        anyhow::bail!("--cores takes counts of at least 1 (1,2,4) and --frames at least 1");
    }
    let opts = lineside::bench::BenchOptions { cores, frames };
    let report =
        lineside::bench::bench(&plan, &opts, |step| eprintln!("bench {}: {step}", plan.id))?;
    print!("{}", report.table());
    if let Some(p) = json {
        write_json(p, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

fn fit(
    scenario: &Path,
    progress: bool,
    json: Option<&Path>,
    threads: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let opts = lineside::fit::FitOptions {
        progress,
        threads: threads.unwrap_or_else(all_cores),
    };
    if lineside::fit::head_kind(scenario).as_deref() == Some(lineside::heads::examples::KIND.name) {
        return fit_examples(scenario, &opts, json);
    }
    let Some(plan) = or_print(lineside::fit::fit_plan(scenario)) else {
        return Ok(ExitCode::FAILURE);
    };
    let r = lineside::fit::fit(&plan, &opts)?;
    println!(
        "fitted {}: {} good images ({} fit, {} held out), {} patches -> bank {} x {}",
        r.scenario,
        r.train_images + r.holdout_images,
        r.train_images,
        r.holdout_images,
        r.patches,
        r.bank_rows,
        r.dim
    );
    if let Some(tiles) = r.frame_tiles {
        println!(
            "tiled: bank drawn from {} tiles; threshold calibrated for frames of {tiles} tiles",
            r.training_tiles
        );
    }
    println!(
        "thresholds (raw distance): image {:.4}, pixel {:.4}",
        r.image_threshold, r.pixel_threshold
    );
    println!("calibration: {}", r.calibration);
    println!(
        "time: features {:.2} s, coreset {:.2} s, calibration {:.2} s, total {:.2} s",
        r.seconds.features, r.seconds.coreset, r.seconds.calibration, r.seconds.total
    );
    println!(
        "wrote {} (sha256 {})",
        r.artifact.display(),
        r.artifact_sha256
    );
    if let Some(p) = json {
        write_json(p, &r)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `lineside fit` for a teach-by-example scenario: the per-set report.
fn fit_examples(
    scenario: &Path,
    opts: &lineside::fit::FitOptions,
    json: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use lineside::fit::examples::{examples_fit_plan, fit_examples};
    let Some(plan) = or_print(
        lineside::config::ScenarioFile::load(scenario).and_then(|f| examples_fit_plan(&f)),
    ) else {
        return Ok(ExitCode::FAILURE);
    };
    let r = fit_examples(&plan, opts)?;
    print!("{}", r.table());
    if let Some(p) = json {
        write_json(p, &r)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `lineside calibrate`: mm_per_px from a target of known size.
fn calibrate(
    scenario: &Path,
    image: &Path,
    probe: &str,
    known_mm: f32,
) -> anyhow::Result<ExitCode> {
    let (cal, file) = lineside::calibrate::calibrate(scenario, image, probe, known_mm)?;
    println!(
        "`{probe}` measured {:.3} px on {}: {known_mm} mm -> mm_per_px = {:.6}",
        cal.measured_px,
        image.display(),
        cal.mm_per_px
    );
    println!("wrote {}", file.display());
    Ok(ExitCode::SUCCESS)
}

fn eval(
    scenario: &Path,
    data: Option<&Path>,
    json: Option<&Path>,
    progress: bool,
    threads: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let Some(plan) = or_print(lineside::scenario::check(scenario)) else {
        return Ok(ExitCode::FAILURE);
    };
    let report =
        lineside::eval::evaluate(&plan, data, threads.unwrap_or_else(all_cores), progress)?;
    print!("{}", report.table());
    if let Some(p) = json {
        write_json(p, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(
    model: &Path,
    json: bool,
    providers: &[String],
    openvino_device: &str,
) -> anyhow::Result<ExitCode> {
    let mut list = ProviderList {
        order: Vec::new(),
        openvino_device: OpenvinoDevice::parse(openvino_device).with_context(|| {
            format!(
                "--openvino-device {openvino_device}: use {}",
                OpenvinoDevice::NAMES
            )
        })?,
    };
    for name in providers {
        let p = Provider::parse(name.trim()).with_context(|| {
            format!("--providers: `{name}` is not a provider lineside knows; use openvino, cuda, tensorrt or cpu")
        })?;
        if !list.order.contains(&p) {
            list.order.push(p);
        }
    }
    let info = ModelInfo::load(model)?;
    let choice = lineside::engine::choose(model, &list, 1);
    if json {
        let mut value = serde_json::to_value(&info)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(
                "provider".into(),
                match &choice {
                    Ok(c) => serde_json::to_value(c)?,
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                },
            );
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(if choice.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    println!("model    {}", info.path.display());
    println!("id       {}", info.id);
    println!("sha256   {}", info.sha256);
    if let Some(p) = &info.producer {
        println!("producer {p}");
    }
    let dims = |s: &[i64], names: &[String]| {
        s.iter()
            .zip(names.iter().chain(std::iter::repeat(&String::new())))
            .map(|(d, n)| match (*d, n.is_empty()) {
                (d, _) if d >= 0 => d.to_string(),
                (_, false) => n.clone(),
                _ => "?".into(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (title, list) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
        println!("{title}:");
        for t in list {
            println!(
                "  {:<16} {:<8} [{}]",
                t.name,
                t.dtype,
                dims(&t.shape, &t.dim_names)
            );
        }
    }
    if !info.metadata.is_empty() {
        println!("metadata:");
        for (k, v) in &info.metadata {
            let shown: String = v.chars().take(100).collect();
            let more = if v.chars().count() > 100 { " …" } else { "" };
            println!("  {k} = {shown}{more}");
        }
    }
    if let Some(names) = info.class_names() {
        println!("classes: {} (from `names` metadata)", names.len());
    }
    match &choice {
        Ok(c) => {
            println!("provider {} (first of --providers that runs it)", c.label());
            for s in &c.skipped {
                println!("  skipped {}: {}", s.provider, s.reason);
            }
        }
        Err(e) => {
            println!("provider none: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
