//! `[head] kind = "classify"`: the output to read, softmax, and the class rules.

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::{ClassifyConfig, ClassifyHead};
use crate::config::ScenarioFile;
use crate::engine::{shape_str, EngineError, ModelInfo};
use crate::heads::plan_support::{head_output, names_source};
use crate::heads::{
    describe_other, label, plan_boilerplate, relative_excess, FailureText, Head, HeadKind,
    HeadPlan, PlanInput,
};
use crate::preprocess::PreprocessSpec;
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "classify",
    head_keys: || serde_introspect::<HeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[],
    preprocess_defaults: no_defaults_pub,
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Softmax {
    /// Apply softmax unless the output already sums to 1.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadKeys {
    /// Output to read (default: the only/first output).
    output: Option<String>,
    softmax: Option<Softmax>,
    /// How many top classes go into the defect log (default 5).
    top_k: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    /// The part is OK only if the top class is one of these.
    ok_classes: Option<Vec<String>>,
    /// The part is NG if the top class is one of these.
    ng_classes: Option<Vec<String>>,
    /// NG when the top score is below this (an unsure verdict is a reject).
    min_score: Option<f32>,
}

pub(crate) fn no_defaults_pub(_: &ScenarioFile, _: &ModelInfo, _: &mut PreprocessSpec) {}

fn plan(input: &mut PlanInput<'_>) -> Option<ClassifyConfig> {
    let (h, r) = (input.head::<HeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    let model = input.model;
    let out = head_output(input, model, h.output.as_deref())?;
    let key = if h.output.is_some() {
        "head.output"
    } else {
        "head.kind"
    };
    let classes = match out.fixed_shape() {
        Some(s) if out.is_float32() && s.iter().rev().skip(1).all(|&d| d == 1) && !s.is_empty() => {
            s[s.len() - 1]
        }
        _ => {
            input.error(
                key,
                format!(
                    "a classify head needs a float32 output shaped [1, classes]; `{}` is {} {}",
                    out.name,
                    out.dtype,
                    shape_str(&out.shape)
                ),
            );
            return None;
        }
    };
    let labels = input.labels;
    if !labels.is_empty() && labels.len() != classes {
        let (key, _) = names_source(input);
        input.error(key, format!(
            "{} class names but output `{}` scores {classes} classes; the list must have one name per class, in model order",
            labels.len(),
            out.name
        ));
        return None;
    }
    // An empty list makes every part NG whatever the model says: surely not meant.
    if r.ok_classes.as_ref().is_some_and(Vec::is_empty) {
        input.error(
            "rules.ok_classes",
            "is empty, so every part would be NG: list the classes that pass, or leave the key out to pass every class",
        );
    }
    let mut mark = |key: &str, names: &Option<Vec<String>>, default: bool| {
        let Some(names) = names else {
            return vec![default; classes];
        };
        let mut set = vec![false; classes];
        for n in names {
            match class_index(n, labels, classes) {
                Some(i) => set[i] = true,
                None => input.error(
                    key,
                    format!("`{n}` is not a class of this model{}", suggest(n, labels)),
                ),
            }
        }
        set
    };
    let ok = mark("rules.ok_classes", &r.ok_classes, true);
    let ng = mark("rules.ng_classes", &r.ng_classes, false);
    if let Some(m) = r.min_score {
        if !(0.0..=1.0).contains(&m) {
            input.error("rules.min_score", "must be a probability in [0, 1]");
        }
    }
    let top_k = h.top_k.unwrap_or(5).clamp(1, classes);
    Some(ClassifyConfig {
        output: out.name.clone(),
        classes,
        softmax: h.softmax.unwrap_or_default(),
        top_k,
        ok,
        ng,
        min_score: r.min_score,
    })
}

fn class_index(name: &str, labels: &[String], classes: usize) -> Option<usize> {
    labels.iter().position(|l| l == name).or_else(|| {
        name.parse::<usize>()
            .ok()
            .filter(|&i| i < classes && labels.is_empty())
    })
}

fn suggest(name: &str, labels: &[String]) -> String {
    let lower = name.to_lowercase();
    let near: Vec<&str> = labels
        .iter()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains(&lower) || lower.contains(&l)
        })
        .take(5)
        .map(String::as_str)
        .collect();
    if near.is_empty() {
        " (names are case-sensitive; see the labels file or `lineside models inspect`)".into()
    } else {
        format!("; did you mean one of {near:?}?")
    }
}

impl HeadPlan for ClassifyConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(ClassifyHead::new(self.clone())))
    }

    fn describe(&self, failure: &Failure, labels: &[String]) -> FailureText {
        match *failure {
            Failure::ClassNotAllowed { class } => FailureText::keyed(
                "ok_classes",
                format!("top class `{}` is not in ok_classes", label(labels, class)),
                0.0,
            ),
            Failure::NgClass { class } => FailureText::keyed(
                "ng_classes",
                format!("top class `{}` is in ng_classes", label(labels, class)),
                0.0,
            ),
            Failure::LowScore { score, min } => FailureText::keyed(
                "min_score",
                format!("top score {score:.4} is below min_score {min}"),
                relative_excess(score, min),
            ),
            other => describe_other(&other),
        }
    }

    plan_boilerplate!();
}
