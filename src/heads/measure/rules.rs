//! Measurement rules (`[[rules.measure]]`), checked: what each measures, in which unit,
//! and its limits; and how a value is judged and put into words.

use super::caliper::Polarity;
use crate::heads::relative_excess;

/// Which of a probe's edges an `edge` rule takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EdgePick {
    First,
    Last,
    /// The largest slope.
    Strongest,
    /// The n-th edge from the start (0-based); negative counts from the end (-1 = last).
    Nth(i32),
}

impl EdgePick {
    pub fn describe(self) -> String {
        match self {
            EdgePick::First => "first".into(),
            EdgePick::Last => "last".into(),
            EdgePick::Strongest => "strongest".into(),
            EdgePick::Nth(n) => format!("edge {n}"),
        }
    }
}

/// A probe: where the caliper runs and which edges count.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// `[x0, y0, x1, y1]` in frame pixels.
    pub line: [f32; 4],
    /// Lines averaged across the probe, 1 px apart.
    pub band: usize,
    pub polarity: Polarity,
    /// Smallest luminance slope of an edge, in luma (0..1) per pixel.
    pub min_contrast: f32,
}

/// What a rule measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    /// Position of one edge along the probe, from its start.
    Edge { probe: ProbeSpec, pick: EdgePick },
    /// First to last edge along the probe.
    Width { probe: ProbeSpec },
    /// Between the edge points of two `edge` rules (indices into the rule list).
    Distance { from: usize, to: usize, axis: Axis },
    /// Direction of the line through the edge points of `edge` rules, in degrees from
    /// the frame's x axis (y down), within 90° of `reference`.
    Angle { points: Vec<usize>, reference: f32 },
}

impl Quantity {
    pub fn word(&self) -> &'static str {
        match self {
            Quantity::Edge { .. } => "edge",
            Quantity::Width { .. } => "width",
            Quantity::Distance { .. } => "distance",
            Quantity::Angle { .. } => "angle",
        }
    }

    pub fn probe(&self) -> Option<&ProbeSpec> {
        match self {
            Quantity::Edge { probe, .. } | Quantity::Width { probe } => Some(probe),
            _ => None,
        }
    }
}

/// How a distance is taken between two points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// The straight-line distance (never negative).
    Euclidean,
    /// `to.x - from.x`: signed, so an edge on the wrong side reads negative.
    X,
    /// `to.y - from.y` (y down).
    Y,
}

impl Axis {
    pub fn between(self, from: [f32; 2], to: [f32; 2]) -> f32 {
        match self {
            Axis::Euclidean => (to[0] - from[0]).hypot(to[1] - from[1]),
            Axis::X => to[0] - from[0],
            Axis::Y => to[1] - from[1],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Px,
    Mm,
    Deg,
    /// Areas (regions and boxes of the detect and segment heads).
    Px2,
    Mm2,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Px => "px",
            Unit::Mm => "mm",
            Unit::Deg => "deg",
            Unit::Px2 => "px2",
            Unit::Mm2 => "mm2",
        }
    }

    /// A value in this unit from frame pixels (square pixels for areas; degrees stay
    /// degrees). Exactly `px * mm_per_px` for millimetres and `px * mm_per_px²` for mm²;
    /// NaN when millimetres are asked for without a pixel size.
    pub fn from_px(self, px: f32, mm_per_px: Option<f32>) -> f32 {
        match (self, mm_per_px) {
            (Unit::Mm, Some(s)) => px * s,
            (Unit::Mm2, Some(s)) => px * (s * s),
            (Unit::Mm | Unit::Mm2, None) => f32::NAN,
            (Unit::Px | Unit::Px2 | Unit::Deg, _) => px,
        }
    }
}

/// A rule's limits: `nominal ± tolerance` and/or `min`/`max`; none at all for an edge
/// that only feeds a distance or angle rule.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    pub nominal: Option<f32>,
    pub tolerance: Option<f32>,
    pub min: Option<f32>,
    pub max: Option<f32>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.nominal.is_none() && self.min.is_none() && self.max.is_none()
    }

    pub fn admits(&self, v: f32) -> bool {
        if !v.is_finite() {
            return false;
        }
        let in_tol = match (self.nominal, self.tolerance) {
            (Some(n), Some(t)) => (v - n).abs() <= t,
            _ => true,
        };
        in_tol && self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }

    /// How far `v` is outside the limits, relative to the tolerance (or the bound).
    pub fn excess(&self, v: f32) -> f32 {
        if let (Some(n), Some(t)) = (self.nominal, self.tolerance) {
            let off = (v - n).abs() - t;
            if off > 0.0 {
                return relative_excess(off + t, t);
            }
        }
        match (self.min, self.max) {
            (Some(m), _) if v < m => relative_excess(v, m),
            (_, Some(m)) if v > m => relative_excess(v, m),
            _ => 0.0,
        }
    }

    /// "nominal 12.00 ± 0.20", "min 3.00, max 4.00".
    pub fn describe(&self, unit: Unit) -> String {
        let u = unit.name();
        let mut parts = Vec::new();
        if let (Some(n), Some(t)) = (self.nominal, self.tolerance) {
            parts.push(format!("nominal {n:.2} ± {t:.2} {u}"));
        }
        if let Some(m) = self.min {
            parts.push(format!("min {m:.2} {u}"));
        }
        if let Some(m) = self.max {
            parts.push(format!("max {m:.2} {u}"));
        }
        parts.join(", ")
    }
}

/// One checked `[[rules.measure]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureRule {
    pub name: String,
    pub quantity: Quantity,
    pub unit: Unit,
    pub limits: Limits,
}

impl MeasureRule {
    /// The value in the rule's unit from pixels (degrees stay degrees). Exactly
    /// `px * mm_per_px` for millimetres.
    pub fn convert(&self, px: f32, mm_per_px: Option<f32>) -> f32 {
        self.unit.from_px(px, mm_per_px)
    }

    /// The defect-log detail of a failed rule: "width 12.43 mm, nominal 12.00 ± 0.20 mm".
    pub fn detail(&self, value: f32, why_missing: &str) -> String {
        let what = self.quantity.word();
        if value.is_finite() && self.limits.is_empty() {
            format!("{what} {value:.2} {}", self.unit.name())
        } else if value.is_finite() {
            format!(
                "{what} {value:.2} {}, {}",
                self.unit.name(),
                self.limits.describe(self.unit)
            )
        } else {
            format!("{what}: {why_missing}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_judge_and_say_how_far_out() {
        let l = Limits {
            nominal: Some(12.0),
            tolerance: Some(0.2),
            ..Default::default()
        };
        assert!(l.admits(12.2) && l.admits(11.8) && !l.admits(12.43));
        assert!(!l.admits(f32::NAN));
        assert!((l.excess(12.4) - 1.0).abs() < 1e-4, "{}", l.excess(12.4));
        assert_eq!(l.describe(Unit::Mm), "nominal 12.00 ± 0.20 mm");
        let m = Limits {
            min: Some(3.0),
            ..Default::default()
        };
        assert!(m.admits(3.0) && !m.admits(2.0));
        assert!((m.excess(1.5) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn distances_along_an_axis_are_signed() {
        assert_eq!(Axis::X.between([10.0, 0.0], [4.0, 3.0]), -6.0);
        assert_eq!(Axis::Y.between([10.0, 0.0], [4.0, 3.0]), 3.0);
        assert_eq!(Axis::Euclidean.between([0.0, 0.0], [3.0, 4.0]), 5.0);
    }

    #[test]
    fn millimetres_are_pixels_times_the_pixel_size() {
        let r = MeasureRule {
            name: "w".into(),
            quantity: Quantity::Distance {
                from: 0,
                to: 1,
                axis: Axis::X,
            },
            unit: Unit::Mm,
            limits: Limits::default(),
        };
        assert_eq!(r.convert(123.4, Some(0.05)), 123.4f32 * 0.05f32);
        assert!(r.convert(1.0, None).is_nan());
        assert_eq!(Unit::Mm2.from_px(400.0, Some(0.25)), 25.0);
        assert_eq!(Unit::Px2.from_px(400.0, Some(0.25)), 400.0);
        assert_eq!(r.detail(12.4321, ""), "distance 12.43 mm");
        assert_eq!(r.detail(f32::NAN, "no edge"), "distance: no edge");
    }
}
