//! How good is an anomaly scenario on a labelled data set in the MVTec AD layout (`test/good`, `test/<defect>`, `ground_truth/<defect>/*_mask.png`)?
//!
//! Every test image goes through the scenario's own worker — the same preprocessing,
//! session and anomaly head as `lineside run` — so the figures describe what runs on the
//! line. Reported per defect type and overall: image AUROC, pixel AUROC, AUPRO (FPR limit
//! 0.3), and the confusion matrix / F1 of the scenario's OK/NG decision. At the
//! scenario's own threshold also what a line engineer asks of frame-sized data: the
//! false-reject rate on good images, and the share of defects found (NG, with a reported
//! region overlapping the mask) per defect size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget};
use serde::Serialize;

use super::metrics::{aupro, auroc, label_regions, Confusion};
use super::EvalError;
use crate::dataset::{labelled_images, load_mask, load_rgb, LabelledImage};
use crate::frame::{FrameLayout, PixelFormat};
use crate::heads::AnomalyConfig;
use crate::pipeline::Worker;
use crate::scenario::ScenarioPlan;
use crate::verdict::Defect;
use crate::verdict::Verdict;

pub const FPR_LIMIT: f64 = 0.3;

/// Maps larger than this many pixels are kept for the pixel metrics on a regular grid
/// of about this many points (a 5 MP map per image would not fit in memory over a data
/// set of frames).
pub const PIXEL_SAMPLES: usize = 1 << 18;

/// Lower edges of the defect-size classes: mm² with `mm_per_px`, else frame pixels.
const SIZE_EDGES_MM2: [f64; 5] = [0.0, 1.0, 3.0, 10.0, 30.0];
const SIZE_EDGES_PX: [f64; 5] = [0.0, 16.0, 64.0, 256.0, 1024.0];

/// Metrics over one group of images (one defect type plus the good ones, or all).
#[derive(Debug, Clone, Serialize)]
pub struct GroupMetrics {
    pub images: usize,
    pub defective: usize,
    pub image_auroc: Option<f64>,
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
    pub confusion: Confusion,
    pub f1: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnomalyReport {
    pub scenario: String,
    pub data: PathBuf,
    pub model: String,
    pub model_sha256: String,
    /// The score threshold the OK/NG decision used (normalised scale).
    pub threshold: f32,
    pub fpr_limit: f64,
    pub overall: GroupMetrics,
    /// Per defect type: that type's images against all good ones.
    pub per_type: BTreeMap<String, GroupMetrics>,
    pub mean_ms_per_image: f64,
    /// Good images, and how many of them the scenario rejected.
    pub good_images: usize,
    pub false_rejects: usize,
    pub false_reject_rate: Option<f64>,
    /// Defects found per size class (a defect is found when the image is NG and a
    /// reported region overlaps its mask).
    pub detection_by_size: Vec<SizeDetection>,
    /// `mm2` or `px`: the unit of the size classes and of `ImageResult::defect_area`.
    pub size_unit: &'static str,
    /// NG images whose inspection named no defect (should be 0).
    pub ng_without_defects: usize,
    /// The pixel metrics were computed on every `pixel_stride`-th map pixel in x and y.
    pub pixel_stride: usize,
    /// Every test image: its type, normalised score and decision.
    pub images: Vec<ImageResult>,
}

/// Detection of the defects whose mask area falls in `[min, max)`.
#[derive(Debug, Clone, Serialize)]
pub struct SizeDetection {
    pub min: f64,
    pub max: Option<f64>,
    pub defects: usize,
    pub found: usize,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub kind: String,
    pub file: String,
    pub score: f32,
    pub ng: bool,
    /// Regions the inspection reported.
    pub defects: usize,
    /// Defect images: the mask's area (in `size_unit`) and whether a reported region
    /// overlaps it on an NG verdict.
    pub defect_area: Option<f64>,
    pub found: Option<bool>,
}

struct Sample {
    kind: String,
    file: String,
    score: f32,
    ng: bool,
    defects: usize,
    defect_area: Option<f64>,
    found: Option<bool>,
    /// Map and mask for the pixel metrics (on a grid for large maps), `width` wide.
    map: Vec<f32>,
    mask: Vec<bool>,
    width: usize,
}

/// Every `stride`-th value of a `w`-wide row-major grid in x and y (`w`-wide result of
/// `w.div_ceil(stride)`).
fn subsample<T: Copy>(v: &[T], w: usize, stride: usize) -> Vec<T> {
    if stride <= 1 {
        return v.to_vec();
    }
    let h = v.len() / w.max(1);
    (0..h)
        .step_by(stride)
        .flat_map(|y| (0..w).step_by(stride).map(move |x| v[y * w + x]))
        .collect()
}

/// Whether any reported region's box holds a mask pixel (mask in frame pixels).
fn overlaps(defects: &[Defect], mask: &[bool], w: usize, h: usize) -> bool {
    defects.iter().any(|d| {
        let [x, y, bw, bh] = d.bbox;
        let x0 = (x.floor().max(0.0) as usize).min(w);
        let y0 = (y.floor().max(0.0) as usize).min(h);
        let x1 = ((x + bw).ceil().max(0.0) as usize).min(w);
        let y1 = ((y + bh).ceil().max(0.0) as usize).min(h);
        (y0..y1).any(|r| mask[r * w + x0..r * w + x1].iter().any(|&m| m))
    })
}

/// The test images of an MVTec-layout folder (`test/`, masks in `ground_truth/`).
fn test_items(data: &Path) -> Result<Vec<LabelledImage>, EvalError> {
    let items = labelled_images(&data.join("test"), &data.join("ground_truth"))
        .map_err(|_| EvalError::Layout(data.to_path_buf()))?;
    if !items.iter().any(|i| i.is_good()) || items.iter().all(|i| i.is_good()) {
        return Err(EvalError::Layout(data.to_path_buf()));
    }
    Ok(items)
}

pub fn evaluate(
    plan: &ScenarioPlan,
    cfg: &AnomalyConfig,
    data: &Path,
    threads: usize,
    progress: bool,
) -> Result<AnomalyReport, EvalError> {
    let items = test_items(data)?;
    let mut worker = Worker::new(plan, threads)?;
    let mut inspection = worker.new_inspection();
    let pb = ProgressBar::new(items.len() as u64);
    if !progress {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut samples = Vec::with_capacity(items.len());
    let mut busy = 0.0;
    let (unit, unit_area) = match cfg.mm_per_px {
        Some(s) => ("mm2", f64::from(s) * f64::from(s)),
        None => ("px", 1.0),
    };
    let mut pixel_stride = 1;
    for item in &items {
        let path = &item.image;
        let (rgb, w, h) = load_rgb(path)?;
        let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
        let t = Instant::now();
        worker
            .process(&rgb, &layout, &mut inspection)
            .map_err(|source| EvalError::Worker {
                path: path.clone(),
                source,
            })?;
        busy += t.elapsed().as_secs_f64();
        drop(rgb);
        let ng = inspection.verdict == Verdict::Ng;
        let (defect_area, found) = if item.is_good() {
            (None, None)
        } else {
            let (w, h) = (w as usize, h as usize);
            let frame_mask = load_mask(item.mask.as_deref(), w, h)?;
            let area = frame_mask.iter().filter(|&&m| m).count() as f64 * unit_area;
            let hit = ng && overlaps(&inspection.defects, &frame_mask, w, h);
            (Some(area), Some(hit))
        };
        let ev = worker
            .anomaly_evidence()
            .filter(|e| e.width > 0)
            .ok_or_else(|| EvalError::NoMap { path: path.clone() })?;
        let stride = ((ev.width * ev.height) as f64 / PIXEL_SAMPLES as f64)
            .sqrt()
            .ceil()
            .max(1.0) as usize;
        pixel_stride = pixel_stride.max(stride);
        let mask = load_mask(item.mask.as_deref(), ev.width, ev.height)?;
        samples.push(Sample {
            kind: item.kind.clone(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            score: ev.score,
            ng,
            defects: inspection.defects.len() + inspection.defects_truncated,
            defect_area,
            found,
            map: subsample(ev.map, ev.width, stride),
            mask: subsample(&mask, ev.width, stride),
            width: ev.width.div_ceil(stride),
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let mut per_type = BTreeMap::new();
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = samples.iter().map(|s| s.kind.as_str()).collect();
        k.dedup();
        k.into_iter().filter(|k| *k != "good").collect()
    };
    for kind in &kinds {
        let group: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.kind == "good" || s.kind == *kind)
            .collect();
        per_type.insert(kind.to_string(), group_metrics(&group));
    }
    let all: Vec<&Sample> = samples.iter().collect();
    let good: Vec<&Sample> = samples.iter().filter(|s| s.kind == "good").collect();
    let false_rejects = good.iter().filter(|s| s.ng).count();
    let edges: &[f64] = if unit == "mm2" {
        &SIZE_EDGES_MM2
    } else {
        &SIZE_EDGES_PX
    };
    let detection_by_size = edges
        .iter()
        .enumerate()
        .map(|(i, &min)| {
            let max = edges.get(i + 1).copied();
            let within = |a: f64| a >= min && max.is_none_or(|m| a < m);
            let (defects, found) = samples
                .iter()
                .filter_map(|s| Some((s.defect_area?, s.found?)))
                .filter(|&(a, _)| within(a))
                .fold((0, 0), |(n, f), (_, hit)| (n + 1, f + usize::from(hit)));
            SizeDetection {
                min,
                max,
                defects,
                found,
                rate: (defects > 0).then(|| found as f64 / defects as f64),
            }
        })
        .filter(|d| d.defects > 0)
        .collect();
    let (model, model_sha256) = plan.logged_model();
    Ok(AnomalyReport {
        scenario: plan.id.clone(),
        data: data.to_path_buf(),
        model,
        model_sha256,
        threshold: cfg.score_threshold.unwrap_or(0.5),
        fpr_limit: FPR_LIMIT,
        overall: group_metrics(&all),
        per_type,
        mean_ms_per_image: busy * 1000.0 / samples.len().max(1) as f64,
        good_images: good.len(),
        false_rejects,
        false_reject_rate: (!good.is_empty()).then(|| false_rejects as f64 / good.len() as f64),
        detection_by_size,
        size_unit: unit,
        ng_without_defects: samples.iter().filter(|s| s.ng && s.defects == 0).count(),
        pixel_stride,
        images: samples
            .iter()
            .map(|s| ImageResult {
                kind: s.kind.clone(),
                file: s.file.clone(),
                score: s.score,
                ng: s.ng,
                defects: s.defects,
                defect_area: s.defect_area,
                found: s.found,
            })
            .collect(),
    })
}

fn group_metrics(group: &[&Sample]) -> GroupMetrics {
    let scores: Vec<f32> = group.iter().map(|s| s.score).collect();
    let labels: Vec<bool> = group.iter().map(|s| s.kind != "good").collect();
    let mut confusion = Confusion::default();
    for s in group {
        confusion.add(s.kind != "good", s.ng);
    }
    let total: usize = group.iter().map(|s| s.map.len()).sum();
    let mut pix = Vec::with_capacity(total);
    let mut pos = Vec::with_capacity(total);
    let mut regions = Vec::with_capacity(total);
    let mut next = 1u32;
    let mut buf = Vec::new();
    for s in group {
        pix.extend_from_slice(&s.map);
        pos.extend_from_slice(&s.mask);
        let h = s.map.len() / s.width.max(1);
        buf.resize(s.map.len(), 0);
        next = label_regions(&s.mask, s.width, h, next, &mut buf);
        regions.extend_from_slice(&buf);
    }
    GroupMetrics {
        images: group.len(),
        defective: labels.iter().filter(|&&l| l).count(),
        image_auroc: auroc(&scores, &labels),
        pixel_auroc: auroc(&pix, &pos),
        aupro: aupro(&pix, &regions, FPR_LIMIT),
        f1: confusion.f1(),
        precision: confusion.precision(),
        recall: confusion.recall(),
        confusion,
    }
}

impl AnomalyReport {
    /// A table for people.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        let mut s = format!(
            "scenario {} on {} (model {}, threshold {})\n",
            self.scenario,
            self.data.display(),
            self.model,
            self.threshold
        );
        s += &format!(
            "{:<16} {:>6} {:>6} {:>10} {:>10} {:>10} {:>7} {:>4} {:>4} {:>4} {:>4}\n",
            "defect type",
            "images",
            "defect",
            "img AUROC",
            "pix AUROC",
            "AUPRO@0.3",
            "F1",
            "TP",
            "FP",
            "TN",
            "FN"
        );
        let mut row = |name: &str, g: &GroupMetrics| {
            s += &format!(
                "{:<16} {:>6} {:>6} {:>10} {:>10} {:>10} {:>7} {:>4} {:>4} {:>4} {:>4}\n",
                name,
                g.images,
                g.defective,
                f(g.image_auroc),
                f(g.pixel_auroc),
                f(g.aupro),
                g.f1.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                g.confusion.tp,
                g.confusion.fp,
                g.confusion.tn,
                g.confusion.fn_
            );
        };
        for (k, g) in &self.per_type {
            row(k, g);
        }
        row("all", &self.overall);
        s += &format!(
            "(per type: that type's images against all good ones; {:.1} ms per image{})\n",
            self.mean_ms_per_image,
            if self.pixel_stride > 1 {
                format!("; pixel metrics on every {}th map pixel", self.pixel_stride)
            } else {
                String::new()
            }
        );
        s += &format!(
            "false rejects: {} of {} good images ({})\n",
            self.false_rejects,
            self.good_images,
            self.false_reject_rate
                .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
        );
        for d in &self.detection_by_size {
            let range = match d.max {
                Some(m) => format!("[{}, {}) {}", d.min, m, self.size_unit),
                None => format!(">= {} {}", d.min, self.size_unit),
            };
            s += &format!(
                "defects {range:<20} found {} of {} ({})\n",
                d.found,
                d.defects,
                d.rate
                    .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
            );
        }
        s += &format!(
            "NG images without a named defect: {}\n",
            self.ng_without_defects
        );
        s
    }
}
