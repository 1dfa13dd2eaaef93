//! `[head] kind = "ocr"`: `[model]` is the PP-OCR text detector, `recognizer` the
//! recognition model; `[[rules.text]]` are the texts a good part carries.

use std::sync::Arc;

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::{OcrConfig, OcrHead};
use crate::config::{Diagnostic, ScenarioFile};
use crate::engine::{shape_str, EngineError, ModelInfo};
use crate::heads::text_rules::{DateFormat, TextCheck, TextRule};
use crate::heads::{
    describe_other, plan_boilerplate, relative_excess, Evidence, FailureText, FrameGeometry,
    FrameRef, Head, HeadError, HeadKind, HeadPlan, PlanInput,
};
use crate::preprocess::{ColorOrder, Interpolation, PreprocessSpec};
use crate::verdict::{Failure, Inspection};

pub const KIND: HeadKind = HeadKind {
    name: "ocr",
    head_keys: || serde_introspect::<HeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[],
    preprocess_defaults: |f, _, spec| ocr_preprocess_defaults(f, spec),
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadKeys {
    /// The text recognition model (PP-OCR rec, CTC), relative to this file.
    recognizer: Option<std::path::PathBuf>,
    /// Probability above which a detector map pixel is text (default 0.3).
    det_threshold: Option<f32>,
    /// Mean probability a text box needs (default 0.5).
    box_threshold: Option<f32>,
    /// How far text boxes grow, area x ratio / perimeter (default 1.6).
    unclip_ratio: Option<f32>,
    /// Lines read with a lower confidence are dropped (default 0.5).
    text_score: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    /// `[[rules.text]]`, each a text that must have been read.
    text: Option<Vec<TextRuleSection>>,
    /// The date date-code rules count from, "YYYY-MM-DD" (replays of old batches, tests);
    /// default: the UTC date when the frame is inspected.
    today: Option<String>,
}

/// PP-OCR's input convention (BGR, (x/255 - 0.5) / 0.5, OpenCV resize), used where the
/// scenario does not say otherwise.
fn ocr_preprocess_defaults(f: &ScenarioFile, spec: &mut PreprocessSpec) {
    let p = &f.preprocess;
    if p.color.is_none() {
        spec.color = ColorOrder::Bgr;
    }
    if p.mean.is_none() {
        spec.mean = [0.5; 3];
    }
    if p.std.is_none() {
        spec.std = [0.5; 3];
    }
    if p.interpolation.is_none() {
        spec.interpolation = Interpolation::Linear;
    }
}

/// A DB detector downsamples by 32: its input sides must be multiples of 32.
fn check_ocr_size(f: &ScenarioFile, spec: &PreprocessSpec, errs: &mut Vec<Diagnostic>) {
    if !spec.width.is_multiple_of(32) || !spec.height.is_multiple_of(32) {
        errs.push(f.diag(
                "preprocess.size",
                format!(
                    "is {}x{}; a PP-OCR detector needs both sides to be multiples of 32 (e.g. [{}, {}])",
                    spec.width,
                    spec.height,
                    (spec.width as f32 / 32.0).round().max(1.0) as usize * 32,
                    (spec.height as f32 / 32.0).round().max(1.0) as usize * 32
                ),
            ));
    }
}

fn plan(input: &mut PlanInput<'_>) -> Option<OcrConfig> {
    let (h, r) = (input.head::<HeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    if let Some(spec) = input.preprocess {
        check_ocr_size(input.file, spec, input.errs);
    }
    let (f, det) = (input.file, input.model);
    let errs = &mut *input.errs;
    let start = errs.len();
    // The detector: one probability map [1, 1, H, W] (DB). A YOLO export or a classifier
    // is caught here rather than on the first frame.
    let map = det
        .outputs
        .iter()
        .find(|o| o.is_float32() && o.shape.len() == 4 && o.shape[1] == 1);
    let det_output = match map {
        Some(o) if det.outputs.len() == 1 => Some(o.name.clone()),
        _ => {
            let hint =
                if det.class_names().is_some() || det.outputs.iter().any(|o| o.shape.len() == 3) {
                    " — it looks like an object detector (YOLO): use head kind \"detect\""
                } else {
                    ""
                };
            errs.push(f.diag(
                "model.path",
                format!(
                    "the ocr head needs a text detector ([model].path, PP-OCR DB) with one output, a probability map [1, 1, height, width]; this model has {}{hint}",
                    det.outputs_str()
                ),
            ));
            None
        }
    };
    let recognizer = match &h.recognizer {
        None => {
            errs.push(f.diag(
                "head.recognizer",
                "missing: the ocr head needs a text recognition model, e.g. recognizer = \"models/pp-ocrv4/ch_PP-OCRv4_rec_infer.onnx\" ([model].path is the text detector)",
            ));
            None
        }
        Some(p) => match ModelInfo::load(&f.resolve(p)) {
            Ok(m) => Some(m),
            Err(e) => {
                errs.push(f.diag("head.recognizer", e.in_scenario(&f.path)));
                None
            }
        },
    };
    let mut characters = None;
    if let Some(rec) = &recognizer {
        characters = recognizer_characters(f, rec, errs);
    }
    for (key, v) in [
        ("head.det_threshold", h.det_threshold),
        ("head.box_threshold", h.box_threshold),
        ("head.text_score", h.text_score),
    ] {
        if v.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            errs.push(f.diag(key, "must be a probability in [0, 1]"));
        }
    }
    if h.unclip_ratio.is_some_and(|r| !(r.is_finite() && r >= 0.0)) {
        errs.push(f.diag(
            "head.unclip_ratio",
            "must be a number >= 0 (PP-OCR uses 1.5 to 2.0)",
        ));
    }
    let text_rules = text_rules(f, &r.text, errs);
    let today = r.today.as_ref().and_then(|t| {
        let parsed = DateFormat::parse("%Y-%m-%d")
            .ok()
            .and_then(|d| d.find_all(t.trim()).first().copied())
            .filter(|_| t.trim().len() == 10);
        if parsed.is_none() {
            errs.push(f.diag(
                "rules.today",
                format!("`{t}` is not a date: write it as \"YYYY-MM-DD\" (or leave it out to use the date at run time)"),
            ));
        }
        parsed
    });
    let (Some(det_output), Some(recognizer), Some(characters)) =
        (det_output, recognizer, characters)
    else {
        return None;
    };
    if errs.len() != start {
        return None;
    }
    Some(OcrConfig {
        det_output,
        recognizer: Arc::new(recognizer),
        characters: characters.into(),
        det_threshold: h.det_threshold.unwrap_or(0.3),
        box_threshold: h.box_threshold.unwrap_or(0.5),
        unclip_ratio: h.unclip_ratio.unwrap_or(1.6),
        max_candidates: 1000,
        text_score: h.text_score.unwrap_or(0.5),
        rec_height: 48,
        rec_min_width: 320,
        rec_batch: 6,
        intra_threads: 1,
        text_rules: text_rules.into(),
        today,
    })
}

fn text_rules(
    f: &ScenarioFile,
    rules: &Option<Vec<TextRuleSection>>,
    errs: &mut Vec<Diagnostic>,
) -> Vec<TextRule> {
    let mut out = Vec::new();
    for (i, r) in rules.iter().flatten().enumerate() {
        let key = |k: &str| format!("rules.text[{i}].{k}");
        let given = [
            r.literal.is_some(),
            r.pattern.is_some(),
            r.date_format.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            errs.push(f.diag(
                &format!("rules.text[{i}]"),
                format!("text rule #{} needs exactly one of `literal`, `pattern` or `date_format` ({given} given)", i + 1),
            ));
            continue;
        }
        if r.date_format.is_none() && (r.min_days.is_some() || r.max_days.is_some()) {
            errs.push(f.diag(
                &key("min_days"),
                "`min_days`/`max_days` apply to `date_format` rules only",
            ));
        }
        let check = if let Some(lit) = &r.literal {
            if lit.trim().is_empty() {
                errs.push(f.diag(&key("literal"), "is empty"));
                continue;
            }
            TextCheck::Literal(lit.clone())
        } else if let Some(p) = &r.pattern {
            match regex::Regex::new(p) {
                Ok(re) => TextCheck::Pattern(re),
                Err(e) => {
                    errs.push(f.diag(
                        &key("pattern"),
                        format!("is not a valid regular expression: {e}"),
                    ));
                    continue;
                }
            }
        } else {
            let fmt = r.date_format.as_deref().unwrap_or_default();
            let format = match DateFormat::parse(fmt) {
                Ok(d) => d,
                Err(e) => {
                    errs.push(f.diag(&key("date_format"), format!("`{fmt}`: {e}")));
                    continue;
                }
            };
            let min_days = r.min_days.unwrap_or(0);
            let max_days = r.max_days.unwrap_or(min_days);
            if max_days < min_days {
                errs.push(f.diag(
                    &key("max_days"),
                    format!("is {max_days}, below min_days {min_days}"),
                ));
                continue;
            }
            TextCheck::Date {
                format,
                min_days,
                max_days,
            }
        };
        out.push(TextRule {
            name: r.name.clone().unwrap_or_else(|| format!("text[{i}]")),
            check,
            ignore_spaces: r.ignore_spaces.unwrap_or(true),
        });
    }
    if out.len() > usize::from(u16::MAX) {
        errs.push(f.diag("rules.text", "too many text rules"));
    }
    out
}

/// The CTC classes of a PP-OCR recogniser: blank, the `character` metadata lines, space.
fn recognizer_characters(
    f: &ScenarioFile,
    rec: &ModelInfo,
    errs: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let bad = |errs: &mut Vec<Diagnostic>, what: String| {
        errs.push(f.diag(
            "head.recognizer",
            format!(
                "{what}; the ocr head needs a PP-OCR recognition model: input [batch, 3, 48, width], output [batch, steps, characters + 2] and the character list in its `character` metadata (rapidocr's exports have it)"
            ),
        ));
        None
    };
    let input_ok = rec.inputs.len() == 1
        && rec.inputs[0].is_float32()
        && rec.inputs[0].shape.len() == 4
        && matches!(rec.inputs[0].shape[1], 3 | -1)
        && matches!(rec.inputs[0].shape[2], 48 | -1);
    if !input_ok {
        let i: Vec<String> = rec
            .inputs
            .iter()
            .map(|i| format!("`{}` {} {}", i.name, i.dtype, shape_str(&i.shape)))
            .collect();
        return bad(errs, format!("its inputs are {}", i.join(", ")));
    }
    let Some(out) = rec
        .outputs
        .first()
        .filter(|o| o.is_float32() && o.shape.len() == 3)
    else {
        return bad(errs, format!("its outputs are {}", rec.output_names()));
    };
    let Some(list) = rec.metadata.get("character") else {
        return bad(errs, "it has no `character` metadata".into());
    };
    let mut chars = vec!["blank".to_string()];
    chars.extend(python_splitlines(list));
    chars.push(" ".to_string());
    let classes = out.shape[2];
    if classes > 0 && classes as usize != chars.len() {
        return bad(
            errs,
            format!(
                "output `{}` scores {classes} classes but its `character` metadata lists {} characters (+ blank and space = {})",
                out.name,
                chars.len() - 2,
                chars.len()
            ),
        );
    }
    Some(chars)
}

/// Python's `str.splitlines()` (rapidocr reads the metadata with it).
fn python_splitlines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One `[[rules.text]]`: give exactly one of `literal`, `pattern`, `date_format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRuleSection {
    /// Names the rule in the defect log (default `text[i]`).
    pub name: Option<String>,
    /// Some line contains this text.
    pub literal: Option<String>,
    /// Some line matches this regular expression (Rust `regex` syntax, searched).
    pub pattern: Option<String>,
    /// Some line holds a date in this strftime format (%Y %y %m %d %j %b) ...
    pub date_format: Option<String>,
    /// ... at least this many days after today (default 0; negative: before) ...
    pub min_days: Option<i64>,
    /// ... and at most this many (default: `min_days`).
    pub max_days: Option<i64>,
    /// Compare with spaces removed (default true: PP-OCR drops most spaces).
    pub ignore_spaces: Option<bool>,
}

impl OcrConfig {
    /// What text rule `i` checks, for the defect log.
    /// How many days the date read is outside rule `i`'s window, relative to the window's
    /// nearer end (a week past a 14-day limit is 0.5).
    fn date_excess(&self, i: u16, days: i32) -> f32 {
        match self.text_rules.get(usize::from(i)).map(|r| &r.check) {
            Some(TextCheck::Date {
                min_days, max_days, ..
            }) => {
                let days = i64::from(days);
                let limit = if days < *min_days {
                    *min_days
                } else {
                    *max_days
                };
                relative_excess(days as f32, limit as f32)
            }
            _ => 0.0,
        }
    }

    /// Rule `i`'s name and what it requires.
    fn rule_text(&self, i: u16) -> (String, String) {
        let Some(r) = self.text_rules.get(usize::from(i)) else {
            return (format!("text[{i}]"), "a text rule".to_string());
        };
        let what = match &r.check {
            TextCheck::Literal(l) => format!("text containing {l:?}"),
            TextCheck::Pattern(p) => format!("text matching /{}/", p.as_str()),
            TextCheck::Date {
                format,
                min_days,
                max_days,
            } => format!(
                "a date \"{}\" {min_days}..={max_days} days from today",
                format.source
            ),
        };
        (r.name.clone(), what)
    }
}

impl HeadPlan for OcrConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(OcrHead::new(OcrConfig {
            intra_threads,
            ..self.clone()
        })?))
    }

    fn outline(&self, _labels: &[String]) -> String {
        // A text reader has no classes: name its recogniser and rules instead.
        format!(
            "text read by {} ({} characters), {} text rule(s)",
            self.recognizer.id,
            self.characters.len().saturating_sub(2),
            self.text_rules.len()
        )
    }

    fn describe(&self, failure: &Failure, _labels: &[String]) -> FailureText {
        let (rule, found) = match *failure {
            Failure::TextMissing { rule } => (rule, "not read on the part".to_string()),
            Failure::DateMissing { rule } => (rule, "no date in that format was read".to_string()),
            Failure::DateOutOfRange { rule, days } => {
                (rule, format!("the date read is {days} days from today"))
            }
            other => return describe_other(&other),
        };
        let (name, what) = self.rule_text(rule);
        FailureText {
            rule_kind: "text",
            rule_name: name,
            detail: format!("{what}: {found}"),
            excess: match *failure {
                Failure::DateOutOfRange { days, .. } => self.date_excess(rule, days),
                _ => 0.0,
            },
        }
    }

    plan_boilerplate!();
}

impl Head for OcrHead {
    fn inspection(&self) -> Inspection {
        Inspection::with_capacity(0, 0)
    }

    fn interpret(
        &mut self,
        outputs: &ort::session::SessionOutputs<'_>,
        geometry: &FrameGeometry,
        frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        OcrHead::interpret(self, outputs, geometry, (frame.bytes, frame.layout), out)
    }

    fn evidence(&self) -> Option<Evidence<'_>> {
        None
    }
}
