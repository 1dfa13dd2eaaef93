//! A scenario file plus its model, checked into a runnable [`ScenarioPlan`]: everything
//! that can be checked before a frame is grabbed. `lineside validate` and `lineside run`
//! share this. The common sections come from `config`, `[source]` from its source kind,
//! `[head]`/`[rules]` from the head kind the registry names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, Diagnostic, ScenarioFile};
use crate::engine::{ModelInfo, ProviderChoice};
use crate::heads::{self, HeadPlan, PlanInput};
use crate::plc::{self, PlcMap, TriggerMode, TriggerPlan};
use crate::preprocess::PreprocessSpec;
use crate::sink;
use crate::source::{self, source_plan, SourcePlan};

#[derive(Debug, Clone)]
pub struct ScenarioPlan {
    pub id: String,
    pub name: String,
    pub file: PathBuf,
    pub source: SourcePlan,
    pub model: Arc<ModelInfo>,
    pub labels: Arc<[String]>,
    pub workers: Option<usize>,
    pub intra_threads: usize,
    /// The execution provider every worker's session runs on, chosen from
    /// `[model] providers` when the plan was made (with those passed over, and why).
    pub provider: ProviderChoice,
    pub preprocess: PreprocessSpec,
    pub head: Box<dyn HeadPlan>,
    /// Absolute (not canonical: links are kept as written).
    pub output_dir: PathBuf,
    /// Mode of the files created in `output_dir` (`[output] file_mode`).
    pub file_mode: u32,
    /// Lines of `[scenario] id` and `[output] dir`, for [`check_together`]'s messages.
    pub id_line: Option<usize>,
    pub output_dir_line: Option<usize>,
    /// The consumers of the verdicts, by registry name (`[output] sinks`).
    pub sinks: Vec<&'static str>,
    /// What makes a part and its deadline (`[trigger]`).
    pub trigger: TriggerPlan,
    /// The PLC link (`[plc]`), when the scenario has one.
    pub plc: Option<PlcMap>,
    /// Seconds between rewrites of `summary.json` during the run (0: only at the end).
    pub summary_every_s: u64,
    /// `[service] listen`: the health/metrics endpoint, and the line it was given on.
    pub listen: Option<SocketAddr>,
    pub listen_line: Option<usize>,
    /// `[mqtt]`: the broker the `mqtt` sink sends to.
    pub mqtt: Option<sink::mqtt::MqttSettings>,
    /// `[evidence]`: evidence images of NG/ERROR parts (and sampled OK ones).
    pub evidence: Option<crate::evidence::EvidencePlan>,
}

/// `[output] summary_every_s` when the file does not set it.
pub const SUMMARY_EVERY_S: u64 = 10;

impl ScenarioPlan {
    /// The model named in defect logs: the fitted artifact for PatchCore scenarios (its
    /// file stem and sha256), else the ONNX file.
    pub fn logged_model(&self) -> (String, String) {
        self.head
            .logged_model()
            .unwrap_or_else(|| (self.model.id.clone(), self.model.sha256.clone()))
    }

    /// The head's configuration as its concrete type (tests and tools adjust it).
    pub fn head_config<T: 'static>(&self) -> Option<&T> {
        self.head.as_any().downcast_ref()
    }

    pub fn head_config_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.head.as_any_mut().downcast_mut()
    }
}

/// Loads and checks one scenario file, reporting every problem found.
pub fn check(path: &Path) -> Result<ScenarioPlan, Vec<Diagnostic>> {
    check_with(path, false, false)
}

/// [`check`] for `lineside calibrate`: a calibration file the scenario names need not
/// exist yet (measurement heads then measure in pixels only).
pub fn check_uncalibrated(path: &Path) -> Result<ScenarioPlan, Vec<Diagnostic>> {
    check_with(path, false, true)
}

/// [`check`] for `lineside validate`: also refuses what `run` would only log as ERROR
/// records (image files beyond the frame limits).
pub fn validate(path: &Path) -> Result<ScenarioPlan, Vec<Diagnostic>> {
    check_with(path, true, false)
}

fn check_with(
    path: &Path,
    strict: bool,
    uncalibrated: bool,
) -> Result<ScenarioPlan, Vec<Diagnostic>> {
    let f = ScenarioFile::load_checking::<crate::source::SourceSection>(path, "source")?;
    let mut errs = Vec::new();
    config::check_id(&f, &mut errs);
    let source = source_plan(&f, &mut errs);
    // `validate` opens what `run` opens: folder listings, sidecars, image headers.
    let probe = source
        .as_ref()
        .and_then(|p| probe_source(&f, p, strict, &mut errs));
    let (workers, intra_threads) = config::threads(&f, &mut errs);
    let kind = head_kind(&f, &mut errs);
    let mqtt = sink::mqtt::settings(&f, &mut errs);
    let sinks = sinks(&f, mqtt.is_some(), &mut errs);
    let output_dir = output_dir(&f, &mut errs);
    let evidence = crate::evidence::evidence_plan(&f, output_dir.as_deref(), &mut errs);
    let file_mode = file_mode(&f, &mut errs);
    let trigger = plc::trigger_plan(&f, &mut errs);
    let plc = plc::plc_map(&f, &mut errs);
    check_line_side(
        &f,
        &trigger,
        plc.as_ref(),
        &sinks,
        source.as_ref(),
        &mut errs,
    );
    let listen = listen(&f, &mut errs);

    let model_path = f.resolve(&f.model.path);
    let model = match ModelInfo::load(&model_path) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            errs.push(f.diag("model.path", e.in_scenario(&f.path)));
            None
        }
    };
    let providers = config::providers(&f, &mut errs);
    // Only a list that passed its checks is tried: a typo must not load plugins.
    let provider = match &model {
        Some(_) if errs.iter().any(|d| d.key.starts_with("model.")) => None,
        Some(_) => match crate::engine::choose(&model_path, &providers, intra_threads) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(f.diag("model.providers", e.to_string()));
                None
            }
        },
        None => None,
    };
    let labels = config::labels(&f, model.as_deref(), &mut errs);
    let (Some(model), Some(labels), Some(kind), Some(provider)) = (model, labels, kind, provider)
    else {
        return Err(errs);
    };
    let mut preprocess = config::preprocess_spec(&f, &model, &mut errs);
    if let Some(p) = preprocess.as_mut() {
        (kind.preprocess_defaults)(&f, &model, p);
    }
    if let Some(roi) = preprocess.as_ref().and_then(|p| p.roi) {
        // Run checks the roi on every frame; check it on the first one now.
        if roi.width == 0 || roi.height == 0 {
            errs.push(f.diag(
                "preprocess.roi",
                "has zero width or height; give [x, y, width, height] with both at least 1",
            ));
        } else if let Some((w, h)) = probe.as_ref().and_then(|p| p.frame_size) {
            if let Err(e) = crate::preprocess::check_roi(roi, w, h) {
                errs.push(f.diag("preprocess.roi", e.to_string()));
            }
        }
    }
    let head = head_plan(
        &f,
        kind,
        &model,
        &labels,
        preprocess.as_ref(),
        uncalibrated,
        &mut errs,
    );
    // A head that names its classes itself (a fitted classifier, a golden head's regions).
    let labels = head
        .as_ref()
        .and_then(|h| h.class_names())
        .unwrap_or(labels);
    let (Some(mut source), Some(preprocess), Some(head)) = (source, preprocess, head) else {
        return Err(errs);
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let (Some(output_dir), Some(file_mode)) = (output_dir, file_mode) else {
        return Err(errs);
    };
    if strict {
        if let Some(file) = sink::file_in_the_way(&output_dir) {
            return Err(vec![f.diag(
                "output.dir",
                if file == output_dir {
                    format!(
                        "{} is a file, not a folder; point dir at a folder (or move that file away)",
                        file.display()
                    )
                } else {
                    format!(
                        "{} is a file, not a folder, so {} cannot be created; point dir at a folder (or move that file away)",
                        file.display(),
                        output_dir.display()
                    )
                },
            )]);
        }
    }
    source.default_ledger_in(&output_dir);
    let id = f.scenario.id.clone();
    Ok(ScenarioPlan {
        name: f.scenario.name.clone().unwrap_or_else(|| id.clone()),
        id,
        file: f.path.clone(),
        source,
        model,
        labels: labels.into(),
        workers,
        intra_threads,
        provider,
        preprocess,
        head,
        output_dir,
        file_mode,
        id_line: f.diag("scenario.id", "").line,
        output_dir_line: f.diag("output.dir", "").line,
        sinks,
        trigger,
        plc,
        summary_every_s: f.output.summary_every_s.unwrap_or(SUMMARY_EVERY_S),
        listen,
        listen_line: f.diag("service.listen", "").line,
        mqtt,
        evidence,
    })
}

/// `[trigger]`, `[plc]` and the `plc` sink must fit together.
fn check_line_side(
    f: &ScenarioFile,
    trigger: &TriggerPlan,
    plc: Option<&PlcMap>,
    sinks: &[&str],
    source: Option<&SourcePlan>,
    errs: &mut Vec<Diagnostic>,
) {
    let plc_sink = sinks.contains(&"plc");
    match (trigger.mode, plc) {
        (TriggerMode::Plc, None) => errs.push(f.diag(
            "trigger.mode",
            "is \"plc\" but the file has no [plc] section; add [plc] with host, trigger_register and result_register",
        )),
        (TriggerMode::Plc, Some(m)) if m.trigger_register.is_none() => errs.push(f.diag(
            "plc",
            "[trigger] mode is \"plc\" but [plc] has no trigger_register; give the register the PLC increments once per part",
        )),
        _ => {}
    }
    if plc_sink && plc.is_none() {
        errs.push(f.diag(
            "output.sinks",
            "lists \"plc\" but the file has no [plc] section; add [plc] with host and result_register",
        ));
    }
    if plc.is_some() && !plc_sink && trigger.mode != TriggerMode::Plc {
        errs.push(f.diag(
            "plc",
            "is set but nothing uses it: add \"plc\" to [output] sinks (results to the PLC) or set [trigger] mode = \"plc\"",
        ));
    }
    if trigger.mode == TriggerMode::Plc && !plc_sink && plc.is_some() {
        tracing::warn!(
            "{}: triggered by the PLC but no \"plc\" sink: the PLC will get no results",
            f.path.display()
        );
    }
    if trigger.mode == TriggerMode::Camera && source.is_some_and(|s| !s.live) {
        errs.push(f.diag(
            "trigger.mode",
            "is \"camera\" (a hardware trigger line) but the source is not live; use a v4l2 camera source, or mode = \"free\"",
        ));
    }
}

/// How far a relative `[output] dir` may climb above the scenario file's folder:
/// `../out/x` from `scenarios/`, `../../out/x` from `scenarios/fitted/`. Further up is
/// more likely a slip than a plan; an absolute path says it on purpose.
pub const MAX_OUTPUT_CLIMB: usize = 2;

/// `[output] dir` as an absolute folder. Like every path in the file, a relative one is
/// relative to the scenario file, and so is the default, `out/<id>` beside it.
fn output_dir(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    let dir = match &f.output.dir {
        None => f.resolve(&Path::new("out").join(&f.scenario.id)),
        Some(d) if d.is_absolute() => f.resolve(d),
        Some(d) => {
            // The highest point the path reaches, counted as the kernel walks it.
            let (mut depth, mut lowest) = (0i64, 0i64);
            for c in d.components() {
                match c {
                    std::path::Component::ParentDir => depth -= 1,
                    std::path::Component::Normal(_) => depth += 1,
                    _ => {}
                }
                lowest = lowest.min(depth);
            }
            if lowest < -(MAX_OUTPUT_CLIMB as i64) {
                errs.push(f.diag(
                    "output.dir",
                    format!(
                        "`{}` climbs {} folders above the scenario file's folder (at most {MAX_OUTPUT_CLIMB} are allowed, so a slip cannot write anywhere on the machine); give an absolute path to write there on purpose",
                        d.display(),
                        -lowest
                    ),
                ));
                return None;
            }
            f.resolve(d)
        }
    };
    match std::path::absolute(&dir) {
        Ok(d) => Some(d),
        Err(e) => {
            errs.push(f.diag(
                "output.dir",
                format!("cannot make {} absolute: {e}", dir.display()),
            ));
            None
        }
    }
}

/// `[output] file_mode`: octal, e.g. "0640" (the default), owner read and write at least.
fn file_mode(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<u32> {
    let Some(text) = &f.output.file_mode else {
        return Some(sink::DEFAULT_FILE_MODE);
    };
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => Some(m),
        Ok(m) if m <= 0o777 => {
            errs.push(f.diag(
                "output.file_mode",
                format!("\"{text}\" does not let lineside read and write its own log (it reopens it to repair a torn record); use at least \"0600\", e.g. \"0640\""),
            ));
            None
        }
        _ => {
            errs.push(f.diag(
                "output.file_mode",
                format!("\"{text}\" is not a file mode; give permission bits in octal, e.g. \"0640\" (owner read/write, group read) or \"0600\""),
            ));
            None
        }
    }
}

/// What several scenarios of one process (`run`, or `validate` of several files) may not
/// share: an id (it names records and output folders) or an output folder (their records
/// would interleave and one summary.json would replace the other).
pub fn check_together(plans: &[ScenarioPlan]) -> Vec<Diagnostic> {
    let mut errs = Vec::new();
    // Canonical where the folder exists, so two spellings of one folder are one folder.
    let folders: Vec<PathBuf> = plans
        .iter()
        .map(|p| {
            p.output_dir
                .canonicalize()
                .unwrap_or_else(|_| p.output_dir.clone())
        })
        .collect();
    for (i, p) in plans.iter().enumerate() {
        if let Some(first) = plans[..i].iter().find(|q| q.id == p.id) {
            errs.push(Diagnostic {
                file: p.file.clone(),
                line: p.id_line,
                key: "scenario.id".into(),
                message: format!(
                    "`{}` is also the id of {}; give each scenario its own id (it names the records and the output folder)",
                    p.id,
                    first.file.display()
                ),
            });
        }
        if let Some(j) = folders[..i].iter().position(|d| *d == folders[i]) {
            errs.push(Diagnostic {
                file: p.file.clone(),
                line: p.output_dir_line,
                key: "output.dir".into(),
                message: format!(
                    "{} is also the output folder of {} (`{}`); give each scenario its own [output] dir (two runs in one folder would interleave their records)",
                    p.output_dir.display(),
                    plans[j].file.display(),
                    plans[j].id
                ),
            });
        }
        // One process has one endpoint: files that set `[service] listen` must agree.
        let clash = p.listen.and_then(|addr| {
            plans[..i]
                .iter()
                .find(|q| q.listen.is_some_and(|a| a != addr))
                .map(|first| (addr, first))
        });
        if let Some((addr, first)) = clash {
            errs.push(Diagnostic {
                file: p.file.clone(),
                line: p.listen_line,
                key: "service.listen".into(),
                message: format!(
                    "{addr} differs from {} given in {}; scenarios run together share one \
                     health/metrics endpoint: give the same [service] listen in each file (or \
                     leave it out of all but one, or pass --listen)",
                    first.listen.map_or_else(String::new, |a| a.to_string()),
                    first.file.display()
                ),
            });
        }
    }
    errs
}

/// The endpoint address the plans ask for (they agree: see [`check_together`]).
pub fn listen_of(plans: &[ScenarioPlan]) -> Option<SocketAddr> {
    plans.iter().find_map(|p| p.listen)
}

/// Opens the source as `run` would (not cameras) and reports what would fail there.
fn probe_source(
    f: &ScenarioFile,
    plan: &SourcePlan,
    strict: bool,
    errs: &mut Vec<Diagnostic>,
) -> Option<source::Probe> {
    match source::probe(plan) {
        Ok(p) => {
            // Run inspects the other files and logs these as ERROR: validate says so now.
            for e in p.refused.iter().filter(|_| strict) {
                errs.push(f.diag("source.path", e.to_string()));
            }
            Some(p)
        }
        // `run` reports this when it opens the source; a plan for tools (eval, tests) that
        // feed frames themselves does not need it.
        Err(e) => {
            if strict {
                errs.push(f.diag("source.path", e.to_string()));
            }
            None
        }
    }
}

/// The registered head kind `[head] kind` names.
fn head_kind(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<&'static heads::HeadKind> {
    let found = heads::kind(&f.head_kind);
    if found.is_none() {
        let names: Vec<String> = heads::KINDS
            .iter()
            .map(|k| format!("`{}`", k.name))
            .collect();
        errs.push(f.diag(
            "head.kind",
            format!(
                "unknown variant `{}`, valid values are {}",
                f.head_kind,
                names.join(", ")
            ),
        ));
    }
    found
}

/// `[service] listen`: an IP address and port, or a port alone for 127.0.0.1 (the endpoint
/// is for the box itself unless an address says otherwise).
fn listen(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<SocketAddr> {
    let section: crate::config::schema::ServiceSection = match f.section("service", &[]) {
        Ok(s) => s,
        Err(d) => {
            errs.push(d);
            return None;
        }
    };
    let text = section.listen?;
    match parse_listen(&text) {
        Some(addr) => Some(addr),
        None => {
            errs.push(f.diag(
                "service.listen",
                format!(
                    "`{text}` is not an address to listen on; write an IP address and port \
                     (\"127.0.0.1:9898\", \"0.0.0.0:9898\") or a port alone (\"9898\", \
                     meaning 127.0.0.1)"
                ),
            ));
            None
        }
    }
}

/// `"127.0.0.1:9898"`, `"[::1]:9898"` or `"9898"` (127.0.0.1).
pub fn parse_listen(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().ok()
}

/// `[output] sinks`, each a registered sink (default: the defect log and the summary, and
/// `mqtt` when there is an `[mqtt]` section). Listing sinks means listing `mqtt` too.
fn sinks(f: &ScenarioFile, has_mqtt: bool, errs: &mut Vec<Diagnostic>) -> Vec<&'static str> {
    let Some(names) = &f.output.sinks else {
        let mut out = sink::DEFAULT.to_vec();
        if has_mqtt || f.diag("mqtt", "").line.is_some() {
            out.push(sink::mqtt::KIND.name);
        }
        return out;
    };
    let named = names.iter().any(|n| n == sink::mqtt::KIND.name);
    if named && !has_mqtt && f.diag("mqtt", "").line.is_none() {
        errs.push(f.diag(
            "output.sinks",
            "`mqtt` needs an [mqtt] section with at least `host` (the broker)",
        ));
    }
    if !named && has_mqtt {
        errs.push(f.diag(
            "mqtt",
            "is given but [output] sinks does not list `mqtt`; add it there (or remove [mqtt])",
        ));
    }
    let mut out = Vec::new();
    for name in names {
        match sink::kind(name) {
            Some(k) if out.contains(&k.name) => {
                errs.push(f.diag("output.sinks", format!("`{name}` is listed twice")))
            }
            Some(k) => out.push(k.name),
            None => {
                let valid: Vec<String> = sink::KINDS
                    .iter()
                    .map(|k| format!("`{}`", k.name))
                    .collect();
                errs.push(f.diag(
                    "output.sinks",
                    format!(
                        "unknown sink `{name}`; valid sinks are {}",
                        valid.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

fn head_plan(
    f: &ScenarioFile,
    kind: &heads::HeadKind,
    model: &ModelInfo,
    labels: &[String],
    preprocess: Option<&PreprocessSpec>,
    uncalibrated: bool,
    errs: &mut Vec<Diagnostic>,
) -> Option<Box<dyn HeadPlan>> {
    let start = errs.len();
    let task_fits = task_fits_head(f, model, errs);
    let after_task = errs.len();
    let (head_owners, rules_owners) = heads::key_owners();
    let foreign_head = config::foreign_keys(f, "head", kind.name, &head_owners, kind.instead, errs);
    let foreign_rules =
        config::foreign_keys(f, "rules", kind.name, &rules_owners, kind.instead, errs);
    let mut input = PlanInput {
        file: f,
        model,
        labels,
        preprocess,
        errs,
        foreign_head,
        foreign_rules,
        uncalibrated,
    };
    let plan = (kind.plan)(&mut input);
    if !task_fits {
        // What the outputs do not fit is explained by the task already; the rest stays.
        let mut i = after_task;
        while i < errs.len() {
            if matches!(
                errs[i].key.as_str(),
                "model.path" | "model.labels" | "head.kind" | "head.output"
            ) {
                errs.remove(i);
            } else {
                i += 1;
            }
        }
    }
    if errs.len() == start {
        plan
    } else {
        None
    }
}

/// Ultralytics writes the task into its exports (`task` metadata): a mismatch with the head
/// kind is named before the output shapes are, and the tasks lineside does not run yet are
/// refused with what they are.
fn task_fits_head(f: &ScenarioFile, model: &ModelInfo, errs: &mut Vec<Diagnostic>) -> bool {
    let Some(task) = model.metadata.get("task").map(String::as_str) else {
        return true;
    };
    // Ultralytics' task names are lineside's head kind names.
    let fits = ["detect", "segment", "classify"]
        .contains(&task)
        .then_some(task);
    match fits {
        Some(kind) if kind == f.head_kind => true,
        Some(_) => {
            errs.push(f.diag(
                "head.kind",
                format!(
                    "the model's metadata says it is a `{task}` export (task = \"{task}\"); use head kind \"{task}\""
                ),
            ));
            false
        }
        None if matches!(task, "pose" | "obb") => {
            errs.push(f.diag(
                "model.path",
                format!(
                    "this is an Ultralytics `{task}` export ({}); lineside runs detect, segment and classify exports — export the detect model of the same family instead",
                    if task == "pose" { "boxes with keypoints" } else { "rotated boxes" }
                ),
            ));
            false
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_an_address_or_a_port_on_loopback() {
        assert_eq!(
            parse_listen("9898"),
            Some("127.0.0.1:9898".parse().unwrap())
        );
        assert_eq!(
            parse_listen("0.0.0.0:9000"),
            Some("0.0.0.0:9000".parse().unwrap())
        );
        assert_eq!(parse_listen("[::1]:80"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(parse_listen("localhost:9898"), None);
        assert_eq!(parse_listen("99999"), None);
    }
}
