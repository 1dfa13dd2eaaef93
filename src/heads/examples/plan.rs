//! `[head] kind = "examples"`: the fitted model to load, and the class rules.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::{ExamplesArtifact, ExamplesConfig, ExamplesHead};
use crate::config::{Diagnostic, ScenarioFile};
use crate::engine::{EngineError, ModelInfo};
use crate::heads::patchcore::backbone_defaults;
use crate::heads::{
    describe_other, label, plan_boilerplate, relative_excess, FailureText, Head, HeadKind,
    HeadPlan, PlanInput,
};
use crate::preprocess::PreprocessSpec;
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "examples",
    head_keys: || serde_introspect::<ExamplesHeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[],
    preprocess_defaults: backbone_defaults,
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// `[head]` of a teach-by-example scenario (`lineside fit` reads `artifact` too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExamplesHeadKeys {
    /// The fitted model file `lineside fit` writes (relative to this file).
    pub artifact: Option<PathBuf>,
    /// How many classes go into the defect log, best first (default 3).
    pub top_k: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    /// The part is OK only if its class is one of these (default: every taught class).
    ok_classes: Option<Vec<String>>,
    /// NG when the winning class's share of the neighbours' vote is below this.
    min_score: Option<f32>,
}

fn plan(input: &mut PlanInput<'_>) -> Option<ExamplesConfig> {
    let (h, r) = (input.head::<ExamplesHeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    let spec = input.preprocess?;
    let artifact = load_checked(
        input.file,
        input.model,
        spec,
        h.artifact.as_ref(),
        input.errs,
    )?;
    let names = artifact.class_names();
    let ok = match &r.ok_classes {
        None => vec![true; names.len()],
        Some(list) if list.is_empty() => {
            input.error(
                "rules.ok_classes",
                "is empty, so every part would be NG: list the classes that pass, or leave the key out to pass every taught class",
            );
            return None;
        }
        Some(list) => {
            let mut ok = vec![false; names.len()];
            for n in list {
                match names.iter().position(|c| c == n) {
                    Some(i) => ok[i] = true,
                    None => input.error(
                        "rules.ok_classes",
                        format!(
                            "`{n}` is not a taught class; the model knows {names:?} (the folder names under [fit] classes)"
                        ),
                    ),
                }
            }
            ok
        }
    };
    if let Some(m) = r.min_score {
        if !(0.0..=1.0).contains(&m) {
            input.error(
                "rules.min_score",
                "must be a vote share in [0, 1], e.g. 0.6",
            );
        }
    }
    let top_k = h.top_k.unwrap_or(3).clamp(1, names.len());
    Some(ExamplesConfig {
        artifact,
        ok,
        min_score: r.min_score,
        top_k,
    })
}

/// Loads `[head] artifact` and checks it was fitted with this backbone and preprocessing.
/// `lineside fit` does not call this (it writes the file); `validate` and `run` do.
pub fn load_checked(
    f: &ScenarioFile,
    model: &ModelInfo,
    spec: &PreprocessSpec,
    rel: Option<&PathBuf>,
    errs: &mut Vec<Diagnostic>,
) -> Option<Arc<ExamplesArtifact>> {
    let start = errs.len();
    let Some(rel) = rel else {
        errs.push(f.diag(
            "head.artifact",
            "missing: an examples head needs `artifact = \"<file>.lsex\"`, the model `lineside fit` writes",
        ));
        return None;
    };
    let path = f.resolve(rel);
    if !path.is_file() {
        errs.push(f.diag(
            "head.artifact",
            format!(
                "{} does not exist yet; create it with `lineside fit {}`",
                path.display(),
                f.path.display()
            ),
        ));
        return None;
    }
    let artifact = match ExamplesArtifact::load(&path) {
        Ok(a) => a,
        Err(e) => {
            errs.push(f.diag("head.artifact", e.to_string()));
            return None;
        }
    };
    let ah = &artifact.header;
    if ah.backbone.sha256 != model.sha256 {
        errs.push(f.diag(
            "model.path",
            format!(
                "{} was fitted with backbone {} (sha256 {}…), not this file (sha256 {}…); \
                 point [model] path at that backbone or re-fit with `lineside fit {}`",
                path.display(),
                ah.backbone.file,
                ah.backbone.sha256.get(..12).unwrap_or(&ah.backbone.sha256),
                model.sha256.get(..12).unwrap_or(&model.sha256),
                f.path.display()
            ),
        ));
    }
    for b in &ah.embedding.blocks {
        let channels = model
            .output(&b.output)
            .filter(|o| o.is_float32() && o.shape.len() == 4)
            .and_then(|o| o.shape.get(1).copied());
        if channels != Some(b.channels as i64) {
            errs.push(f.diag(
                "model.path",
                format!(
                    "the examples were embedded from output `{}` with {} channels; this model's outputs are {}",
                    b.output,
                    b.channels,
                    model.output_names()
                ),
            ));
        }
    }
    let p = &ah.preprocess;
    let mut mismatch = |what: &str, fitted: String, here: String| {
        errs.push(f.diag(
            "preprocess",
            format!(
                "the examples were fitted with {what} {fitted} but this scenario gives {here}; \
                 preprocessing must match the fit (change [preprocess] or re-fit)"
            ),
        ))
    };
    if (p.width, p.height) != (spec.width, spec.height) {
        mismatch(
            "size",
            format!("{}x{}", p.width, p.height),
            format!("{}x{}", spec.width, spec.height),
        );
    }
    if p.mean != spec.mean || p.std != spec.std || p.scale != spec.scale || p.color != spec.color {
        mismatch(
            "normalisation",
            format!(
                "{:?} scale {} mean {:?} std {:?}",
                p.color, p.scale, p.mean, p.std
            ),
            format!(
                "{:?} scale {} mean {:?} std {:?}",
                spec.color, spec.scale, spec.mean, spec.std
            ),
        );
    }
    if p.fit != spec.fit || p.interpolation != spec.interpolation {
        mismatch(
            "fit/interpolation",
            format!("{:?}/{:?}", p.fit, p.interpolation),
            format!("{:?}/{:?}", spec.fit, spec.interpolation),
        );
    }
    (errs.len() == start).then(|| Arc::new(artifact))
}

impl HeadPlan for ExamplesConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(ExamplesHead::new(self.clone())))
    }

    fn preallocated_outputs(&self) -> Vec<(String, Vec<usize>)> {
        // The feature maps follow the input size, which the fit fixed.
        let h = &self.artifact.header;
        let (w, hh) = (h.preprocess.width, h.preprocess.height);
        let mut outs: Vec<(String, Vec<usize>)> = Vec::new();
        for b in &h.embedding.blocks {
            if outs.iter().any(|(n, _)| *n == b.output) {
                continue;
            }
            let stride = if b.output.ends_with("s8") { 8 } else { 16 };
            outs.push((
                b.output.clone(),
                vec![1, b.channels, hh / stride, w / stride],
            ));
        }
        outs
    }

    fn logged_model(&self) -> Option<(String, String)> {
        Some((self.artifact.id(), self.artifact.sha256.clone()))
    }

    fn class_names(&self) -> Option<Vec<String>> {
        Some(self.artifact.class_names())
    }

    fn outline(&self, labels: &[String]) -> String {
        let h = &self.artifact.header;
        format!(
            "{} classes taught by example ({} examples, k = {}, unknown beyond distance {:.4})",
            labels.len(),
            h.data.rows,
            h.k,
            h.rejection.threshold
        )
    }

    fn describe(&self, failure: &Failure, labels: &[String]) -> FailureText {
        match *failure {
            // The examples head raises one rule of its own: unknown, with the nearest
            // class in `rule` and the distance in `value`.
            Failure::Rule { rule, value } => {
                let t = self.threshold();
                FailureText::keyed(
                    "unknown",
                    format!(
                        "unknown: nearest class `{}` at distance {value:.4} > threshold {t:.4}",
                        label(labels, usize::from(rule))
                    ),
                    relative_excess(value, t),
                )
            }
            Failure::ClassNotAllowed { class } => FailureText::keyed(
                "ok_classes",
                format!("class `{}` is not in ok_classes", label(labels, class)),
                0.0,
            ),
            Failure::LowScore { score, min } => FailureText::keyed(
                "min_score",
                format!("vote share {score:.4} is below min_score {min}"),
                relative_excess(score, min),
            ),
            other => describe_other(&other),
        }
    }

    plan_boilerplate!();
}
