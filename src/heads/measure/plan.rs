//! `[head] kind = "measure"`: the luminance output, `[[rules.measure]]` and the pixel
//! size (`[rules] mm_per_px` or a calibration file), checked with located messages.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::calibration::Calibration;
use super::caliper::Polarity;
use super::rules::{Axis, EdgePick, Limits, MeasureRule, ProbeSpec, Quantity, Unit};
use super::{MeasureConfig, MeasureHead};
use crate::engine::{shape_str, EngineError};
use crate::heads::classify::no_defaults_pub;
use crate::heads::plan_support::{check_mm_per_px, head_output};
use crate::heads::{
    describe_other, plan_boilerplate, FailureText, Head, HeadKind, HeadPlan, MeasurementText,
    PlanInput,
};
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "measure",
    head_keys: || serde_introspect::<HeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[
        ("rules.score_threshold", "[[rules.measure]]"),
        (
            "rules.min_defect_area_mm2",
            "[[rules.measure]] with unit = \"mm\"",
        ),
    ],
    preprocess_defaults: no_defaults_pub,
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// Lines averaged across a probe when `band` is not given.
const DEFAULT_BAND: usize = 3;
/// Smallest edge slope (luma per pixel) when `min_contrast` is not given: a step of about
/// 0.125 in luminance (32 of 255 grey levels) after the luma model's blur.
const DEFAULT_MIN_CONTRAST: f32 = 0.05;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadKeys {
    /// The luminance output (default: the model's first).
    output: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    measure: Option<Vec<MeasureSection>>,
    /// Millimetres per frame pixel.
    mm_per_px: Option<f32>,
    /// A file written by `lineside calibrate` holding mm_per_px.
    calibration: Option<PathBuf>,
}

/// `edge = "first"` or `edge = 2`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum EdgeValue {
    Index(i32),
    Word(String),
}

/// One `[[rules.measure]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasureSection {
    name: Option<String>,
    what: Option<String>,
    probe: Option<[f32; 4]>,
    band: Option<usize>,
    polarity: Option<String>,
    min_contrast: Option<f32>,
    edge: Option<EdgeValue>,
    from: Option<String>,
    to: Option<String>,
    probes: Option<Vec<String>>,
    axis: Option<String>,
    unit: Option<String>,
    nominal: Option<f32>,
    tolerance: Option<f32>,
    min: Option<f32>,
    max: Option<f32>,
}

fn plan(input: &mut PlanInput<'_>) -> Option<MeasureConfig> {
    let (h, r) = (input.head::<HeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    let start = input.errs.len();
    let model = input.model;
    let out = head_output(input, model, h.output.as_deref())?;
    let plane_ok =
        out.is_float32() && out.shape.len() == 4 && out.shape[0] <= 1 && out.shape[1] == 1;
    if !plane_ok {
        input.error(
            if h.output.is_some() { "head.output" } else { "model.path" },
            format!(
                "the measure head needs a float32 luminance plane [1, 1, height, width] (as models/luma/luma.onnx gives); `{}` is {} {}",
                out.name,
                out.dtype,
                shape_str(&out.shape)
            ),
        );
        return None;
    }
    let spec = input.preprocess?;
    let plane = (spec.width, spec.height);
    let frame = match spec.roi {
        Some(roi) => (
            roi.x as f32,
            roi.y as f32,
            roi.width as f32,
            roi.height as f32,
        ),
        None => (0.0, 0.0, spec.width as f32, spec.height as f32),
    };
    check_mm_per_px(input, r.mm_per_px);
    let mm_per_px = pixel_size(input, r.mm_per_px, r.calibration.as_ref());
    let sections = r.measure.unwrap_or_default();
    if sections.is_empty() {
        input.error(
            "rules.measure",
            "a measure head needs at least one [[rules.measure]] (name, probe = [x0, y0, x1, y1], what, nominal and tolerance); see docs/measure.md",
        );
        return None;
    }
    let rules = plan_rules(
        input,
        &sections,
        frame,
        mm_per_px.is_some() || r.calibration.is_some(),
    );
    if input.errs.len() != start {
        return None;
    }
    Some(MeasureConfig {
        output: out.name.clone(),
        plane,
        rules,
        mm_per_px,
        calibration: r.calibration.as_ref().map(|c| input.file.resolve(c)),
    })
}

/// Millimetres per pixel from `mm_per_px` or the calibration file (one of them).
fn pixel_size(
    input: &mut PlanInput<'_>,
    inline: Option<f32>,
    file: Option<&PathBuf>,
) -> Option<f32> {
    let file = match (inline, file) {
        (Some(_), Some(_)) => {
            input.error(
                "rules.calibration",
                "give either mm_per_px or calibration, not both (the calibration file holds mm_per_px)",
            );
            return None;
        }
        (Some(m), None) => return Some(m),
        (None, None) => return None,
        (None, Some(f)) => f,
    };
    let path = input.file.resolve(file);
    if !path.exists() {
        if input.uncalibrated {
            return None;
        }
        input.error(
            "rules.calibration",
            format!(
                "{} does not exist yet; record it by measuring a target of known size: `lineside calibrate {} --image <photo of the target> --probe <a width or distance rule> --known-mm <its size>`",
                path.display(),
                input.file.path.display()
            ),
        );
        return None;
    }
    match Calibration::load(&path) {
        Ok(c) => Some(c.mm_per_px),
        Err(e) => {
            input.error(
                "rules.calibration",
                format!("{e}; re-record it with `lineside calibrate`"),
            );
            None
        }
    }
}

/// Checks every rule; `frame` is the region probes must lie in (x, y, width, height).
fn plan_rules(
    input: &mut PlanInput<'_>,
    sections: &[MeasureSection],
    frame: (f32, f32, f32, f32),
    have_mm: bool,
) -> Vec<MeasureRule> {
    // Names first, so distance and angle rules can name rules after them.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, s) in sections.iter().enumerate() {
        let key = format!("rules.measure[{i}].name");
        match &s.name {
            None => input.error(
                &key,
                "every measurement needs a name (it names the NG in the defect log)",
            ),
            Some(n) if n.trim().is_empty() => input.error(&key, "must not be empty"),
            Some(n) => {
                if index.insert(n.clone(), i).is_some() {
                    input.error(
                        &key,
                        format!("`{n}` names two measurements; names must be unique"),
                    );
                }
            }
        }
    }
    // Which rules feed a distance or angle (they may go without limits).
    let mut feeds = vec![false; sections.len()];
    for s in sections {
        for n in s
            .from
            .iter()
            .chain(s.to.iter())
            .chain(s.probes.iter().flatten())
        {
            if let Some(&k) = index.get(n) {
                feeds[k] = true;
            }
        }
    }
    let mut rules = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        if let Some(rule) = plan_rule(input, i, s, sections, &index, frame, have_mm, feeds[i]) {
            rules.push(rule);
        }
    }
    rules
}

#[allow(clippy::too_many_arguments)]
fn plan_rule(
    input: &mut PlanInput<'_>,
    i: usize,
    s: &MeasureSection,
    sections: &[MeasureSection],
    index: &HashMap<String, usize>,
    frame: (f32, f32, f32, f32),
    have_mm: bool,
    feeds: bool,
) -> Option<MeasureRule> {
    let key = |k: &str| format!("rules.measure[{i}].{k}");
    let start = input.errs.len();
    let what = s.what.as_deref().unwrap_or("width");
    let probe_keys_unused = |input: &mut PlanInput<'_>| {
        for (k, set) in [
            ("probe", s.probe.is_some()),
            ("band", s.band.is_some()),
            ("polarity", s.polarity.is_some()),
            ("min_contrast", s.min_contrast.is_some()),
            ("edge", s.edge.is_some()),
            ("axis", what == "angle" && s.axis.is_some()),
        ] {
            if set && k == "axis" {
                input.error(&key(k), "belongs to distance rules; an angle is the direction of the line through its probes");
            } else if set {
                input.error(&key(k), format!("a `{what}` rule measures between other rules' edges; `{k}` belongs on those `edge` rules"));
            }
        }
    };
    // A rule named by `from`/`to`/`probes` must be an `edge` rule.
    let edge_rule = |input: &mut PlanInput<'_>, k: &str, name: &str| -> Option<usize> {
        match index.get(name) {
            Some(&j) if sections[j].what.as_deref() == Some("edge") => Some(j),
            Some(_) => {
                input.error(&key(k), format!("`{name}` is not an `edge` rule; {what} is measured between the points of edge rules (what = \"edge\")"));
                None
            }
            None => {
                input.error(
                    &key(k),
                    format!(
                        "no measurement is named `{name}`; name an `edge` rule of this scenario"
                    ),
                );
                None
            }
        }
    };
    let quantity = match what {
        "edge" | "width" => {
            for (k, set) in [
                ("from", s.from.is_some()),
                ("to", s.to.is_some()),
                ("probes", s.probes.is_some()),
                ("axis", s.axis.is_some()),
            ] {
                if set {
                    input.error(&key(k), format!("belongs to distance and angle rules; an `{what}` rule has its own probe"));
                }
            }
            let probe = probe_spec(input, i, s, frame)?;
            if what == "edge" {
                let pick = edge_pick(input, &key("edge"), s.edge.as_ref())?;
                Quantity::Edge { probe, pick }
            } else {
                if s.edge.is_some() {
                    input.error(&key("edge"), "a width runs from the first edge to the last; `edge` belongs to edge rules");
                }
                Quantity::Width { probe }
            }
        }
        "distance" => {
            probe_keys_unused(input);
            if s.probes.is_some() {
                input.error(
                    &key("probes"),
                    "belongs to angle rules; a distance takes from and to",
                );
            }
            let (Some(from), Some(to)) = (&s.from, &s.to) else {
                input.error(
                    &key("what"),
                    "a distance needs from = \"<edge rule>\" and to = \"<edge rule>\"",
                );
                return None;
            };
            let (from, to) = (edge_rule(input, "from", from), edge_rule(input, "to", to));
            let axis = plan_axis(input, &key("axis"), s.axis.as_deref());
            Quantity::Distance {
                from: from?,
                to: to?,
                axis,
            }
        }
        "angle" => {
            probe_keys_unused(input);
            if s.from.is_some() || s.to.is_some() {
                input.error(&key("from"), "belongs to distance rules; an angle takes probes = [\"<edge rule>\", \"<edge rule>\", ...]");
            }
            let names = s.probes.clone().unwrap_or_default();
            if names.len() < 2 {
                input.error(&key("probes"), "an angle needs probes = [\"<edge rule>\", \"<edge rule>\", ...]: at least two edge rules whose points the line runs through");
                return None;
            }
            let points: Vec<Option<usize>> = names
                .iter()
                .map(|n| edge_rule(input, "probes", n))
                .collect();
            let points: Option<Vec<usize>> = points.into_iter().collect();
            let reference = s
                .nominal
                .or(match (s.min, s.max) {
                    (Some(a), Some(b)) => Some((a + b) / 2.0),
                    (a, b) => a.or(b),
                })
                .unwrap_or(0.0);
            Quantity::Angle {
                points: points?,
                reference,
            }
        }
        other => {
            input.error(&key("what"), format!("unknown measurement `{other}`; use \"edge\" (position along the probe), \"width\" (first to last edge), \"distance\" (between two edge rules) or \"angle\" (line through edge rules)"));
            return None;
        }
    };
    let unit = match (s.unit.as_deref(), &quantity) {
        (None | Some("deg"), Quantity::Angle { .. }) => Unit::Deg,
        (Some(u), Quantity::Angle { .. }) => {
            input.error(&key("unit"), format!("an angle is in degrees; unit `{u}` does not apply (use \"deg\" or leave it out)"));
            Unit::Deg
        }
        (None | Some("px"), _) => Unit::Px,
        (Some("mm"), _) => {
            if !have_mm {
                input.error(&key("unit"), "millimetres need the pixel size: set [rules] mm_per_px, or [rules] calibration = \"calibration.toml\" recorded by `lineside calibrate`");
            }
            Unit::Mm
        }
        (Some(u), _) => {
            input.error(
                &key("unit"),
                format!("unknown unit `{u}`; use \"px\" or \"mm\""),
            );
            Unit::Px
        }
    };
    let limits = plan_limits(
        input,
        &key(""),
        Limits {
            nominal: s.nominal,
            tolerance: s.tolerance,
            min: s.min,
            max: s.max,
        },
        feeds,
    );
    if input.errs.len() != start {
        return None;
    }
    Some(MeasureRule {
        name: s.name.clone().unwrap_or_default(),
        quantity,
        unit,
        limits,
    })
}

/// `axis = "x" | "y" | "euclidean"` of a distance rule.
pub(crate) fn plan_axis(input: &mut PlanInput<'_>, key: &str, axis: Option<&str>) -> Axis {
    match axis {
        None | Some("euclidean") => Axis::Euclidean,
        Some("x") => Axis::X,
        Some("y") => Axis::Y,
        Some(a) => {
            input.error(key, format!("unknown axis `{a}`; use \"x\" (to.x - from.x, signed), \"y\" or \"euclidean\" (the default)"));
            Axis::Euclidean
        }
    }
}

/// Checks a rule's limits (`prefix` is its key with a trailing dot, e.g.
/// `rules.measure[2].`): nominal and tolerance together, min not above max, and some
/// limit unless the rule only `feeds` others.
pub(crate) fn plan_limits(
    input: &mut PlanInput<'_>,
    prefix: &str,
    limits: Limits,
    feeds: bool,
) -> Limits {
    let key = |k: &str| format!("{prefix}{k}");
    match (limits.nominal, limits.tolerance) {
        (Some(_), None) => input.error(
            &key("nominal"),
            "needs a tolerance (± around the nominal), e.g. tolerance = 0.2",
        ),
        (None, Some(_)) => input.error(
            &key("tolerance"),
            "needs a nominal to be a tolerance around",
        ),
        (Some(n), Some(t)) if !(n.is_finite() && t.is_finite() && t >= 0.0) => input.error(
            &key("tolerance"),
            "nominal must be a number and tolerance a number >= 0",
        ),
        _ => {}
    }
    if let (Some(a), Some(b)) = (limits.min, limits.max) {
        if a > b {
            input.error(&key("min"), format!("min {a} is above max {b}"));
        }
    }
    if limits.is_empty() && !feeds {
        input.error(&key("nominal"), "give nominal and tolerance, or min and/or max: a measurement without limits can never fail (only a rule that a distance or angle uses may go without)");
    }
    limits
}

fn probe_spec(
    input: &mut PlanInput<'_>,
    i: usize,
    s: &MeasureSection,
    (fx, fy, fw, fh): (f32, f32, f32, f32),
) -> Option<ProbeSpec> {
    let key = |k: &str| format!("rules.measure[{i}].{k}");
    let Some(line) = s.probe else {
        input.error(&key("probe"), "needs probe = [x0, y0, x1, y1]: the caliper's line in frame pixels, from outside the part across its edges");
        return None;
    };
    let [x0, y0, x1, y1] = line;
    let inside = |x: f32, y: f32| x >= fx && x <= fx + fw && y >= fy && y <= fy + fh;
    if !line.iter().all(|v| v.is_finite()) || !inside(x0, y0) || !inside(x1, y1) {
        input.error(&key("probe"), format!("{line:?} leaves the frame; both ends must lie in x {fx}..{}, y {fy}..{} (the [preprocess] size{})", fx + fw, fy + fh, if fx > 0.0 || fy > 0.0 { " at the roi" } else { "" }));
        return None;
    }
    if (x1 - x0).hypot(y1 - y0) < 3.0 {
        input.error(
            &key("probe"),
            "is shorter than 3 px; an edge needs samples on both sides",
        );
        return None;
    }
    let band = s.band.unwrap_or(DEFAULT_BAND);
    if band == 0 || band > 256 {
        input.error(
            &key("band"),
            "must be 1..256 (lines averaged across the probe, 1 px apart)",
        );
    }
    let polarity = match s.polarity.as_deref() {
        None | Some("any") => Polarity::Any,
        Some("rising") => Polarity::Rising,
        Some("falling") => Polarity::Falling,
        Some(p) => {
            input.error(&key("polarity"), format!("unknown polarity `{p}`; use \"rising\" (dark to light along the probe), \"falling\" or \"any\""));
            Polarity::Any
        }
    };
    let min_contrast = s.min_contrast.unwrap_or(DEFAULT_MIN_CONTRAST);
    if !(min_contrast.is_finite() && min_contrast > 0.0) {
        input.error(
            &key("min_contrast"),
            "must be a positive number (luma 0..1 per pixel; default 0.05)",
        );
    }
    Some(ProbeSpec {
        line,
        band,
        polarity,
        min_contrast,
    })
}

fn edge_pick(input: &mut PlanInput<'_>, key: &str, v: Option<&EdgeValue>) -> Option<EdgePick> {
    match v {
        None => Some(EdgePick::First),
        Some(EdgeValue::Index(n)) => Some(EdgePick::Nth(*n)),
        Some(EdgeValue::Word(w)) => match w.as_str() {
            "first" => Some(EdgePick::First),
            "last" => Some(EdgePick::Last),
            "strongest" => Some(EdgePick::Strongest),
            other => {
                input.error(key, format!("unknown edge `{other}`; use \"first\", \"last\", \"strongest\" or an index (0 = first, -1 = last)"));
                None
            }
        },
    }
}

impl MeasureConfig {
    /// Why rule `i` measured nothing, for the defect log.
    fn why_missing(&self, i: usize) -> String {
        let Some(rule) = self.rules.get(i) else {
            return String::new();
        };
        let name = |k: usize| self.rules.get(k).map_or("?", |r| r.name.as_str());
        match &rule.quantity {
            Quantity::Edge { probe, pick } => format!(
                "no {} edge ({}, slope >= {}) along probe {:?}",
                pick.describe(),
                probe.polarity.name(),
                probe.min_contrast,
                probe.line
            ),
            Quantity::Width { probe } => format!(
                "fewer than two edges ({}, slope >= {}) along probe {:?}",
                probe.polarity.name(),
                probe.min_contrast,
                probe.line
            ),
            Quantity::Distance { from, to, .. } => {
                format!("`{}` or `{}` found no edge", name(*from), name(*to))
            }
            Quantity::Angle { points, .. } => {
                let names: Vec<&str> = points.iter().map(|&k| name(k)).collect();
                format!("one of {names:?} found no edge")
            }
        }
    }
}

impl HeadPlan for MeasureConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(MeasureHead::new(self.clone())))
    }

    fn preallocated_outputs(&self) -> Vec<(String, Vec<usize>)> {
        vec![(self.output.clone(), vec![1, 1, self.plane.1, self.plane.0])]
    }

    fn outline(&self, _labels: &[String]) -> String {
        format!("{} measurements", self.rules.len())
    }

    fn describe(&self, failure: &Failure, _labels: &[String]) -> FailureText {
        let Failure::Rule { rule, value } = *failure else {
            return describe_other(failure);
        };
        let Some(r) = self.rules.get(usize::from(rule)) else {
            return describe_other(failure);
        };
        FailureText {
            rule_kind: "measure",
            rule_name: r.name.clone(),
            detail: r.detail(value, &self.why_missing(usize::from(rule))),
            excess: if value.is_finite() {
                r.limits.excess(value)
            } else {
                0.0
            },
        }
    }

    fn measurement_text(&self, rule: u16) -> Option<MeasurementText> {
        let r = self.rules.get(usize::from(rule))?;
        Some(MeasurementText {
            name: r.name.clone(),
            unit: r.unit.name(),
            nominal: r.limits.nominal,
            tolerance: r.limits.tolerance,
            min: r.limits.min,
            max: r.limits.max,
        })
    }

    plan_boilerplate!();
}
