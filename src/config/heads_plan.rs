//! Plans for the detection-family heads (ocr), kept apart from `plan.rs` so each head's
//! checks read in one place.

use std::sync::Arc;

use super::diagnostic::Diagnostic;
use super::file::ScenarioFile;
use super::schema::HeadKind;
use crate::engine::{ModelInfo, TensorInfo};
use crate::heads::text_rules::{DateFormat, TextCheck, TextRule};
use crate::heads::OcrConfig;
use crate::preprocess::{ColorOrder, Interpolation, PreprocessSpec};

/// `[head]` keys that belong to one head kind only.
pub(crate) fn check_head_keys(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) {
    let h = &f.head;
    if f.head.kind != HeadKind::Ocr {
        for (key, set) in [
            ("rules.text", f.rules.text.is_some()),
            ("rules.today", f.rules.today.is_some()),
        ] {
            if set {
                errs.push(f.diag(key, "applies to head kind \"ocr\" only"));
            }
        }
        for (key, set) in [
            ("head.recognizer", h.recognizer.is_some()),
            ("head.det_threshold", h.det_threshold.is_some()),
            ("head.box_threshold", h.box_threshold.is_some()),
            ("head.unclip_ratio", h.unclip_ratio.is_some()),
            ("head.text_score", h.text_score.is_some()),
        ] {
            if set {
                errs.push(f.diag(key, "applies to head kind \"ocr\" only"));
            }
        }
    }
}

/// PP-OCR's input convention (BGR, (x/255 - 0.5) / 0.5, OpenCV resize), used where the
/// scenario does not say otherwise.
pub(crate) fn ocr_preprocess_defaults(f: &ScenarioFile, spec: &mut PreprocessSpec) {
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
pub(crate) fn check_ocr_size(f: &ScenarioFile, spec: &PreprocessSpec, errs: &mut Vec<Diagnostic>) {
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

pub(crate) fn ocr_plan(
    f: &ScenarioFile,
    det: &ModelInfo,
    errs: &mut Vec<Diagnostic>,
) -> Option<OcrConfig> {
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
                    outputs_str(det)
                ),
            ));
            None
        }
    };
    let recognizer = match &f.head.recognizer {
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
                errs.push(f.diag("head.recognizer", e.to_string()));
                None
            }
        },
    };
    let mut characters = None;
    if let Some(rec) = &recognizer {
        characters = recognizer_characters(f, rec, errs);
    }
    let h = &f.head;
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
    let text_rules = text_rules(f, errs);
    let today = f.rules.today.as_ref().and_then(|t| {
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

fn text_rules(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Vec<TextRule> {
    let mut out = Vec::new();
    for (i, r) in f.rules.text.iter().flatten().enumerate() {
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

impl super::ScenarioPlan {
    /// What each text rule checks, by index, for the defect log.
    pub fn text_rule_descriptions(&self) -> Vec<(String, String)> {
        let super::HeadPlan::Ocr(c) = &self.head else {
            return Vec::new();
        };
        c.text_rules
            .iter()
            .map(|r| {
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
            })
            .collect()
    }
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

/// "`name` dtype [shape], ..." for every output of the model, for error messages.
pub(crate) fn outputs_str(model: &ModelInfo) -> String {
    model
        .outputs
        .iter()
        .map(|o| format!("`{}` {} {}", o.name, o.dtype, shape_str(&o.shape)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the class names came from, for a list-length error: the key to point at and
/// how to say it.
pub(crate) fn names_source(f: &ScenarioFile) -> (&'static str, &'static str) {
    if f.model.labels.is_some() {
        ("model.labels", "the labels file lists")
    } else {
        ("model.path", "the model's `names` metadata lists")
    }
}

pub(crate) fn shape_str(s: &[i64]) -> String {
    let dims: Vec<String> = s
        .iter()
        .map(|d| {
            if *d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// The output `[head] output` names, else the model's first; a missing name or a model
/// without outputs is reported.
pub(crate) fn head_output<'m>(
    f: &ScenarioFile,
    model: &'m ModelInfo,
    errs: &mut Vec<Diagnostic>,
) -> Option<&'m TensorInfo> {
    match &f.head.output {
        Some(name) => {
            let out = model.output(name);
            if out.is_none() {
                errs.push(f.diag(
                    "head.output",
                    format!(
                        "the model has no output `{name}`; its outputs are {}",
                        model.output_names()
                    ),
                ));
            }
            out
        }
        None => {
            let out = model.outputs.first();
            if out.is_none() {
                errs.push(f.diag("model.path", "the model has no outputs"));
            }
            out
        }
    }
}
