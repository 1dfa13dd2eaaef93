//! Registration: the similarity warp (translation, rotation, small scale) that lays a
//! frame's luma plane onto the reference.
//!
//! Coarse to fine: phase correlation on the coarsest pyramid level gives the translation
//! (robust to any shift up to a quarter of the frame, and to a few degrees of rotation);
//! then inverse-compositional Lucas-Kanade (Baker & Matthews) refines the four similarity
//! parameters level by level down to full resolution. Inverse compositional keeps the
//! reference's gradients fixed, so they are computed once at plan time; Huber weights keep
//! a defect (a missing print, a part left in the mould) from pulling the fit.
//!
//! Coordinates are centred: level `l` pixel `x` sits at `(x + 0.5) / 2^l - 0.5` of level
//! 0, so with the centre `c_l` defined the same way, centred coordinates of two levels
//! differ by exactly 2^l and a warp carries over by scaling its translation.

use ndarray::{Array2, ArrayView2};

use super::luma::{downsample, gradient, half};
use super::phase::PhaseCorrelator;

/// `x_frame = s * u + t` for centred reference coordinates `u`, with `s` a complex number
/// (scale and rotation) and `t` in level-0 pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub s: (f64, f64),
    pub t: (f64, f64),
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity {
        s: (1.0, 0.0),
        t: (0.0, 0.0),
    };

    /// The warp of a centred point (level 0).
    pub fn apply(&self, u: (f64, f64)) -> (f64, f64) {
        let (a, b) = self.s;
        (a * u.0 - b * u.1 + self.t.0, b * u.0 + a * u.1 + self.t.1)
    }

    pub fn angle_deg(&self) -> f64 {
        self.s.1.atan2(self.s.0).to_degrees()
    }

    pub fn scale(&self) -> f64 {
        self.s.0.hypot(self.s.1)
    }

    /// The translation's length in pixels (the frame centre's displacement).
    pub fn shift(&self) -> f64 {
        self.t.0.hypot(self.t.1)
    }
}

/// Why a frame could not be laid onto the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegistrationFailure {
    /// No translation peak, a singular fit (a flat frame) or no overlap.
    NoFit,
    /// The fit still moved by this many pixels after the last iteration.
    NotConverged {
        step_px: f64,
    },
    ShiftBeyond {
        px: f64,
    },
    AngleBeyond {
        deg: f64,
    },
    ScaleBeyond {
        scale: f64,
    },
}

/// Limits a registration must stay within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_shift_px: f64,
    pub max_angle_deg: f64,
    /// Largest |scale - 1|.
    pub max_scale: f64,
}

/// The reference side of one pyramid level (fixed after plan time).
#[derive(Debug)]
pub struct RefLevel {
    pub luma: Array2<f32>,
    gx: Array2<f32>,
    gy: Array2<f32>,
    /// The level's centre in its own pixels.
    centre: (f64, f64),
}

/// The reference pyramid, shared by every worker's [`Registrar`].
#[derive(Debug)]
pub struct RefPyramid {
    pub levels: Vec<RefLevel>,
}

/// Coarsest level's smaller side is kept at least this large (in pixels).
const MIN_LEVEL_SIDE: usize = 48;
const MAX_LEVELS: usize = 4;
/// Lucas-Kanade iterations per level (index 0 = full resolution, where they cost most);
/// a level stops early once a step
/// moves no point of the frame by more than [`STEP_DONE_PX`].
const ITERATIONS: [usize; MAX_LEVELS] = [12, 20, 30, 40];
const STEP_DONE_PX: f64 = 0.005;
/// A full-resolution step still larger than this after the last iteration: not converged.
const CONVERGED_PX: f64 = 0.05;

impl RefPyramid {
    pub fn new(reference: Array2<f32>) -> Self {
        let (h, w) = reference.dim();
        let mut planes = vec![reference];
        let mut dim = (w, h);
        while planes.len() < MAX_LEVELS {
            let next = half(dim);
            if next.0.min(next.1) < MIN_LEVEL_SIDE {
                break;
            }
            let mut p = Array2::<f32>::zeros((next.1, next.0));
            if let Some(last) = planes.last() {
                downsample(last.view(), p.view_mut());
            }
            planes.push(p);
            dim = next;
        }
        let c0 = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let levels = planes
            .into_iter()
            .enumerate()
            .map(|(l, luma)| {
                let (gx, gy) = gradient(luma.view());
                let k = f64::from(1u32 << l);
                RefLevel {
                    luma,
                    gx,
                    gy,
                    centre: ((c0.0 + 0.5) / k - 0.5, (c0.1 + 0.5) / k - 0.5),
                }
            })
            .collect();
        RefPyramid { levels }
    }

    pub fn size(&self) -> (usize, usize) {
        let (h, w) = self.levels[0].luma.dim();
        (w, h)
    }
}

/// One worker's registration state: the frame pyramid and the correlator, sized once.
pub struct Registrar {
    reference: std::sync::Arc<RefPyramid>,
    /// Frame levels 1.. (level 0 is the model output itself).
    frame_levels: Vec<Array2<f32>>,
    correlator: PhaseCorrelator,
    limits: Limits,
    /// Huber threshold on luma residuals.
    huber: f32,
}

impl Registrar {
    pub fn new(reference: std::sync::Arc<RefPyramid>, limits: Limits, huber: f32) -> Self {
        let frame_levels = reference.levels[1..]
            .iter()
            .map(|l| Array2::zeros(l.luma.dim()))
            .collect();
        let coarsest = &reference.levels[reference.levels.len() - 1];
        let correlator = PhaseCorrelator::new(coarsest.luma.view());
        Registrar {
            reference,
            frame_levels,
            correlator,
            limits,
            huber,
        }
    }

    /// The warp laying `frame` (same size as the reference) onto the reference.
    pub fn register(&mut self, frame: ArrayView2<f32>) -> Result<Similarity, RegistrationFailure> {
        if frame.dim() != self.reference.levels[0].luma.dim() {
            return Err(RegistrationFailure::NoFit);
        }
        for l in 0..self.frame_levels.len() {
            let (src, dst) = self.frame_levels.split_at_mut(l);
            let src = if l == 0 { frame } else { src[l - 1].view() };
            downsample(src, dst[0].view_mut());
        }
        let top = self.reference.levels.len() - 1;
        let coarse = if top == 0 {
            frame
        } else {
            self.frame_levels[top - 1].view()
        };
        let shift = self
            .correlator
            .correlate(coarse)
            .ok_or(RegistrationFailure::NoFit)?;
        let k = f64::from(1u32 << top);
        let mut warp = Similarity {
            s: (1.0, 0.0),
            t: (shift.dx * k, shift.dy * k),
        };
        let mut step = f64::INFINITY;
        for l in (0..=top).rev() {
            let view = if l == 0 {
                frame
            } else {
                self.frame_levels[l - 1].view()
            };
            let level = &self.reference.levels[l];
            step = lucas_kanade(level, view, l, &mut warp, ITERATIONS[l], self.huber)?;
        }
        if step > CONVERGED_PX {
            return Err(RegistrationFailure::NotConverged { step_px: step });
        }
        let lim = &self.limits;
        if warp.shift() > lim.max_shift_px {
            return Err(RegistrationFailure::ShiftBeyond { px: warp.shift() });
        }
        if warp.angle_deg().abs() > lim.max_angle_deg {
            return Err(RegistrationFailure::AngleBeyond {
                deg: warp.angle_deg(),
            });
        }
        if (warp.scale() - 1.0).abs() > lim.max_scale {
            return Err(RegistrationFailure::ScaleBeyond {
                scale: warp.scale(),
            });
        }
        Ok(warp)
    }
}

/// Bilinear sample of `img` at `(x, y)`; `None` outside the pixel centres' hull.
#[inline]
pub fn bilinear(img: &ArrayView2<f32>, x: f64, y: f64) -> Option<f32> {
    let (h, w) = img.dim();
    if !(x >= 0.0 && y >= 0.0 && x <= (w - 1) as f64 && y <= (h - 1) as f64) {
        return None;
    }
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let top = img[[y0, x0]] + fx * (img[[y0, x1]] - img[[y0, x0]]);
    let bottom = img[[y1, x0]] + fx * (img[[y1, x1]] - img[[y1, x0]]);
    Some(top + fy * (bottom - top))
}

// Index loops read as the matrix algebra they are (symmetric fill, elimination).
#[allow(clippy::needless_range_loop)]
/// Inverse-compositional Gauss-Newton on one level; returns the last step's largest
/// displacement in level-0 pixels.
fn lucas_kanade(
    level: &RefLevel,
    frame: ArrayView2<f32>,
    l: usize,
    warp: &mut Similarity,
    iterations: usize,
    huber: f32,
) -> Result<f64, RegistrationFailure> {
    let k = f64::from(1u32 << l);
    let (h, w) = level.luma.dim();
    let (cx, cy) = level.centre;
    let radius = cx.hypot(cy);
    let mut last = f64::INFINITY;
    for _ in 0..iterations {
        let (a, b) = warp.s;
        let (tx, ty) = (warp.t.0 / k, warp.t.1 / k);
        let mut hess = [[0f64; 4]; 4];
        let mut rhs = [0f64; 4];
        let mut used = 0usize;
        for y in 1..h.saturating_sub(1) {
            let uy = y as f64 - cy;
            for x in 1..w.saturating_sub(1) {
                let (gx, gy) = (level.gx[[y, x]], level.gy[[y, x]]);
                if gx == 0.0 && gy == 0.0 {
                    continue;
                }
                let ux = x as f64 - cx;
                let fx = a * ux - b * uy + tx + cx;
                let fy = b * ux + a * uy + ty + cy;
                let Some(v) = bilinear(&frame, fx, fy) else {
                    continue;
                };
                let e = v - level.luma[[y, x]];
                let wgt = if e.abs() <= huber {
                    1.0
                } else {
                    huber / e.abs()
                };
                let (gx, gy) = (f64::from(gx), f64::from(gy));
                let sd = [gx * ux + gy * uy, gy * ux - gx * uy, gx, gy];
                let (wgt, e) = (f64::from(wgt), f64::from(e));
                for i in 0..4 {
                    rhs[i] += wgt * sd[i] * e;
                    for j in i..4 {
                        hess[i][j] += wgt * sd[i] * sd[j];
                    }
                }
                used += 1;
            }
        }
        if used < 16 {
            return Err(RegistrationFailure::NoFit);
        }
        for i in 0..4 {
            for j in 0..i {
                hess[i][j] = hess[j][i];
            }
        }
        let d = solve4(hess, rhs).ok_or(RegistrationFailure::NoFit)?;
        // W <- W o W(d)^-1: s / s_d, t - s * t_d / s_d (complex arithmetic).
        let sd = (1.0 + d[0], d[1]);
        let td = (d[2], d[3]);
        let s = warp.s;
        let s_new = cdiv(s, sd);
        let t_shift = cmul(s_new, td);
        warp.s = s_new;
        warp.t = (warp.t.0 - t_shift.0 * k, warp.t.1 - t_shift.1 * k);
        last = ((d[0].hypot(d[1])) * radius + d[2].hypot(d[3])) * k;
        if !last.is_finite() {
            return Err(RegistrationFailure::NoFit);
        }
        if last < STEP_DONE_PX {
            break;
        }
    }
    Ok(last)
}

fn cmul(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn cdiv(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let n = b.0 * b.0 + b.1 * b.1;
    ((a.0 * b.0 + a.1 * b.1) / n, (a.1 * b.0 - a.0 * b.1) / n)
}

#[allow(clippy::needless_range_loop)]
/// Solves the 4x4 system by Gaussian elimination with partial pivoting; `None` when it is
/// (near) singular.
fn solve4(mut m: [[f64; 4]; 4], mut v: [f64; 4]) -> Option<[f64; 4]> {
    let scale = m.iter().flatten().fold(0f64, |a, x| a.max(x.abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    for c in 0..4 {
        let p = (c..4).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        if m[p][c].abs() <= scale * 1e-12 {
            return None;
        }
        m.swap(c, p);
        v.swap(c, p);
        for r in c + 1..4 {
            let f = m[r][c] / m[c][c];
            for k in c..4 {
                m[r][k] -= f * m[c][k];
            }
            v[r] -= f * v[c];
        }
    }
    let mut x = [0f64; 4];
    for c in (0..4).rev() {
        let s: f64 = (c + 1..4).map(|k| m[c][k] * x[k]).sum();
        x[c] = (v[c] - s) / m[c][c];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::phase::tests::texture;
    use super::*;

    const LIMITS: Limits = Limits {
        max_shift_px: 24.0,
        max_angle_deg: 3.0,
        max_scale: 0.02,
    };

    /// A texture seen through `truth` (frame = reference moved by the warp).
    fn moved(w: usize, h: usize, truth: Similarity) -> Array2<f32> {
        let c = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        // Inverse warp: reference point u = s^-1 (x - c - t).
        let inv = cdiv((1.0, 0.0), truth.s);
        texture(w, h, |x, y| {
            let p = cmul(inv, (x - c.0 - truth.t.0, y - c.1 - truth.t.1));
            (p.0 + c.0, p.1 + c.1)
        })
    }

    fn similarity(dx: f64, dy: f64, deg: f64, scale: f64) -> Similarity {
        let r = deg.to_radians();
        Similarity {
            s: (scale * r.cos(), scale * r.sin()),
            t: (dx, dy),
        }
    }

    #[test]
    fn shift_rotation_and_scale_are_recovered_sub_pixel() {
        let (w, h) = (256, 208);
        let reference = texture(w, h, |x, y| (x, y));
        let pyramid = Arc::new(RefPyramid::new(reference));
        let mut reg = Registrar::new(pyramid, LIMITS, 0.05);
        for truth in [
            similarity(3.37, -1.62, 1.5, 1.01),
            similarity(-17.3, 12.8, -2.0, 0.99),
            similarity(0.21, 0.4, 0.0, 1.0),
            similarity(19.6, 9.1, 0.7, 1.005),
        ] {
            let frame = moved(w, h, truth);
            let found = reg.register(frame.view()).unwrap();
            let terr = (found.t.0 - truth.t.0).hypot(found.t.1 - truth.t.1);
            let aerr = (found.angle_deg() - truth.angle_deg()).abs();
            let serr = (found.scale() - truth.scale()).abs();
            eprintln!(
                "{truth:?}: centre off {terr:.4} px, angle off {aerr:.4} deg, scale off {serr:.5}"
            );
            assert!(
                terr <= 0.1 && aerr <= 0.02 && serr <= 0.001,
                "truth {truth:?}: found {found:?} (centre off {terr:.4} px, angle off {aerr:.4} deg, scale off {serr:.5})"
            );
        }
    }

    #[test]
    fn beyond_the_limits_is_a_failure_not_a_fit() {
        let (w, h) = (256, 208);
        let reference = texture(w, h, |x, y| (x, y));
        let pyramid = Arc::new(RefPyramid::new(reference));
        let mut reg = Registrar::new(
            pyramid,
            Limits {
                max_shift_px: 10.0,
                ..LIMITS
            },
            0.05,
        );
        let frame = moved(w, h, similarity(15.0, 0.0, 0.0, 1.0));
        assert!(matches!(
            reg.register(frame.view()),
            Err(RegistrationFailure::ShiftBeyond { px }) if (px - 15.0).abs() < 0.2
        ));
        let frame = moved(w, h, similarity(1.0, 0.0, 2.5, 1.0));
        reg.limits.max_angle_deg = 2.0;
        assert!(matches!(
            reg.register(frame.view()),
            Err(RegistrationFailure::AngleBeyond { .. })
        ));
        let flat = Array2::from_elem((h, w), 0.5f32);
        assert!(reg.register(flat.view()).is_err());
    }

    #[test]
    fn solve4_solves_and_refuses_singular_systems() {
        let m = [
            [4.0, 1.0, 0.0, 0.0],
            [1.0, 3.0, 0.5, 0.0],
            [0.0, 0.5, 2.0, 0.1],
            [0.0, 0.0, 0.1, 1.0],
        ];
        let x = [1.0, -2.0, 0.5, 3.0];
        let v = [0, 1, 2, 3].map(|r| (0..4).map(|c| m[r][c] * x[c]).sum::<f64>());
        let got = solve4(m, v).unwrap();
        assert!(got.iter().zip(x).all(|(a, b)| (a - b).abs() < 1e-9));
        assert!(solve4([[0.0; 4]; 4], v).is_none());
    }
}
