//! A scenario file plus its model, checked into a runnable [`ScenarioPlan`]: everything
//! that can be checked before a frame is grabbed. `lineside validate` and `lineside run`
//! share this. The common sections come from `config`, `[source]` from its source kind,
//! `[head]`/`[rules]` from the head kind the registry names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, Diagnostic, ScenarioFile};
use crate::engine::ModelInfo;
use crate::heads::{self, HeadPlan, PlanInput};
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
    pub preprocess: PreprocessSpec,
    pub head: Box<dyn HeadPlan>,
    pub output_dir: PathBuf,
    /// The consumers of the verdicts, by registry name (`[output] sinks`).
    pub sinks: Vec<&'static str>,
}

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
    check_with(path, false)
}

/// [`check`] for `lineside validate`: also refuses what `run` would only log as ERROR
/// records (image files beyond the frame limits).
pub fn validate(path: &Path) -> Result<ScenarioPlan, Vec<Diagnostic>> {
    check_with(path, true)
}

fn check_with(path: &Path, strict: bool) -> Result<ScenarioPlan, Vec<Diagnostic>> {
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
    let sinks = sinks(&f, &mut errs);

    let model_path = f.resolve(&f.model.path);
    let model = match ModelInfo::load(&model_path) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            errs.push(f.diag("model.path", e.in_scenario(&f.path)));
            None
        }
    };
    let labels = config::labels(&f, model.as_deref(), &mut errs);
    let (Some(model), Some(labels), Some(kind)) = (model, labels, kind) else {
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
    let head = head_plan(&f, kind, &model, &labels, preprocess.as_ref(), &mut errs);
    let (Some(source), Some(preprocess), Some(head)) = (source, preprocess, head) else {
        return Err(errs);
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let id = f.scenario.id.clone();
    let output_dir = match &f.output.dir {
        Some(d) => f.resolve(d),
        None => PathBuf::from("out").join(&id),
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
    Ok(ScenarioPlan {
        name: f.scenario.name.clone().unwrap_or_else(|| id.clone()),
        id,
        file: f.path.clone(),
        source,
        model,
        labels: labels.into(),
        workers,
        intra_threads,
        preprocess,
        head,
        output_dir,
        sinks,
    })
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

/// `[output] sinks`, each a registered sink (default: the defect log and the summary).
fn sinks(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Vec<&'static str> {
    let Some(names) = &f.output.sinks else {
        return sink::DEFAULT.to_vec();
    };
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
