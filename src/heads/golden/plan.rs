//! `[head] kind = "golden"`: its `[head]`/`[rules]` keys, the checks `validate` runs, and
//! the reference side built once at plan time (reference luma, pyramid, tolerance map,
//! region classes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, Zip};
use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use super::compare::{tolerance_map, Comparer, ToleranceParts};
use super::luma::luma_of_rgb;
use super::register::{Limits, RefPyramid, Registrar, RegistrationFailure};
use super::{GoldenConfig, GoldenHead, GoldenReference, DIFFERENCE_RULE, REGISTRATION_RULES};
use crate::config::ScenarioFile;
use crate::engine::{EngineError, ModelInfo};
use crate::heads::plan_support::check_mm_per_px;
use crate::heads::{
    describe_other, plan_boilerplate, FailureText, Head, HeadKind, HeadPlan, PlanInput,
};
use crate::preprocess::{ColorOrder, Fit, PreprocessSpec};
use crate::verdict::Failure;

pub const KIND: HeadKind = HeadKind {
    name: "golden",
    head_keys: || serde_introspect::<HeadKeys>(),
    rules_keys: || serde_introspect::<RulesKeys>(),
    instead: &[],
    preprocess_defaults: luma_defaults,
    plan: |input| plan(input).map(|c| Box::new(c) as Box<dyn HeadPlan>),
};

/// Defaults of the kind (the whole frame, RGB 0..1, as `models/luma` expects):
const DEFAULT_OUTPUT: &str = "luma";
const DEFAULT_MAX_SHIFT_PX: f32 = 24.0;
const DEFAULT_MAX_ANGLE_DEG: f32 = 3.0;
const DEFAULT_MAX_SCALE: f32 = 0.02;
const DEFAULT_TOLERANCE: f32 = 0.1;
const DEFAULT_EDGE_SLACK_PX: f32 = 0.5;
/// The class every pixel has when no region map is given.
const DEFAULT_CLASS: &str = "difference";
const MAX_DEFECTS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadKeys {
    /// Image of a good part at frame size (PNG, JPEG, BMP).
    reference: Option<PathBuf>,
    /// A folder of more good images: their registered deviation from the reference is
    /// normal variation, added to the tolerance pixel by pixel.
    references: Option<PathBuf>,
    /// Greyscale image at frame size: 0 ignores a pixel, 255 full sensitivity, values
    /// between scale the tolerance by 255 / value.
    tolerance_mask: Option<PathBuf>,
    /// Greyscale image at frame size whose pixel values name region classes.
    regions: Option<PathBuf>,
    /// `[[head.region]] value = 1, name = "copper", tolerance = 0.1`.
    region: Option<Vec<RegionKey>>,
    /// The model output holding the luma plane (default `luma`).
    output: Option<String>,
    max_shift_px: Option<f32>,
    max_angle_deg: Option<f32>,
    max_scale: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionKey {
    value: u32,
    name: String,
    /// This region's base tolerance instead of `[rules] tolerance`.
    tolerance: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesKeys {
    /// Base per-pixel tolerance in luma units (0..1).
    tolerance: Option<f32>,
    /// Slack on edges, in pixels of misregistration.
    edge_slack_px: Option<f32>,
    min_defect_area_px: Option<u32>,
    min_defect_area_mm2: Option<f32>,
    mm_per_px: Option<f32>,
}

/// The luma stage reads the frame at its own size as RGB in 0..1; `size` cannot default
/// (the model's input is dynamic), the rest does.
fn luma_defaults(f: &ScenarioFile, _: &ModelInfo, spec: &mut PreprocessSpec) {
    let p = &f.preprocess;
    if p.fit.is_none() {
        spec.fit = Fit::Stretch;
    }
    if p.color.is_none() {
        spec.color = ColorOrder::Rgb;
    }
}

fn plan(input: &mut PlanInput<'_>) -> Option<GoldenConfig> {
    let (h, r) = (input.head::<HeadKeys>(), input.rules::<RulesKeys>());
    let (h, r) = (h?, r?);
    let output = h.output.clone().unwrap_or_else(|| DEFAULT_OUTPUT.into());
    check_output(input, &output);
    let spec = input.preprocess?;
    check_preprocess(input, spec);
    let limits = limits(input, &h);
    let (tolerance, edge_slack_px, min_area_px) = rules(input, &r);
    let Some(reference_path) = h.reference.as_deref() else {
        input.error(
            "head.reference",
            "is missing: give the image of a good part at frame size, e.g. reference = \"ref.png\"",
        );
        return None;
    };
    let size = (spec.width, spec.height);
    let reference = read_luma(input, "head.reference", reference_path, size)?;
    let (names, class_tolerance, classes) = region_classes(input, &h, size, tolerance)?;
    let sensitivity = match &h.tolerance_mask {
        Some(p) => Some(read_grey(input, "head.tolerance_mask", p, size)?.mapv(|v| v / 255.0)),
        None => None,
    };
    let pyramid = Arc::new(RefPyramid::new(reference));
    let huber = huber_of(tolerance);
    let spread = match &h.references {
        Some(dir) => Some(spread(input, dir, &pyramid, size, limits, huber)?),
        None => None,
    };
    let reference = pyramid.levels[0].luma.view();
    let tolerance_px = tolerance_map(&ToleranceParts {
        reference,
        classes: &classes,
        class_tolerance: &class_tolerance,
        spread: spread.as_ref().map(|s| s.view()),
        edge_slack_px,
        sensitivity: sensitivity.as_ref().map(|s| s.view()),
    });
    Some(GoldenConfig {
        reference: Arc::new(GoldenReference {
            pyramid,
            tolerance: tolerance_px,
            classes,
            class_names: names,
            references: spread.is_some(),
        }),
        output,
        limits,
        huber,
        base_tolerance: tolerance,
        min_area_px,
        mm_per_px: r.mm_per_px,
        max_defects: MAX_DEFECTS,
    })
}

/// Residuals beyond this are down-weighted in registration: three base tolerances, so a
/// defect pulls the fit no harder than noise does.
fn huber_of(tolerance: f32) -> f32 {
    (3.0 * tolerance).clamp(0.02, 0.3)
}

fn check_output(input: &mut PlanInput<'_>, name: &str) {
    let model = input.model;
    let ok = model
        .output(name)
        .is_some_and(|o| o.is_float32() && o.shape.len() >= 2);
    if !ok {
        input.error(
            "head.output",
            format!(
                "a golden head reads a float32 luma plane [1, 1, H, W] named `{name}` (models/luma/luma.onnx gives `luma`); this model's outputs are {}",
                model.output_names()
            ),
        );
    }
}

/// The luma model expects the frame itself: RGB scaled to 0..1, no crop, no normalising.
fn check_preprocess(input: &mut PlanInput<'_>, spec: &PreprocessSpec) {
    if spec.fit == Fit::CenterCrop && spec.crop_fraction < 1.0 {
        input.error(
            "preprocess.crop_fraction",
            "a golden head compares the whole frame (or roi) at its own size: use fit = \"stretch\" and size = the frame size",
        );
    }
    if spec.color != ColorOrder::Rgb {
        input.error(
            "preprocess.color",
            "the luma stage reads RGB (its BT.601 weights are per channel): use color = \"rgb\"",
        );
    }
    if (spec.scale - 1.0 / 255.0).abs() > 1e-6 {
        input.error(
            "preprocess.scale",
            "the luma stage reads 0..1: use scale = 1/255 (0.00392156862745098)",
        );
    }
    if spec.mean != [0.0; 3] {
        input.error("preprocess.mean", "the luma stage reads 0..1: use mean = 0");
    }
    if spec.std != [1.0; 3] {
        input.error("preprocess.std", "the luma stage reads 0..1: use std = 1");
    }
}

fn limits(input: &mut PlanInput<'_>, h: &HeadKeys) -> Limits {
    let mut positive = |key: &str, v: Option<f32>, default: f32, what: &str| {
        let v = v.unwrap_or(default);
        if !(v.is_finite() && v > 0.0) {
            input.error(key, format!("must be a positive number ({what})"));
        }
        f64::from(v)
    };
    Limits {
        max_shift_px: positive(
            "head.max_shift_px",
            h.max_shift_px,
            DEFAULT_MAX_SHIFT_PX,
            "pixels; default 24",
        ),
        max_angle_deg: positive(
            "head.max_angle_deg",
            h.max_angle_deg,
            DEFAULT_MAX_ANGLE_DEG,
            "degrees; default 3",
        ),
        max_scale: positive(
            "head.max_scale",
            h.max_scale,
            DEFAULT_MAX_SCALE,
            "largest |scale - 1|; default 0.02",
        ),
    }
}

/// Base tolerance, edge slack and the minimum area in frame pixels.
fn rules(input: &mut PlanInput<'_>, r: &RulesKeys) -> (f32, f32, f32) {
    let tolerance = r.tolerance.unwrap_or(DEFAULT_TOLERANCE);
    if !(tolerance.is_finite() && tolerance > 0.0 && tolerance <= 1.0) {
        input.error(
            "rules.tolerance",
            "must be in (0, 1]: a luma difference (0..1) tolerated everywhere; default 0.1",
        );
    }
    let slack = r.edge_slack_px.unwrap_or(DEFAULT_EDGE_SLACK_PX);
    if !(slack.is_finite() && slack >= 0.0) {
        input.error(
            "rules.edge_slack_px",
            "must be 0 or more: pixels of misregistration tolerated on edges; default 0.5",
        );
    }
    check_mm_per_px(input, r.mm_per_px);
    let mut min_area = r.min_defect_area_px.unwrap_or(0) as f32;
    if let Some(mm2) = r.min_defect_area_mm2 {
        match r.mm_per_px {
            _ if !(mm2.is_finite() && mm2 >= 0.0) => input.error(
                "rules.min_defect_area_mm2",
                "must be a number of square millimetres (0 or more)",
            ),
            Some(s) if s.is_finite() && s > 0.0 => min_area = min_area.max(mm2 / (s * s)),
            _ => input.error(
                "rules.min_defect_area_mm2",
                "needs `mm_per_px` (the width of one frame pixel in millimetres) to convert it to pixels",
            ),
        }
    }
    (tolerance, slack, min_area)
}

fn open_image(
    input: &mut PlanInput<'_>,
    key: &str,
    path: &Path,
    size: (usize, usize),
) -> Option<image::DynamicImage> {
    let full = input.file.resolve(path);
    open_resolved(input, key, &full, size)
}

/// [`open_image`] of a path resolved already (a file listed in `references`).
fn open_resolved(
    input: &mut PlanInput<'_>,
    key: &str,
    full: &Path,
    size: (usize, usize),
) -> Option<image::DynamicImage> {
    let img = match image::open(full) {
        Ok(i) => i,
        Err(e) => {
            input.error(
                key,
                format!(
                    "cannot read {}: {e}; give a PNG, JPEG or BMP (relative to this file)",
                    full.display()
                ),
            );
            return None;
        }
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    if (w, h) != size {
        input.error(
            key,
            format!(
                "{} is {w}x{h} but the frame the head compares ([preprocess] size) is {}x{}; the reference images must be the frame size (set size = [{w}, {h}] if the frames are)",
                full.display(),
                size.0,
                size.1
            ),
        );
        return None;
    }
    Some(img)
}

fn read_luma(
    input: &mut PlanInput<'_>,
    key: &str,
    path: &Path,
    size: (usize, usize),
) -> Option<Array2<f32>> {
    open_image(input, key, path, size).map(|i| luma_of_rgb(&i.to_rgb8()))
}

fn read_grey(
    input: &mut PlanInput<'_>,
    key: &str,
    path: &Path,
    size: (usize, usize),
) -> Option<Array2<f32>> {
    let img = open_image(input, key, path, size)?.to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Array2::from_shape_vec((h, w), img.into_raw().into_iter().map(f32::from).collect()).ok()
}

/// Region names, each region's base tolerance, and each pixel's region index.
fn region_classes(
    input: &mut PlanInput<'_>,
    h: &HeadKeys,
    size: (usize, usize),
    tolerance: f32,
) -> Option<(Vec<String>, Vec<f32>, Vec<u8>)> {
    let n = size.0 * size.1;
    let (path, table) = match (&h.regions, h.region.as_deref()) {
        (None, None) => {
            return Some((vec![DEFAULT_CLASS.into()], vec![tolerance], vec![0; n]));
        }
        (None, Some(_)) => {
            input.error(
                "head.region",
                "names region values, but `regions` (the region map image) is not set",
            );
            return None;
        }
        (Some(_), None | Some([])) => {
            input.error(
                "head.regions",
                "needs a table naming its values: [[head.region]] value = 1, name = \"copper\"",
            );
            return None;
        }
        (Some(p), Some(t)) => (p, t),
    };
    let mut names = Vec::new();
    let mut tolerances = Vec::new();
    let mut index_of = [None::<u8>; 256];
    let start = input.errs.len();
    for r in table {
        let value = match u8::try_from(r.value) {
            Ok(v) => v,
            Err(_) => {
                input.error(
                    "head.region",
                    format!("value {} is not a grey level: give 0..255", r.value),
                );
                continue;
            }
        };
        if r.name.trim().is_empty() {
            input.error("head.region", format!("value {value} has an empty name"));
        } else if index_of[value as usize].is_some() {
            input.error("head.region", format!("value {value} is named twice"));
        } else if names.contains(&r.name) {
            input.error(
                "head.region",
                format!(
                    "name `{}` is given to two values; give each region its own name",
                    r.name
                ),
            );
        }
        let t = r.tolerance.unwrap_or(tolerance);
        if !(t.is_finite() && t > 0.0 && t <= 1.0) {
            input.error(
                "head.region",
                format!("`{}`: tolerance must be in (0, 1] (luma units)", r.name),
            );
        }
        if names.len() == usize::from(u8::MAX) {
            input.error("head.region", "more than 255 regions");
            break;
        }
        index_of[value as usize] = u8::try_from(names.len()).ok();
        names.push(r.name.clone());
        tolerances.push(t);
    }
    if input.errs.len() > start {
        return None;
    }
    let map = read_grey(input, "head.regions", path, size)?;
    let mut unnamed: Vec<u8> = Vec::new();
    let classes: Vec<u8> = map
        .iter()
        .map(|&v| {
            let v = v as u8;
            index_of[v as usize].unwrap_or_else(|| {
                if !unnamed.contains(&v) {
                    unnamed.push(v);
                }
                0
            })
        })
        .collect();
    if !unnamed.is_empty() {
        unnamed.sort_unstable();
        input.error(
            "head.regions",
            format!(
                "has pixel values {unnamed:?} that no [[head.region]] names; name them (to ignore pixels, set 0 in tolerance_mask)"
            ),
        );
        return None;
    }
    Some((names, tolerances, classes))
}

/// The largest registered deviation of each good reference from the reference.
fn spread(
    input: &mut PlanInput<'_>,
    dir: &Path,
    pyramid: &Arc<RefPyramid>,
    size: (usize, usize),
    limits: Limits,
    huber: f32,
) -> Option<Array2<f32>> {
    let full = input.file.resolve(dir);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&full) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["png", "jpg", "jpeg", "bmp"].contains(&e.to_ascii_lowercase().as_str())
                })
            })
            .collect(),
        Err(e) => {
            input.error(
                "head.references",
                format!(
                    "cannot list {}: {e}; give a folder of good images",
                    full.display()
                ),
            );
            return None;
        }
    };
    files.sort();
    if files.is_empty() {
        input.error(
            "head.references",
            format!("{} holds no PNG, JPEG or BMP images", full.display()),
        );
        return None;
    }
    let (w, h) = size;
    let mut registrar = Registrar::new(Arc::clone(pyramid), limits, huber);
    let mut comparer = Comparer::new(w, h);
    let reference = pyramid.levels[0].luma.view();
    // Ratio against a tolerance of 1 is the plain absolute difference.
    let unit = vec![1.0f32; w * h];
    let mut spread = Array2::<f32>::zeros((h, w));
    for file in &files {
        let luma = luma_of_rgb(&open_resolved(input, "head.references", file, size)?.to_rgb8());
        let warp = match registrar.register(luma.view()) {
            Ok(warp) => warp,
            Err(e) => {
                input.error(
                    "head.references",
                    format!(
                        "{} cannot be laid onto the reference ({}); every reference must show a good part in the usual position",
                        file.display(),
                        describe_registration(&e)
                    ),
                );
                return None;
            }
        };
        comparer.compare(luma.view(), reference, &unit, &warp);
        let diff = Array2::from_shape_vec((h, w), comparer.ratio().to_vec()).ok()?;
        Zip::from(&mut spread)
            .and(&diff)
            .for_each(|s, &d| *s = s.max(d));
    }
    Some(spread)
}

/// A registration failure in words.
pub(crate) fn describe_registration(f: &RegistrationFailure) -> String {
    match *f {
        RegistrationFailure::NoFit => {
            "no fit: the frame shows too little structure, or not the reference's part".into()
        }
        RegistrationFailure::NotConverged { step_px } => {
            format!("the fit did not settle (still moving {step_px:.2} px)")
        }
        RegistrationFailure::ShiftBeyond { px } => format!("shifted {px:.1} px"),
        RegistrationFailure::AngleBeyond { deg } => format!("rotated {deg:.2} deg"),
        RegistrationFailure::ScaleBeyond { scale } => format!("scaled {scale:.4}"),
    }
}

impl HeadPlan for GoldenConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn build(&self, _intra_threads: usize) -> Result<Box<dyn Head>, EngineError> {
        Ok(Box::new(GoldenHead::new(self.clone())))
    }

    fn preallocated_outputs(&self) -> Vec<(String, Vec<usize>)> {
        // The luma plane is the frame's size, which the reference fixes.
        let (w, h) = self.reference.pyramid.size();
        vec![(self.output.clone(), vec![1, 1, h, w])]
    }

    fn outline(&self, _labels: &[String]) -> String {
        let (w, h) = self.reference.pyramid.size();
        format!(
            "golden reference {w}x{h}, {} region class{} ({}), tolerance {}{}",
            self.reference.class_names.len(),
            if self.reference.class_names.len() == 1 {
                ""
            } else {
                "es"
            },
            self.reference.class_names.join(", "),
            self.base_tolerance,
            if self.reference.references {
                " + the good references' spread"
            } else {
                ""
            }
        )
    }

    fn class_names(&self) -> Option<Vec<String>> {
        Some(self.reference.class_names.clone())
    }

    fn describe(&self, failure: &Failure, _labels: &[String]) -> FailureText {
        let Failure::Rule { rule, value } = *failure else {
            return describe_other(failure);
        };
        let lim = &self.limits;
        let registration = |detail: String, excess: f32| FailureText {
            rule_kind: "registration",
            rule_name: "registration".into(),
            detail,
            excess,
        };
        match rule {
            r if r == REGISTRATION_RULES.no_fit => registration(
                "the frame could not be laid onto the reference: too little structure, or not the reference's part".into(),
                0.0,
            ),
            r if r == REGISTRATION_RULES.not_converged => registration(
                format!("registration did not settle (last step {value:.2} px)"),
                0.0,
            ),
            r if r == REGISTRATION_RULES.shift => registration(
                format!("the part is shifted {value:.1} px; max_shift_px is {}", lim.max_shift_px),
                crate::heads::relative_excess(value, lim.max_shift_px as f32),
            ),
            r if r == REGISTRATION_RULES.angle => registration(
                format!("the part is rotated {value:.2} deg; max_angle_deg is {}", lim.max_angle_deg),
                crate::heads::relative_excess(value.abs(), lim.max_angle_deg as f32),
            ),
            r if r == REGISTRATION_RULES.scale => registration(
                format!("the part is scaled {value:.4}; max_scale is {}", lim.max_scale),
                crate::heads::relative_excess((value - 1.0).abs(), lim.max_scale as f32),
            ),
            r if r >= DIFFERENCE_RULE => {
                let class = usize::from(r - DIFFERENCE_RULE);
                let name = self
                    .reference
                    .class_names
                    .get(class)
                    .cloned()
                    .unwrap_or_else(|| format!("class_{class}"));
                FailureText {
                    rule_kind: "tolerance",
                    rule_name: name.clone(),
                    detail: format!(
                        "{value:.0} px in {name} differ from the reference beyond the tolerance (regions of at least {} px count)",
                        self.min_area_px.max(1.0)
                    ),
                    excess: crate::heads::relative_excess(value, self.min_area_px.max(1.0)),
                }
            }
            _ => describe_other(failure),
        }
    }

    plan_boilerplate!();
}
