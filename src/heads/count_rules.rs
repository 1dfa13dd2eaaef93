//! Count rules for the detect and segment heads: how many boxes of a class (inside a zone, above a score
//! and an area) a good part has. `required_classes` / `forbidden_classes` are count rules
//! with `min = 1` / `max = 0`.

use serde::Deserialize;

use super::plan_support::class_of;
use super::{relative_excess, FailureText, PlanInput};
use crate::verdict::{Defect, Failure, Inspection};

/// One `[[rules.count]]`: how many boxes (of a class, in a zone) a good part has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRuleSection {
    /// Names the rule in the defect log (default `count[i]`).
    pub name: Option<String>,
    /// Class name (or index when the model has no names); absent: every class.
    pub class: Option<String>,
    /// Exactly this many (sets min and max).
    pub exact: Option<u32>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// [x, y, width, height] in frame pixels; a box counts if its centre is inside.
    pub zone: Option<[f32; 4]>,
    /// Boxes below this score are not counted (default 0: every box the head kept).
    pub min_score: Option<f32>,
    /// Boxes smaller than this many frame pixels are not counted (default 0).
    pub min_area_px: Option<f32>,
}

/// The `[rules]` keys of count rules, as the detect and segment heads read them.
pub struct CountRulesKeys<'a> {
    pub count: &'a Option<Vec<CountRuleSection>>,
    /// Each of these classes must be found at least once.
    pub required_classes: &'a Option<Vec<String>>,
    /// None of these classes may be found.
    pub forbidden_classes: &'a Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CountRule {
    /// Names the rule in the defect log.
    pub name: String,
    /// Class index; `None` counts every class.
    pub class: Option<usize>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// x, y, width, height in frame pixels: a box counts if its centre lies inside.
    pub zone: Option<[f32; 4]>,
    pub min_score: f32,
    pub min_area_px: f32,
}

impl CountRule {
    /// Boxes this rule counts.
    pub fn count(&self, defects: &[Defect]) -> u32 {
        defects
            .iter()
            .filter(|d| self.class.is_none_or(|c| d.class == Some(c)))
            .filter(|d| d.score >= self.min_score && d.area_px >= self.min_area_px)
            .filter(|d| {
                self.zone.is_none_or(|[x, y, w, h]| {
                    let cx = d.bbox[0] + d.bbox[2] / 2.0;
                    let cy = d.bbox[1] + d.bbox[3] / 2.0;
                    cx >= x && cx <= x + w && cy >= y && cy <= y + h
                })
            })
            .count() as u32
    }

    /// The failure when the count is outside `min..=max`; `index` is this rule's position.
    pub fn check(&self, index: usize, defects: &[Defect]) -> Option<Failure> {
        let n = self.count(defects);
        let low = self.min.is_some_and(|m| n < m);
        let high = self.max.is_some_and(|m| n > m);
        (low || high).then_some(Failure::CountOutOfRange {
            rule: u16::try_from(index).unwrap_or(u16::MAX),
            count: n,
        })
    }

    /// "2..=4 `screw` boxes in zone [..] with score >= .." for the defect log.
    /// How far `count` is outside the rule's range, relative to the bound it broke.
    pub fn excess(&self, count: u32) -> f32 {
        let below = self.min.filter(|&m| count < m);
        let above = self.max.filter(|&m| count > m);
        match (below, above) {
            (Some(m), _) | (None, Some(m)) => relative_excess(count as f32, m as f32),
            (None, None) => 0.0,
        }
    }

    pub fn describe(&self, labels: &[String]) -> String {
        let what = match self.class {
            Some(c) => format!(
                "`{}`",
                labels.get(c).cloned().unwrap_or_else(|| c.to_string())
            ),
            None => "of any class".to_string(),
        };
        let range = match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => format!("exactly {a}"),
            (Some(a), Some(b)) => format!("{a} to {b}"),
            (Some(a), None) => format!("at least {a}"),
            (None, Some(b)) => format!("at most {b}"),
            (None, None) => "any number of".to_string(),
        };
        let mut s = format!("{range} {what}");
        if let Some(z) = self.zone {
            s.push_str(&format!(" in zone {z:?}"));
        }
        if self.min_score > 0.0 {
            s.push_str(&format!(" with score >= {}", self.min_score));
        }
        if self.min_area_px > 0.0 {
            s.push_str(&format!(" of >= {} px²", self.min_area_px));
        }
        s
    }
}

/// Checks every rule against the defects found and records each failure.
pub fn apply_count_rules(rules: &[CountRule], out: &mut Inspection) {
    for (i, rule) in rules.iter().enumerate() {
        if let Some(f) = rule.check(i, &out.defects) {
            out.fail(f);
        }
    }
}

/// Checks `[[rules.count]]`, `required_classes` and `forbidden_classes` against the
/// model's `classes`.
pub(crate) fn plan_count_rules(
    input: &mut PlanInput<'_>,
    keys: CountRulesKeys<'_>,
    classes: usize,
) -> Vec<CountRule> {
    let mut out = Vec::new();
    for (i, r) in keys.count.iter().flatten().enumerate() {
        let key = |k: &str| format!("rules.count[{i}].{k}");
        let class = match &r.class {
            Some(c) => match class_of(input, &key("class"), c, classes) {
                Some(c) => Some(c),
                None => continue,
            },
            None => None,
        };
        if r.exact.is_some() && (r.min.is_some() || r.max.is_some()) {
            input.error(
                &key("exact"),
                "give either `exact` or `min`/`max`, not both",
            );
            continue;
        }
        let (min, max) = match r.exact {
            Some(n) => (Some(n), Some(n)),
            None => (r.min, r.max),
        };
        if min.is_none() && max.is_none() {
            input.error(
                &format!("rules.count[{i}]"),
                "needs `exact`, `min` or `max`",
            );
            continue;
        }
        if let (Some(a), Some(b)) = (min, max) {
            if b < a {
                input.error(&key("max"), format!("is {b}, below min {a}"));
                continue;
            }
        }
        if let Some([_, _, w, h]) = r.zone {
            if !(w > 0.0 && h > 0.0) || r.zone.is_some_and(|z| z.iter().any(|v| !v.is_finite())) {
                input.error(
                    &key("zone"),
                    "must be [x, y, width, height] in frame pixels with a positive width and height",
                );
                continue;
            }
        }
        let min_score = r.min_score.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&min_score) {
            input.error(&key("min_score"), "must be a number in [0, 1]");
            continue;
        }
        let min_area_px = r.min_area_px.unwrap_or(0.0);
        if !(min_area_px.is_finite() && min_area_px >= 0.0) {
            input.error(&key("min_area_px"), "must be a number >= 0");
            continue;
        }
        out.push(CountRule {
            name: r.name.clone().unwrap_or_else(|| format!("count[{i}]")),
            class,
            min,
            max,
            zone: r.zone,
            min_score,
            min_area_px,
        });
    }
    for (list, key, required) in [
        (keys.required_classes, "rules.required_classes", true),
        (keys.forbidden_classes, "rules.forbidden_classes", false),
    ] {
        for name in list.iter().flatten() {
            let Some(c) = class_of(input, key, name, classes) else {
                continue;
            };
            let short = key.trim_start_matches("rules.");
            out.push(CountRule {
                name: format!("{short}[{name}]"),
                class: Some(c),
                min: required.then_some(1),
                max: (!required).then_some(0),
                zone: None,
                min_score: 0.0,
                min_area_px: 0.0,
            });
        }
    }
    if out.len() > usize::from(u16::MAX) {
        input.error("rules.count", "too many count rules");
    }
    out
}

/// A count rule's failure as the defect log shows it.
pub(crate) fn describe_count_failure(
    rules: &[CountRule],
    failure: &Failure,
    labels: &[String],
) -> FailureText {
    match *failure {
        Failure::CountOutOfRange { rule, count } => match rules.get(usize::from(rule)) {
            Some(r) => FailureText {
                rule_kind: "count",
                rule_name: r.name.clone(),
                detail: format!("{}: found {count}", r.describe(labels)),
                excess: r.excess(count),
            },
            None => FailureText {
                rule_kind: "count",
                rule_name: format!("count[{rule}]"),
                detail: format!("found {count}"),
                excess: 0.0,
            },
        },
        other => super::describe_other(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(class: usize, x: f32, score: f32) -> Defect {
        Defect {
            class: Some(class),
            bbox: [x, 10.0, 20.0, 20.0],
            area_px: 400.0,
            area_mm2: None,
            score,
        }
    }

    #[test]
    fn counts_by_class_zone_and_score() {
        let ds = [
            d(0, 0.0, 0.9),
            d(0, 100.0, 0.9),
            d(0, 200.0, 0.3),
            d(1, 0.0, 0.9),
        ];
        let mut r = CountRule {
            name: "screws".into(),
            class: Some(0),
            min: Some(3),
            max: Some(3),
            zone: None,
            min_score: 0.0,
            min_area_px: 0.0,
        };
        assert_eq!(r.check(0, &ds), None);
        r.min_score = 0.5;
        assert_eq!(
            r.check(2, &ds),
            Some(Failure::CountOutOfRange { rule: 2, count: 2 })
        );
        r.zone = Some([0.0, 0.0, 50.0, 50.0]);
        assert_eq!(r.count(&ds), 1);
        r.min_area_px = 401.0;
        assert_eq!(r.count(&ds), 0);
        assert_eq!(
            r.describe(&["screw".into()]),
            "exactly 3 `screw` in zone [0.0, 0.0, 50.0, 50.0] with score >= 0.5 of >= 401 px²"
        );
    }

    #[test]
    fn a_failed_count_names_its_rule_and_how_far_off_it_is() {
        let rule = CountRule {
            name: "screws".into(),
            class: Some(0),
            min: Some(4),
            max: None,
            zone: None,
            min_score: 0.0,
            min_area_px: 0.0,
        };
        let t = describe_count_failure(
            std::slice::from_ref(&rule),
            &Failure::CountOutOfRange { rule: 0, count: 1 },
            &["screw".into()],
        );
        assert_eq!((t.rule_kind, t.rule_name.as_str()), ("count", "screws"));
        assert_eq!(t.detail, "at least 4 `screw`: found 1");
        // 3 short of 4.
        assert!((t.excess - 0.75).abs() < 1e-6, "{}", t.excess);
        // A forbidden class (max 0) found twice: 2 past a limit of 0.
        let forbidden = CountRule {
            min: None,
            max: Some(0),
            ..rule
        };
        assert_eq!(forbidden.excess(2), 2.0);
        assert_eq!(forbidden.excess(0), 0.0);
    }
}
