//! Golden-reference comparison: every frame is laid onto an image of a good part and
//! compared with it pixel by pixel.
//!
//! The model is a fixed first stage (`models/luma`: BT.601 luminance, Gaussian sigma 1)
//! at frame resolution. The head then
//! 1. registers the luma plane to the reference's ([`register`]: phase correlation for the
//!    translation, Lucas-Kanade for translation + rotation + scale, sub-pixel);
//! 2. compares the warped frame with the reference under a per-pixel tolerance
//!    ([`compare`]: base tolerance + the good references' spread + an edge allowance,
//!    scaled by the tolerance mask);
//! 3. reports 8-connected regions beyond the tolerance, per region class of the region
//!    map, as defects in frame coordinates (area in px, and mm² with `mm_per_px`).
//!
//! A frame that cannot be registered within the limits is NG naming registration, never
//! a silent OK. Every buffer is sized when the head is built; a frame allocates nothing.

mod compare;
mod luma;
mod phase;
mod plan;
mod register;

use std::sync::Arc;

use ndarray::ArrayView2;
use ort::session::SessionOutputs;

pub use luma::luma_of_rgb;
pub use plan::KIND;
pub use register::{Limits, RefPyramid, Registrar, RegistrationFailure, Similarity};

use self::compare::Comparer;
use super::{f32_output, map_frame_box, Evidence, FrameGeometry, FrameRef, Head, HeadError};
use crate::verdict::{Defect, Failure, Inspection};

/// `Failure::Rule` numbers of the registration failures.
pub(crate) struct RegistrationRules {
    pub no_fit: u16,
    pub not_converged: u16,
    pub shift: u16,
    pub angle: u16,
    pub scale: u16,
}

pub(crate) const REGISTRATION_RULES: RegistrationRules = RegistrationRules {
    no_fit: 0,
    not_converged: 1,
    shift: 2,
    angle: 3,
    scale: 4,
};

/// `Failure::Rule` number of "region class `c` differs": `DIFFERENCE_RULE + c`; the value
/// is the area beyond the tolerance in frame pixels.
pub(crate) const DIFFERENCE_RULE: u16 = 16;

/// The reference side, built once at plan time and shared by every worker.
pub struct GoldenReference {
    pub pyramid: Arc<RefPyramid>,
    /// Per-pixel tolerance (luma units), row-major; infinite where nothing is compared.
    pub tolerance: Vec<f32>,
    /// Per-pixel region class index.
    pub classes: Vec<u8>,
    pub class_names: Vec<String>,
    /// Whether good references widened the tolerance.
    pub references: bool,
}

impl std::fmt::Debug for GoldenReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoldenReference")
            .field("size", &self.pyramid.size())
            .field("levels", &self.pyramid.levels.len())
            .field("class_names", &self.class_names)
            .field("references", &self.references)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct GoldenConfig {
    pub reference: Arc<GoldenReference>,
    /// The model output holding the luma plane.
    pub output: String,
    pub limits: Limits,
    /// Huber threshold of registration residuals.
    pub huber: f32,
    pub base_tolerance: f32,
    /// Regions smaller than this (frame pixels) are not reported.
    pub min_area_px: f32,
    pub mm_per_px: Option<f32>,
    pub max_defects: usize,
}

pub struct GoldenHead {
    cfg: GoldenConfig,
    registrar: Registrar,
    comparer: Comparer,
    /// Per class: the area reported this frame.
    class_area: Vec<f32>,
    /// Evidence: half the difference/tolerance ratio per model-input pixel (0.5 = at the
    /// tolerance, as anomaly maps), carried back through the warp onto the frame.
    frame_map: Vec<f32>,
    map_box: [f32; 4],
    score: f32,
}

impl GoldenHead {
    pub fn new(cfg: GoldenConfig) -> Self {
        let r = &cfg.reference;
        let (w, h) = r.pyramid.size();
        GoldenHead {
            registrar: Registrar::new(Arc::clone(&r.pyramid), cfg.limits, cfg.huber),
            comparer: Comparer::new(w, h),
            class_area: vec![0.0; r.class_names.len()],
            frame_map: vec![0.0; w * h],
            map_box: [0.0; 4],
            score: 0.0,
            cfg,
        }
    }

    /// Decides one luma plane (reference size).
    pub fn inspect(
        &mut self,
        luma: ArrayView2<f32>,
        geometry: &FrameGeometry,
        out: &mut Inspection,
    ) {
        self.map_box = map_frame_box(geometry);
        let warp = match self.registrar.register(luma) {
            Ok(w) => w,
            Err(e) => {
                let (rule, value) = registration_failure(&e);
                self.score = 1.0;
                self.frame_map.fill(0.0);
                out.score = Some(1.0);
                out.fail(Failure::Rule { rule, value });
                return;
            }
        };
        let r = &self.cfg.reference;
        let worst =
            self.comparer
                .compare(luma, r.pyramid.levels[0].luma.view(), &r.tolerance, &warp);
        self.score = beyond(worst);
        out.score = Some(self.score);
        let to_frame = ToFrame::new(&warp, geometry, r.pyramid.size(), self.cfg.mm_per_px);
        let (min_area, cap) = (self.cfg.min_area_px, self.cfg.max_defects);
        self.class_area.fill(0.0);
        for class in 0..r.class_names.len() {
            let Ok(c) = u8::try_from(class) else { break };
            let area = &mut self.class_area[class];
            self.comparer.regions_of(&r.classes, c, |reg| {
                let a = reg.pixels as f32 * to_frame.px_area;
                if a < min_area {
                    return;
                }
                *area += a;
                if out.defects.len() == cap {
                    out.defects_truncated += 1;
                    return;
                }
                out.defects.push(to_frame.defect(&reg, class, a));
            });
        }
        for (class, &area) in self.class_area.iter().enumerate() {
            if area > 0.0 {
                let rule = DIFFERENCE_RULE.saturating_add(class as u16);
                out.fail(Failure::Rule { rule, value: area });
            }
        }
        self.map_onto_frame(&warp);
    }
}

impl GoldenHead {
    /// The ratio plane (reference pixels) seen from the frame: each model-input pixel
    /// takes the nearest reference pixel the inverse warp lands on.
    fn map_onto_frame(&mut self, warp: &Similarity) {
        let (w, h) = self.cfg.reference.pyramid.size();
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let (a, b) = warp.s;
        let n = a * a + b * b;
        let ratio = self.comparer.ratio();
        for (i, m) in self.frame_map.iter_mut().enumerate() {
            let (dx, dy) = (
                (i % w) as f64 - cx - warp.t.0,
                (i / w) as f64 - cy - warp.t.1,
            );
            // u = s^-1 (x - t), complex division.
            let (ux, uy) = ((a * dx + b * dy) / n + cx, (a * dy - b * dx) / n + cy);
            let (rx, ry) = (ux.round(), uy.round());
            *m = if rx >= 0.0 && ry >= 0.0 && rx < w as f64 && ry < h as f64 {
                0.5 * ratio
                    .get(ry as usize * w + rx as usize)
                    .copied()
                    .unwrap_or(0.0)
            } else {
                0.0
            };
        }
    }
}

/// How far past its tolerance a pixel is, on 0..1: 0 within it, 0.5 at twice it.
fn beyond(ratio: f32) -> f32 {
    if ratio > 1.0 {
        1.0 - 1.0 / ratio
    } else {
        0.0
    }
}

fn registration_failure(e: &RegistrationFailure) -> (u16, f32) {
    let r = &REGISTRATION_RULES;
    match *e {
        RegistrationFailure::NoFit => (r.no_fit, 0.0),
        RegistrationFailure::NotConverged { step_px } => (r.not_converged, step_px as f32),
        RegistrationFailure::ShiftBeyond { px } => (r.shift, px as f32),
        RegistrationFailure::AngleBeyond { deg } => (r.angle, deg as f32),
        RegistrationFailure::ScaleBeyond { scale } => (r.scale, scale as f32),
    }
}

/// Reference pixels → frame pixels: through the warp, then the preprocessing transform.
struct ToFrame {
    warp: Similarity,
    centre: (f64, f64),
    geometry: FrameGeometry,
    /// Frame pixels per reference pixel.
    px_area: f32,
    mm2_per_px: Option<f32>,
}

impl ToFrame {
    fn new(warp: &Similarity, g: &FrameGeometry, size: (usize, usize), mm: Option<f32>) -> Self {
        let s = g.transform.scale;
        ToFrame {
            warp: *warp,
            centre: ((size.0 as f64 - 1.0) / 2.0, (size.1 as f64 - 1.0) / 2.0),
            geometry: *g,
            px_area: (warp.scale() * warp.scale()) as f32 * s.0 * s.1,
            mm2_per_px: mm.map(|m| m * m),
        }
    }

    fn point(&self, x: f64, y: f64) -> (f32, f32) {
        let (c0, c1) = self.centre;
        let (fx, fy) = self.warp.apply((x - 0.5 - c0, y - 0.5 - c1));
        // Pixel edges: `x` is an edge coordinate, pixel centres sit at +0.5.
        self.geometry
            .transform
            .to_frame((fx + c0 + 0.5) as f32, (fy + c1 + 0.5) as f32)
    }

    fn defect(&self, r: &crate::heads::regions::Region, class: usize, area: f32) -> Defect {
        let corners = [
            self.point(r.x0 as f64, r.y0 as f64),
            self.point(r.x1 as f64, r.y0 as f64),
            self.point(r.x0 as f64, r.y1 as f64),
            self.point(r.x1 as f64, r.y1 as f64),
        ];
        let (mut x0, mut y0) = (f32::INFINITY, f32::INFINITY);
        let (mut x1, mut y1) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
        for (x, y) in corners {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        Defect {
            class: Some(class),
            bbox: [x0, y0, x1 - x0, y1 - y0],
            area_px: area,
            area_mm2: self.mm2_per_px.map(|k| area * k),
            score: beyond(r.max),
        }
    }
}

impl Head for GoldenHead {
    fn inspection(&self) -> Inspection {
        let mut ins = Inspection::with_capacity(0, self.cfg.max_defects);
        // One failure per region class, plus registration.
        ins.failures.reserve(self.class_area.len() + 1);
        ins
    }

    fn interpret(
        &mut self,
        outputs: &SessionOutputs<'_>,
        geometry: &FrameGeometry,
        _frame: FrameRef<'_>,
        out: &mut Inspection,
    ) -> Result<(), HeadError> {
        let name = &self.cfg.output;
        let (shape, data) = f32_output(outputs, name)?;
        let (w, h) = self.cfg.reference.pyramid.size();
        let shape_err = || HeadError::Shape {
            name: name.clone(),
            shape: shape.to_vec(),
            expected: "expected a luma plane [1, 1, H, W] at the reference's size",
        };
        match shape {
            [.., hh, ww] if *hh as usize == h && *ww as usize == w => {}
            _ => return Err(shape_err()),
        }
        let plane = data.get(..w * h).ok_or_else(shape_err)?;
        let luma = ArrayView2::from_shape((h, w), plane).map_err(|_| shape_err())?;
        self.inspect(luma, geometry, out);
        Ok(())
    }

    fn evidence(&self) -> Option<Evidence<'_>> {
        let (w, h) = self.cfg.reference.pyramid.size();
        Some(Evidence {
            score: self.score,
            map: &self.frame_map,
            classes: &[],
            width: w,
            height: h,
            frame_box: self.map_box,
        })
    }
}
