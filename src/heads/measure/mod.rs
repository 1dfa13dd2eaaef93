//! Measurement: calipers along probe lines on a smoothed luminance plane (the fixed first
//! stage `models/luma/luma.onnx`), edges to sub-pixel, and `[[rules.measure]]` with
//! nominal and tolerance in pixels, millimetres or degrees.
//!
//! `caliper` finds edges along one line, `rules` says what a rule measures and judges a
//! value, `plan` reads and checks the keys, `calibration` is the file `lineside calibrate`
//! writes. Every rule's value goes into [`Inspection::measurements`]; a value outside its
//! limits, or nothing found to measure, is a failure naming the rule.

pub mod calibration;
pub mod caliper;
mod plan;
pub mod rules;

use ndarray::ArrayView2;
use ort::session::SessionOutputs;

pub use plan::KIND;
pub(crate) use plan::{plan_axis, plan_limits};

use self::caliper::{Caliper, ToPlane};
use self::rules::{EdgePick, MeasureRule, Quantity};
use super::{f32_output, FrameGeometry, FrameRef, Head, HeadError};
use crate::verdict::{Failure, Inspection, Measurement};

/// A checked measure head: the plane it reads and its rules.
#[derive(Debug, Clone)]
pub struct MeasureConfig {
    /// The luminance output (`[1, 1, height, width]`).
    pub output: String,
    /// The plane's width and height (the model input size).
    pub plane: (usize, usize),
    pub rules: Vec<MeasureRule>,
    /// Millimetres per frame pixel, from `[rules] mm_per_px` or the calibration file.
    pub mm_per_px: Option<f32>,
    /// `[rules] calibration`, resolved: where `lineside calibrate` writes.
    pub calibration: Option<std::path::PathBuf>,
}

/// A measure head at run time: one caliper per probe rule, buffers sized once.
pub struct MeasureHead {
    cfg: MeasureConfig,
    calipers: Vec<Option<Caliper>>,
    /// Per rule: the value in pixels (NaN: nothing found) and, for edge rules, the point.
    px: Vec<f32>,
    points: Vec<Option<[f32; 2]>>,
    /// Scratch for angle rules (the points of one rule).
    scratch: Vec<[f32; 2]>,
}

impl MeasureHead {
    pub fn new(cfg: MeasureConfig) -> Self {
        let calipers = cfg
            .rules
            .iter()
            .map(|r| {
                r.quantity
                    .probe()
                    .map(|p| Caliper::new(p.line, p.band, p.polarity, p.min_contrast))
            })
            .collect();
        let n = cfg.rules.len();
        MeasureHead {
            calipers,
            px: vec![f32::NAN; n],
            points: vec![None; n],
            scratch: Vec::with_capacity(n),
            cfg,
        }
    }

    /// Measures every rule on `plane` (probe rules first, then those built on them).
    fn measure(&mut self, plane: ArrayView2<'_, f32>, to_plane: &ToPlane) {
        for (i, rule) in self.cfg.rules.iter().enumerate() {
            self.px[i] = f32::NAN;
            self.points[i] = None;
            let Some(cal) = self.calipers[i].as_mut() else {
                continue;
            };
            let edges = cal.run(plane, to_plane);
            match &rule.quantity {
                Quantity::Edge { pick, .. } => {
                    let found = match *pick {
                        EdgePick::First => edges.first(),
                        EdgePick::Last => edges.last(),
                        EdgePick::Strongest => edges
                            .iter()
                            .max_by(|a, b| a.slope.abs().total_cmp(&b.slope.abs())),
                        EdgePick::Nth(n) if n >= 0 => edges.get(n as usize),
                        EdgePick::Nth(n) => edges
                            .len()
                            .checked_sub(n.unsigned_abs() as usize)
                            .and_then(|k| edges.get(k)),
                    };
                    if let Some(e) = found.copied() {
                        self.px[i] = e.pos;
                        self.points[i] = Some(cal.point(e.pos));
                    }
                }
                Quantity::Width { .. } => {
                    if let (Some(a), Some(b)) = (edges.first(), edges.last()) {
                        if edges.len() >= 2 {
                            self.px[i] = b.pos - a.pos;
                        }
                    }
                }
                _ => {}
            }
        }
        for (i, rule) in self.cfg.rules.iter().enumerate() {
            match &rule.quantity {
                Quantity::Distance { from, to, axis } => {
                    if let (Some(Some(a)), Some(Some(b))) =
                        (self.points.get(*from), self.points.get(*to))
                    {
                        self.px[i] = axis.between(*a, *b);
                    }
                }
                Quantity::Angle { points, reference } => {
                    self.scratch.clear();
                    self.scratch.extend(
                        points
                            .iter()
                            .filter_map(|&k| self.points.get(k).copied().flatten()),
                    );
                    if self.scratch.len() == points.len() {
                        self.px[i] = line_angle(&self.scratch, *reference);
                    }
                }
                _ => {}
            }
        }
    }

    /// The values of the last frame, in pixels (NaN where nothing was found).
    pub fn pixels(&self) -> &[f32] {
        &self.px
    }
}

/// The direction of the least-squares line through `points`, in degrees from the x axis
/// (y down). A line has no sense, so of its directions a, a ± 180°, ... the one within
/// 90° of `reference` is taken (a nominal of 90 reads a vertical line as 90, not -90).
pub fn line_angle(points: &[[f32; 2]], reference: f32) -> f32 {
    let n = points.len() as f32;
    if points.len() < 2 {
        return f32::NAN;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0] / n, y + p[1] / n));
    let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
    for p in points {
        let (dx, dy) = (p[0] - mx, p[1] - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    // The principal axis of the points: the line's direction, up to a half turn.
    let a = (0.5 * (2.0 * sxy).atan2(sxx - syy)).to_degrees();
    reference + (a - reference + 90.0).rem_euclid(180.0) - 90.0
}

impl Head for MeasureHead {
    fn inspection(&self) -> Inspection {
        let n = self.cfg.rules.len();
        let mut ins = Inspection::with_capacity(0, 0);
        ins.failures = Vec::with_capacity(n.max(4));
        ins.measurements = Vec::with_capacity(n);
        ins
    }

    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        _frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let (shape, data) = f32_output(outputs, &self.cfg.output)?;
        let bad_shape = || HeadError::Shape {
            name: self.cfg.output.clone(),
            shape: shape.to_vec(),
            expected: "expected one luminance plane [1, 1, height, width]",
        };
        let [1, 1, h, w] = *shape else {
            return Err(bad_shape());
        };
        let (h, w) = (
            usize::try_from(h).unwrap_or(0),
            usize::try_from(w).unwrap_or(0),
        );
        let plane = ArrayView2::from_shape((h, w), data).map_err(|_| bad_shape())?;
        let t = geometry.transform;
        let to_plane = ToPlane {
            origin: t.origin,
            scale: t.scale,
            pad: t.pad,
        };
        self.measure(plane, &to_plane);
        for (i, rule) in self.cfg.rules.iter().enumerate() {
            let px = self.px[i];
            let value = rule.convert(px, self.cfg.mm_per_px);
            // A rule without limits (an edge feeding a distance) only has to be found.
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::line_angle;

    #[test]
    fn the_angle_of_a_line_stays_near_the_reference() {
        let vertical = [[10.0, 0.0], [10.0, 50.0]];
        assert!((line_angle(&vertical, 90.0) - 90.0).abs() < 1e-4);
        assert!((line_angle(&vertical, -80.0) + 90.0).abs() < 1e-4);
        assert!((line_angle(&vertical, 250.0) - 270.0).abs() < 1e-4);
        // Three points on a line tilted 2° from the x axis.
        let t = 2f32.to_radians().tan();
        let pts = [[0.0, 0.0], [40.0, 40.0 * t], [80.0, 80.0 * t]];
        assert!((line_angle(&pts, 0.0) - 2.0).abs() < 1e-3);
        assert!(line_angle(&pts[..1], 0.0).is_nan());
    }
}
