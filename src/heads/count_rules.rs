//! Count rules for the detect and segment heads: how many boxes of a class (inside a zone, above a score
//! and an area) a good part has. `required_classes` / `forbidden_classes` are count rules
//! with `min = 1` / `max = 0`.

use crate::verdict::{Defect, Failure, Inspection};

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
}
