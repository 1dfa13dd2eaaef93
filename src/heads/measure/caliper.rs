//! A caliper: the luminance profile along a line, its derivative, and the edges on it
//! with sub-pixel positions.
//!
//! The profile is sampled every frame pixel along the probe with bilinear interpolation
//! and averaged over a band across it; its central difference peaks at each edge, and a
//! parabola through the three samples at a peak places the edge between samples.
//! Coordinates are continuous frame coordinates: pixel `(i, j)` covers `[i, i+1) x [j, j+1)`,
//! so its centre is `(i + 0.5, j + 0.5)` (as box coordinates in the defect log).

use ndarray::ArrayView2;
use serde::Deserialize;

/// Which way the luminance steps, walking the probe from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Dark to light.
    Rising,
    /// Light to dark.
    Falling,
    #[default]
    Any,
}

impl Polarity {
    fn admits(self, slope: f32) -> bool {
        match self {
            Polarity::Rising => slope > 0.0,
            Polarity::Falling => slope < 0.0,
            Polarity::Any => slope != 0.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Polarity::Rising => "rising",
            Polarity::Falling => "falling",
            Polarity::Any => "any",
        }
    }
}

/// An edge found along a probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Distance from the probe's start, in frame pixels (sub-pixel).
    pub pos: f32,
    /// The luminance slope at the edge (luma per pixel, signed: rising > 0).
    pub slope: f32,
}

/// Maps frame coordinates into the luma plane's (model input) pixel grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToPlane {
    pub origin: (f32, f32),
    /// Frame pixels per plane pixel.
    pub scale: (f32, f32),
    pub pad: (f32, f32),
}

impl ToPlane {
    pub const IDENTITY: ToPlane = ToPlane {
        origin: (0.0, 0.0),
        scale: (1.0, 1.0),
        pad: (0.0, 0.0),
    };

    /// Array position (column, row) of frame point `(x, y)`: sample centres sit at
    /// integer array positions.
    fn index(&self, x: f32, y: f32) -> (f32, f32) {
        let sx = if self.scale.0 > 0.0 {
            self.scale.0
        } else {
            1.0
        };
        let sy = if self.scale.1 > 0.0 {
            self.scale.1
        } else {
            1.0
        };
        (
            (x - self.origin.0) / sx + self.pad.0 - 0.5,
            (y - self.origin.1) / sy + self.pad.1 - 0.5,
        )
    }
}

/// One probe with its buffers, allocated once: running it allocates nothing.
#[derive(Debug, Clone)]
pub struct Caliper {
    start: [f32; 2],
    /// Where along the probe the first sample lies (see [`Caliper::new`]).
    first: f32,
    /// Unit vector along the probe.
    dir: [f32; 2],
    /// Offsets across the probe, in pixels, of the lines averaged into the profile.
    band: Vec<f32>,
    polarity: Polarity,
    min_contrast: f32,
    profile: Vec<f32>,
    slope: Vec<f32>,
    edges: Vec<Edge>,
}

impl Caliper {
    /// A caliper along `probe = [x0, y0, x1, y1]` (frame pixels), averaging `band` lines
    /// 1 px apart; edges are slope peaks of at least `min_contrast` luma per pixel.
    pub fn new(probe: [f32; 4], band: usize, polarity: Polarity, min_contrast: f32) -> Self {
        let [x0, y0, x1, y1] = probe;
        let len = (x1 - x0).hypot(y1 - y0);
        let dir = if len > 0.0 {
            [(x1 - x0) / len, (y1 - y0) / len]
        } else {
            [1.0, 0.0]
        };
        // A probe along a pixel row or column is sampled at pixel centres: interpolating
        // between them would blur the profile unevenly and bias the sub-pixel fit (up to
        // 0.05 px on rendered parts; at centres, under 0.005 px).
        let first = if dir[1].abs() < 1e-6 {
            ((0.5 - x0) * dir[0].signum()).rem_euclid(1.0)
        } else if dir[0].abs() < 1e-6 {
            ((0.5 - y0) * dir[1].signum()).rem_euclid(1.0)
        } else {
            0.0
        };
        // One sample per frame pixel along the probe, inside both ends.
        let n = if len.is_finite() && len >= first {
            (len - first) as usize + 1
        } else {
            1
        };
        let band = band.max(1);
        let half = (band as f32 - 1.0) / 2.0;
        Caliper {
            start: [x0, y0],
            first,
            dir,
            band: (0..band).map(|k| k as f32 - half).collect(),
            polarity,
            min_contrast,
            profile: vec![0.0; n],
            slope: vec![0.0; n],
            edges: Vec::with_capacity(n / 2 + 1),
        }
    }

    /// The frame point `pos` pixels along the probe.
    pub fn point(&self, pos: f32) -> [f32; 2] {
        [
            self.start[0] + self.dir[0] * pos,
            self.start[1] + self.dir[1] * pos,
        ]
    }

    /// The averaged luminance profile of the last run, one sample per pixel from
    /// `first` along the probe.
    pub fn profile(&self) -> &[f32] {
        &self.profile
    }

    /// Samples `plane` along the probe and finds its edges, in order along the probe.
    pub fn run(&mut self, plane: ArrayView2<'_, f32>, to_plane: &ToPlane) -> &[Edge] {
        let normal = [-self.dir[1], self.dir[0]];
        for (i, p) in self.profile.iter_mut().enumerate() {
            let t = self.first + i as f32;
            let [x, y] = [
                self.start[0] + self.dir[0] * t,
                self.start[1] + self.dir[1] * t,
            ];
            let mut sum = 0.0;
            for &k in &self.band {
                let (c, r) = to_plane.index(x + normal[0] * k, y + normal[1] * k);
                sum += bilinear(plane, c, r);
            }
            *p = sum / self.band.len() as f32;
        }
        find_edges(
            &self.profile,
            &mut self.slope,
            self.polarity,
            self.min_contrast,
            &mut self.edges,
        );
        for e in &mut self.edges {
            e.pos += self.first;
        }
        &self.edges
    }
}

/// The plane's value at array position `(c, r)`, bilinear, borders replicated.
fn bilinear(plane: ArrayView2<'_, f32>, c: f32, r: f32) -> f32 {
    let (h, w) = plane.dim();
    if h == 0 || w == 0 || !(c.is_finite() && r.is_finite()) {
        return 0.0;
    }
    let c = c.clamp(0.0, (w - 1) as f32);
    let r = r.clamp(0.0, (h - 1) as f32);
    let (c0, r0) = (c.floor() as usize, r.floor() as usize);
    let (c1, r1) = ((c0 + 1).min(w - 1), (r0 + 1).min(h - 1));
    let (fc, fr) = (c - c0 as f32, r - r0 as f32);
    let top = plane[[r0, c0]] * (1.0 - fc) + plane[[r0, c1]] * fc;
    let bottom = plane[[r1, c0]] * (1.0 - fc) + plane[[r1, c1]] * fc;
    top * (1.0 - fr) + bottom * fr
}

/// Edges of `profile`: peaks of its central difference (written into `slope`) of the
/// wanted polarity and at least `min_contrast`, placed by a parabola through the peak
/// and its two neighbours. `edges` is cleared first and never grows past its capacity.
pub fn find_edges(
    profile: &[f32],
    slope: &mut [f32],
    polarity: Polarity,
    min_contrast: f32,
    edges: &mut Vec<Edge>,
) {
    edges.clear();
    let n = profile.len().min(slope.len());
    slope.iter_mut().for_each(|s| *s = 0.0);
    if n < 3 {
        return;
    }
    for i in 1..n - 1 {
        slope[i] = (profile[i + 1] - profile[i - 1]) / 2.0;
    }
    for i in 1..n - 1 {
        let (a, b, c) = (slope[i - 1], slope[i], slope[i + 1]);
        if !polarity.admits(b) || b.abs() < min_contrast {
            continue;
        }
        // A peak of |slope|: higher than the sample before, not lower than the one after
        // (a flat top counts once, at its first sample).
        let (a, m, c) = if b > 0.0 { (a, b, c) } else { (-a, -b, -c) };
        if !(m > a && m >= c) {
            continue;
        }
        let curvature = a - 2.0 * m + c;
        let offset = if curvature < 0.0 {
            (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        if edges.len() < edges.capacity() {
            edges.push(Edge {
                pos: i as f32 + offset,
                slope: b,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A dark-to-light step at `edge` (continuous coordinate) drawn with exact pixel
    /// coverage, blurred by the luma model's kernel (Gaussian sigma 1, 5 taps).
    fn blurred_step(n: usize, edge: f32, dark: f32, light: f32) -> Vec<f32> {
        let cover: Vec<f32> = (0..n)
            .map(|i| (i as f32 + 1.0 - edge).clamp(0.0, 1.0))
            .map(|f| dark + (light - dark) * f)
            .collect();
        blur(&cover)
    }

    fn blur(v: &[f32]) -> Vec<f32> {
        let k: Vec<f32> = (-2..=2)
            .map(|d: i32| (-0.5 * (d * d) as f32).exp())
            .collect();
        let sum: f32 = k.iter().sum();
        (0..v.len() as i64)
            .map(|i| {
                (-2..=2i64)
                    .map(|d| v[(i + d).clamp(0, v.len() as i64 - 1) as usize] * k[(d + 2) as usize])
                    .sum::<f32>()
                    / sum
            })
            .collect()
    }

    fn edges_of(profile: &[f32], polarity: Polarity) -> Vec<Edge> {
        let mut slope = vec![0.0; profile.len()];
        let mut edges = Vec::with_capacity(profile.len());
        find_edges(profile, &mut slope, polarity, 0.02, &mut edges);
        edges
    }

    #[test]
    fn a_blurred_step_is_found_within_five_hundredths_of_a_pixel() {
        let mut worst = 0.0f32;
        for k in 0..20 {
            let edge = 20.0 + k as f32 / 20.0;
            let e = edges_of(&blurred_step(48, edge, 0.2, 0.7), Polarity::Rising);
            assert_eq!(e.len(), 1, "one edge at {edge}: {e:?}");
            // Sample i of the profile is pixel i, whose centre is i + 0.5.
            worst = worst.max((e[0].pos + 0.5 - edge).abs());
        }
        assert!(worst <= 0.05, "worst error {worst} px");
    }

    #[test]
    fn polarity_and_contrast_filter_edges() {
        // A light bar from 10.25 to 30.6 on a dark ground: rising, then falling.
        let cover: Vec<f32> = (0..48)
            .map(|i| {
                let (a, b) = (i as f32, i as f32 + 1.0);
                (b.min(30.6) - a.max(10.25)).clamp(0.0, 1.0)
            })
            .collect();
        let p = blur(&cover);
        let all = edges_of(&p, Polarity::Any);
        assert_eq!(all.len(), 2);
        assert!(all[0].slope > 0.0 && all[1].slope < 0.0);
        let width = all[1].pos - all[0].pos;
        assert!((width - 20.35).abs() <= 0.05, "width {width}");
        assert_eq!(edges_of(&p, Polarity::Falling).len(), 1);
        let mut slope = vec![0.0; p.len()];
        let mut none = Vec::with_capacity(48);
        find_edges(&p, &mut slope, Polarity::Any, 0.9, &mut none);
        assert!(
            none.is_empty(),
            "a 1.0 step never has a slope of 0.9 after blurring"
        );
    }

    #[test]
    fn a_caliper_across_a_tilted_edge_measures_along_its_own_line() {
        // A plane whose luminance steps where x + 0.25 y = 40 (an edge tilted by
        // atan(0.25) from the vertical); a horizontal probe at row y crosses it at
        // x = 40 - 0.25 y. Pixel values are sampled coverage of that half-plane.
        let (w, h) = (80usize, 40usize);
        let mut plane = Array2::<f32>::zeros((h, w));
        for r in 0..h {
            let cover: Vec<f32> = (0..w)
                .map(|c| {
                    // Mean coverage over the pixel, 16 sub-rows.
                    (0..16)
                        .map(|s| {
                            let y = r as f32 + (s as f32 + 0.5) / 16.0;
                            (c as f32 + 1.0 - (40.0 - 0.25 * y)).clamp(0.0, 1.0)
                        })
                        .sum::<f32>()
                        / 16.0
                })
                .collect();
            for (c, v) in blur(&cover).into_iter().enumerate() {
                plane[[r, c]] = v;
            }
        }
        let mut points = Vec::new();
        for y in [10.5f32, 30.5] {
            let mut cal = Caliper::new([2.0, y, 78.0, y], 1, Polarity::Rising, 0.05);
            let e = cal.run(plane.view(), &ToPlane::IDENTITY).to_vec();
            assert_eq!(e.len(), 1);
            let p = cal.point(e[0].pos);
            assert!((p[0] - (40.0 - 0.25 * y)).abs() < 0.05, "edge at {p:?}");
            points.push(p);
        }
        let angle = (points[1][1] - points[0][1])
            .atan2(points[1][0] - points[0][0])
            .to_degrees();
        let truth = (1.0f32).atan2(-0.25).to_degrees();
        assert!((angle - truth).abs() < 0.2, "angle {angle} vs {truth}");
    }
}
