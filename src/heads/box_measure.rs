//! `[[rules.measure]]` for the detect and segment heads: the width, height and area of a
//! box or region, and the distance and angle between the centres of two of them, in
//! pixels or millimetres, against nominal and tolerance.
//!
//! The limits, units and axes are the caliper rules' (`heads::measure::rules`), so a
//! measurement reads the same in the defect log whichever head made it. Each rule picks
//! its box from the frame's defects by class, zone and score; a rule that finds no box is
//! NG and says so, like a caliper that finds no edge.

use serde::Deserialize;

use super::measure::rules::{Axis, Limits, Unit};
use super::measure::{line_angle, plan_axis, plan_limits};
use super::plan_support::class_of;
use super::{describe_other, FailureText, MeasurementText, PlanInput};
use crate::verdict::{Defect, Failure, Inspection, Measurement};

/// One `[[rules.measure]]` of a detect or segment scenario, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxMeasureSection {
    name: Option<String>,
    /// "width", "height", "area", "distance" or "angle".
    what: Option<String>,
    /// The class of the box (width, height, area).
    class: Option<String>,
    /// [x, y, width, height] in frame pixels: only boxes whose centre lies inside.
    zone: Option<[f32; 4]>,
    /// Boxes below this score are passed over (default 0).
    min_score: Option<f32>,
    /// Which box when several fit: "best" (highest score, the default), "largest",
    /// "leftmost", "rightmost", "topmost", "bottommost".
    pick: Option<String>,
    /// Distance and angle rules: the names of two box rules whose centres they join.
    from: Option<String>,
    to: Option<String>,
    axis: Option<String>,
    unit: Option<String>,
    nominal: Option<f32>,
    tolerance: Option<f32>,
    min: Option<f32>,
    max: Option<f32>,
}

/// Which of the fitting boxes a rule takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Best,
    Largest,
    Leftmost,
    Rightmost,
    Topmost,
    Bottommost,
}

impl Pick {
    const WORDS: [(&'static str, Pick); 6] = [
        ("best", Pick::Best),
        ("largest", Pick::Largest),
        ("leftmost", Pick::Leftmost),
        ("rightmost", Pick::Rightmost),
        ("topmost", Pick::Topmost),
        ("bottommost", Pick::Bottommost),
    ];

    /// How much `d` is wanted: the box with the largest key is taken.
    fn key(self, d: &Defect) -> f32 {
        let [x, y, w, h] = d.bbox;
        match self {
            Pick::Best => d.score,
            Pick::Largest => d.area_px,
            Pick::Leftmost => -(x + w / 2.0),
            Pick::Rightmost => x + w / 2.0,
            Pick::Topmost => -(y + h / 2.0),
            Pick::Bottommost => y + h / 2.0,
        }
    }

    fn name(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("best", |(w, _)| w)
    }
}

/// The box a width, height or area rule measures.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSelector {
    pub class: usize,
    pub zone: Option<[f32; 4]>,
    pub min_score: f32,
    pub pick: Pick,
}

impl BoxSelector {
    /// The chosen box among `defects`, if any fits.
    pub fn select<'a>(&self, defects: &'a [Defect]) -> Option<&'a Defect> {
        defects
            .iter()
            .filter(|d| d.class == Some(self.class) && d.score >= self.min_score)
            .filter(|d| self.zone.is_none_or(|z| inside(z, centre(d.bbox))))
            .max_by(|a, b| self.pick.key(a).total_cmp(&self.pick.key(b)))
    }

    fn describe(&self, labels: &[String]) -> String {
        let mut s = format!("no `{}` box", super::label(labels, self.class));
        if let Some(z) = self.zone {
            s.push_str(&format!(" with its centre in zone {z:?}"));
        }
        if self.min_score > 0.0 {
            s.push_str(&format!(" with score >= {}", self.min_score));
        }
        s
    }
}

/// What a box rule measures.
#[derive(Debug, Clone, PartialEq)]
pub enum BoxQuantity {
    Width(BoxSelector),
    Height(BoxSelector),
    /// The region's area (the mask's pixels for the segment head, the box for detect).
    Area(BoxSelector),
    /// Between the centres of the boxes of two other rules (indices into the rule list).
    Distance {
        from: usize,
        to: usize,
        axis: Axis,
    },
    /// Direction of the line through two rules' box centres, in degrees from the x axis
    /// (y down), within 90° of `reference`.
    Angle {
        from: usize,
        to: usize,
        reference: f32,
    },
}

impl BoxQuantity {
    fn word(&self) -> &'static str {
        match self {
            BoxQuantity::Width(_) => "width",
            BoxQuantity::Height(_) => "height",
            BoxQuantity::Area(_) => "area",
            BoxQuantity::Distance { .. } => "distance",
            BoxQuantity::Angle { .. } => "angle",
        }
    }

    fn selector(&self) -> Option<&BoxSelector> {
        match self {
            BoxQuantity::Width(s) | BoxQuantity::Height(s) | BoxQuantity::Area(s) => Some(s),
            _ => None,
        }
    }
}

/// One checked box rule.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxMeasureRule {
    pub name: String,
    pub quantity: BoxQuantity,
    pub unit: Unit,
    pub limits: Limits,
}

/// The box rules of one head and the pixel size they convert with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoxMeasures {
    pub rules: Vec<BoxMeasureRule>,
    pub mm_per_px: Option<f32>,
}

fn centre([x, y, w, h]: [f32; 4]) -> [f32; 2] {
    [x + w / 2.0, y + h / 2.0]
}

fn inside([x, y, w, h]: [f32; 4], [cx, cy]: [f32; 2]) -> bool {
    cx >= x && cx <= x + w && cy >= y && cy <= y + h
}

impl BoxMeasures {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Measures every rule on the frame's boxes into `out.measurements` and fails the
    /// part on each value outside its limits or not found. Allocates nothing: the
    /// head's inspection holds room for every rule.
    pub fn apply(&self, out: &mut Inspection) {
        for (i, rule) in self.rules.iter().enumerate() {
            let px = self.pixels(i, &out.defects);
            let value = rule.unit.from_px(px, self.mm_per_px);
            let ok = if rule.limits.is_empty() {
                value.is_finite()
            } else {
                rule.limits.admits(value)
            };
            let index = u16::try_from(i).unwrap_or(u16::MAX);
            if out.measurements.len() < out.measurements.capacity() {
                out.measurements.push(Measurement {
                    rule: index,
                    value,
                    px,
                    ok,
                });
            }
            if !ok {
                out.fail(Failure::Rule { rule: index, value });
            }
        }
    }

    /// Rule `i`'s value in frame pixels (square pixels, degrees), NaN when its boxes are
    /// not there.
    fn pixels(&self, i: usize, defects: &[Defect]) -> f32 {
        let centre_of = |k: usize| {
            self.rules
                .get(k)
                .and_then(|r| r.quantity.selector())
                .and_then(|s| s.select(defects))
                .map(|d| centre(d.bbox))
        };
        let Some(rule) = self.rules.get(i) else {
            return f32::NAN;
        };
        let found = match &rule.quantity {
            BoxQuantity::Width(s) => s.select(defects).map(|d| d.bbox[2]),
            BoxQuantity::Height(s) => s.select(defects).map(|d| d.bbox[3]),
            BoxQuantity::Area(s) => s.select(defects).map(|d| d.area_px),
            BoxQuantity::Distance { from, to, axis } => centre_of(*from)
                .zip(centre_of(*to))
                .map(|(a, b)| axis.between(a, b)),
            BoxQuantity::Angle {
                from,
                to,
                reference,
            } => centre_of(*from)
                .zip(centre_of(*to))
                .map(|(a, b)| line_angle(&[a, b], *reference)),
        };
        found.unwrap_or(f32::NAN)
    }

    /// A failed box rule as the defect log shows it (`None`: not a box rule's failure).
    pub fn describe(&self, failure: &Failure, labels: &[String]) -> Option<FailureText> {
        let Failure::Rule { rule, value } = *failure else {
            return None;
        };
        let r = self.rules.get(usize::from(rule))?;
        let what = r.quantity.word();
        let unit = r.unit.name();
        let detail = if !value.is_finite() {
            format!("{what}: {}", self.why_missing(r, labels))
        } else if r.limits.is_empty() {
            format!("{what} {value:.2} {unit}")
        } else {
            format!("{what} {value:.2} {unit}, {}", r.limits.describe(r.unit))
        };
        Some(FailureText {
            rule_kind: "measure",
            rule_name: r.name.clone(),
            detail,
            excess: if value.is_finite() {
                r.limits.excess(value)
            } else {
                0.0
            },
        })
    }

    fn why_missing(&self, rule: &BoxMeasureRule, labels: &[String]) -> String {
        let name = |k: usize| self.rules.get(k).map_or("?", |r| r.name.as_str());
        match &rule.quantity {
            BoxQuantity::Width(s) | BoxQuantity::Height(s) | BoxQuantity::Area(s) => {
                format!("{} (pick {})", s.describe(labels), s.pick.name())
            }
            BoxQuantity::Distance { from, to, .. } | BoxQuantity::Angle { from, to, .. } => {
                format!("`{}` or `{}` found no box", name(*from), name(*to))
            }
        }
    }

    /// Measurement `rule` in words, for the defect log.
    pub fn text(&self, rule: u16) -> Option<MeasurementText> {
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
}

/// A detect or segment head's failure in words: its count rules' or its box rules'.
pub(crate) fn describe_box_head_failure(
    count_rules: &[super::count_rules::CountRule],
    measures: &BoxMeasures,
    failure: &Failure,
    labels: &[String],
) -> FailureText {
    match failure {
        Failure::Rule { .. } => measures
            .describe(failure, labels)
            .unwrap_or_else(|| describe_other(failure)),
        _ => super::count_rules::describe_count_failure(count_rules, failure, labels),
    }
}

/// Checks `[[rules.measure]]` of a detect or segment scenario against the model's
/// `classes`; `mm_per_px` is `[rules] mm_per_px`.
pub(crate) fn plan_box_measures(
    input: &mut PlanInput<'_>,
    sections: &[BoxMeasureSection],
    classes: usize,
    mm_per_px: Option<f32>,
) -> BoxMeasures {
    let mut index = std::collections::HashMap::new();
    for (i, s) in sections.iter().enumerate() {
        let key = format!("rules.measure[{i}].name");
        match s.name.as_deref().map(str::trim) {
            None | Some("") => input.error(
                &key,
                "every measurement needs a name (it names the NG in the defect log)",
            ),
            Some(n) => {
                if index.insert(n.to_string(), i).is_some() {
                    input.error(
                        &key,
                        format!("`{n}` names two measurements; names must be unique"),
                    );
                }
            }
        }
    }
    let feeds: Vec<bool> = (0..sections.len())
        .map(|k| {
            sections.iter().any(|s| {
                [&s.from, &s.to]
                    .into_iter()
                    .flatten()
                    .any(|n| index.get(n.trim()) == Some(&k))
            })
        })
        .collect();
    let mut rules = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let ctx = RuleContext {
            sections,
            index: &index,
            classes,
            have_mm: mm_per_px.is_some(),
        };
        if let Some(r) = plan_box_rule(input, i, s, &ctx, feeds[i]) {
            rules.push(r);
        }
    }
    if rules.len() > usize::from(u16::MAX) {
        input.error("rules.measure", "too many measurements");
    }
    BoxMeasures { rules, mm_per_px }
}

struct RuleContext<'a> {
    sections: &'a [BoxMeasureSection],
    index: &'a std::collections::HashMap<String, usize>,
    classes: usize,
    have_mm: bool,
}

const BOX_WHATS: &str = "use \"width\" or \"height\" (of a box), \"area\" (of a region or box), \"distance\" or \"angle\" (between the centres of two box rules' boxes)";

fn plan_box_rule(
    input: &mut PlanInput<'_>,
    i: usize,
    s: &BoxMeasureSection,
    ctx: &RuleContext<'_>,
    feeds: bool,
) -> Option<BoxMeasureRule> {
    let key = |k: &str| format!("rules.measure[{i}].{k}");
    let start = input.errs.len();
    let Some(what) = s.what.as_deref() else {
        input.error(&key("what"), format!("say what to measure: {BOX_WHATS}"));
        return None;
    };
    let quantity = match what {
        "width" | "height" | "area" => {
            for (k, set) in [
                ("from", s.from.is_some()),
                ("to", s.to.is_some()),
                ("axis", s.axis.is_some()),
            ] {
                if set {
                    input.error(&key(k), format!("belongs to distance and angle rules; a `{what}` rule measures one box (class, zone, pick)"));
                }
            }
            let selector = plan_selector(input, i, s, ctx.classes)?;
            match what {
                "width" => BoxQuantity::Width(selector),
                "height" => BoxQuantity::Height(selector),
                _ => BoxQuantity::Area(selector),
            }
        }
        "distance" | "angle" => {
            for (k, set) in [
                ("class", s.class.is_some()),
                ("zone", s.zone.is_some()),
                ("min_score", s.min_score.is_some()),
                ("pick", s.pick.is_some()),
                ("axis", what == "angle" && s.axis.is_some()),
            ] {
                if set {
                    input.error(&key(k), format!("a `{what}` rule joins the boxes of two other rules (from, to); `{k}` belongs on those"));
                }
            }
            let mut box_rule = |k: &str, name: Option<&String>| -> Option<usize> {
                let Some(name) = name else {
                    input.error(&key(k), format!("a {what} needs from = \"<box rule>\" and to = \"<box rule>\": the names of two width, height or area rules whose box centres it joins"));
                    return None;
                };
                match ctx.index.get(name.trim()) {
                    Some(&j)
                        if matches!(
                            ctx.sections[j].what.as_deref(),
                            Some("width" | "height" | "area")
                        ) =>
                    {
                        Some(j)
                    }
                    Some(_) => {
                        input.error(&key(k), format!("`{name}` is not a width, height or area rule; a {what} joins the centres of the boxes such rules pick"));
                        None
                    }
                    None => {
                        input.error(&key(k), format!("no measurement is named `{name}`; name a width, height or area rule of this scenario"));
                        None
                    }
                }
            };
            let (from, to) = (
                box_rule("from", s.from.as_ref()),
                box_rule("to", s.to.as_ref()),
            );
            let (from, to) = (from?, to?);
            if what == "distance" {
                let axis = plan_axis(input, &key("axis"), s.axis.as_deref());
                BoxQuantity::Distance { from, to, axis }
            } else {
                let reference = s
                    .nominal
                    .or(match (s.min, s.max) {
                        (Some(a), Some(b)) => Some((a + b) / 2.0),
                        (a, b) => a.or(b),
                    })
                    .unwrap_or(0.0);
                BoxQuantity::Angle {
                    from,
                    to,
                    reference,
                }
            }
        }
        other => {
            input.error(
                &key("what"),
                format!("unknown measurement `{other}` for boxes and regions; {BOX_WHATS}"),
            );
            return None;
        }
    };
    let unit = plan_unit(
        input,
        &key("unit"),
        s.unit.as_deref(),
        &quantity,
        ctx.have_mm,
    );
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
    Some(BoxMeasureRule {
        name: s.name.as_deref().unwrap_or_default().trim().to_string(),
        quantity,
        unit,
        limits,
    })
}

/// The unit a rule may be in: lengths px or mm, areas px2 or mm2, angles deg.
fn plan_unit(
    input: &mut PlanInput<'_>,
    key: &str,
    unit: Option<&str>,
    q: &BoxQuantity,
    have_mm: bool,
) -> Unit {
    let (allowed, default): (&[(&str, Unit)], Unit) = match q {
        BoxQuantity::Angle { .. } => (&[("deg", Unit::Deg)], Unit::Deg),
        BoxQuantity::Area(_) => (&[("px2", Unit::Px2), ("mm2", Unit::Mm2)], Unit::Px2),
        _ => (&[("px", Unit::Px), ("mm", Unit::Mm)], Unit::Px),
    };
    let Some(u) = unit else {
        return default;
    };
    let Some(&(_, found)) = allowed.iter().find(|(w, _)| *w == u) else {
        let words: Vec<String> = allowed.iter().map(|(w, _)| format!("\"{w}\"")).collect();
        input.error(
            key,
            format!(
                "unit `{u}` does not fit a{} {}; use {}",
                if q.word() == "area" || q.word() == "angle" {
                    "n"
                } else {
                    ""
                },
                q.word(),
                words.join(" or ")
            ),
        );
        return default;
    };
    if matches!(found, Unit::Mm | Unit::Mm2) && !have_mm {
        input.error(
            key,
            "millimetres need the pixel size: set [rules] mm_per_px (millimetres per frame pixel)",
        );
    }
    found
}

fn plan_selector(
    input: &mut PlanInput<'_>,
    i: usize,
    s: &BoxMeasureSection,
    classes: usize,
) -> Option<BoxSelector> {
    let key = |k: &str| format!("rules.measure[{i}].{k}");
    let Some(name) = &s.class else {
        input.error(
            &key("class"),
            "a box rule needs class = \"<class name>\": the class of the box it measures",
        );
        return None;
    };
    let class = class_of(input, &key("class"), name, classes);
    if let Some(z) = s.zone {
        if !(z.iter().all(|v| v.is_finite()) && z[2] > 0.0 && z[3] > 0.0) {
            input.error(
                &key("zone"),
                "must be [x, y, width, height] in frame pixels with a positive width and height",
            );
        }
    }
    let min_score = s.min_score.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_score) {
        input.error(&key("min_score"), "must be a number in [0, 1]");
    }
    let pick = match s.pick.as_deref() {
        None => Pick::Best,
        Some(w) => match Pick::WORDS.iter().find(|(n, _)| *n == w) {
            Some(&(_, p)) => p,
            None => {
                let words: Vec<&str> = Pick::WORDS.iter().map(|(n, _)| *n).collect();
                input.error(&key("pick"), format!("unknown pick `{w}`; use one of {words:?} (default \"best\": the highest score)"));
                Pick::Best
            }
        },
    };
    Some(BoxSelector {
        class: class?,
        zone: s.zone,
        min_score,
        pick,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(class: usize, bbox: [f32; 4], score: f32) -> Defect {
        Defect {
            class: Some(class),
            bbox,
            area_px: bbox[2] * bbox[3] * 0.5,
            area_mm2: None,
            score,
        }
    }

    fn sel(class: usize, pick: Pick) -> BoxSelector {
        BoxSelector {
            class,
            zone: None,
            min_score: 0.0,
            pick,
        }
    }

    fn rule(name: &str, quantity: BoxQuantity, unit: Unit, limits: Limits) -> BoxMeasureRule {
        BoxMeasureRule {
            name: name.into(),
            quantity,
            unit,
            limits,
        }
    }

    #[test]
    fn picks_choose_among_fitting_boxes() {
        let ds = [
            d(0, [10.0, 10.0, 20.0, 20.0], 0.9),
            d(0, [200.0, 50.0, 40.0, 40.0], 0.6),
            d(1, [100.0, 100.0, 80.0, 80.0], 0.99),
        ];
        assert_eq!(sel(0, Pick::Best).select(&ds), Some(&ds[0]));
        assert_eq!(sel(0, Pick::Largest).select(&ds), Some(&ds[1]));
        assert_eq!(sel(0, Pick::Rightmost).select(&ds), Some(&ds[1]));
        assert_eq!(sel(0, Pick::Topmost).select(&ds), Some(&ds[0]));
        let mut zoned = sel(0, Pick::Best);
        zoned.zone = Some([150.0, 0.0, 200.0, 200.0]);
        assert_eq!(zoned.select(&ds), Some(&ds[1]));
        zoned.min_score = 0.7;
        assert_eq!(zoned.select(&ds), None);
    }

    #[test]
    fn sizes_distances_and_angles_are_measured_and_judged() {
        let ds = [
            d(0, [10.0, 10.0, 20.0, 20.0], 0.9),
            d(0, [110.0, 110.0, 20.0, 20.0], 0.8),
        ];
        let tol = |n: f32, t: f32| Limits {
            nominal: Some(n),
            tolerance: Some(t),
            ..Default::default()
        };
        let m = BoxMeasures {
            rules: vec![
                rule(
                    "a",
                    BoxQuantity::Width(sel(0, Pick::Leftmost)),
                    Unit::Mm,
                    tol(5.0, 0.1),
                ),
                rule(
                    "b",
                    BoxQuantity::Area(sel(0, Pick::Rightmost)),
                    Unit::Mm2,
                    tol(10.0, 1.0),
                ),
                rule(
                    "gap",
                    BoxQuantity::Distance {
                        from: 0,
                        to: 1,
                        axis: Axis::X,
                    },
                    Unit::Px,
                    tol(100.0, 0.5),
                ),
                rule(
                    "tilt",
                    BoxQuantity::Angle {
                        from: 0,
                        to: 1,
                        reference: 45.0,
                    },
                    Unit::Deg,
                    tol(40.0, 1.0),
                ),
                rule(
                    "none",
                    BoxQuantity::Height(sel(3, Pick::Best)),
                    Unit::Px,
                    tol(1.0, 1.0),
                ),
            ],
            mm_per_px: Some(0.25),
        };
        let mut out = Inspection::with_capacity(0, 4);
        out.defects.extend_from_slice(&ds);
        out.measurements.reserve(5);
        m.apply(&mut out);
        let values: Vec<f32> = out.measurements.iter().map(|x| x.value).collect();
        // 20 px * 0.25 mm; area 200 px² * 0.0625 mm²/px²; centres 100 px apart in x.
        assert_eq!(&values[..3], &[5.0, 12.5, 100.0]);
        assert!((values[3] - 45.0).abs() < 1e-4, "{}", values[3]);
        assert!(values[4].is_nan());
        let oks: Vec<bool> = out.measurements.iter().map(|x| x.ok).collect();
        assert_eq!(oks, [true, false, true, false, false]);
        let failed: Vec<u16> = out
            .failures
            .iter()
            .filter_map(|f| match f {
                Failure::Rule { rule, .. } => Some(*rule),
                _ => None,
            })
            .collect();
        assert_eq!(failed, [1, 3, 4]);
        assert_eq!(out.failures.capacity(), 4, "no growth");
        let labels = ["screw".to_string()];
        let t = m
            .describe(
                &Failure::Rule {
                    rule: 1,
                    value: 12.5,
                },
                &labels,
            )
            .expect("a box rule");
        assert_eq!(t.rule_name, "b");
        assert_eq!(t.detail, "area 12.50 mm2, nominal 10.00 ± 1.00 mm2");
        let t = m
            .describe(
                &Failure::Rule {
                    rule: 4,
                    value: f32::NAN,
                },
                &labels,
            )
            .expect("a box rule");
        assert_eq!(t.detail, "height: no `class_3` box (pick best)");
    }
}
