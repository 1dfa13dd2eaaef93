//! How good is an anomaly scenario on a labelled data set in the MVTec AD layout (`test/good`, `test/<defect>`, `ground_truth/<defect>/*_mask.png`)?
//!
//! Every test image goes through the scenario's own worker — the same preprocessing,
//! session and anomaly head as `lineside run` — so the figures describe what runs on the
//! line. Reported per defect type and overall: image AUROC, pixel AUROC, AUPRO (FPR limit
//! 0.3), and the confusion matrix / F1 of the scenario's OK/NG decision.

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
use crate::verdict::Verdict;

pub const FPR_LIMIT: f64 = 0.3;

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
    /// Every test image: its type, normalised score and decision.
    pub images: Vec<ImageResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub kind: String,
    pub file: String,
    pub score: f32,
    pub ng: bool,
}

struct Sample {
    kind: String,
    file: String,
    score: f32,
    ng: bool,
    map: Vec<f32>,
    mask: Vec<bool>,
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
        let ev = worker
            .anomaly_evidence()
            .filter(|e| e.width > 0)
            .ok_or_else(|| EvalError::NoMap { path: path.clone() })?;
        samples.push(Sample {
            kind: item.kind.clone(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            score: ev.score,
            ng: inspection.verdict == Verdict::Ng,
            map: ev.map.to_vec(),
            mask: load_mask(item.mask.as_deref(), ev.width, ev.height)?,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let width = worker.anomaly_evidence().map_or(1, |e| e.width.max(1));
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
        per_type.insert(kind.to_string(), group_metrics(&group, width));
    }
    let all: Vec<&Sample> = samples.iter().collect();
    let (model, model_sha256) = plan.logged_model();
    Ok(AnomalyReport {
        scenario: plan.id.clone(),
        data: data.to_path_buf(),
        model,
        model_sha256,
        threshold: cfg.score_threshold.unwrap_or(0.5),
        fpr_limit: FPR_LIMIT,
        overall: group_metrics(&all, width),
        per_type,
        mean_ms_per_image: busy * 1000.0 / samples.len().max(1) as f64,
        images: samples
            .iter()
            .map(|s| ImageResult {
                kind: s.kind.clone(),
                file: s.file.clone(),
                score: s.score,
                ng: s.ng,
            })
            .collect(),
    })
}

fn group_metrics(group: &[&Sample], width: usize) -> GroupMetrics {
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
        let h = s.map.len() / width;
        buf.resize(s.map.len(), 0);
        next = label_regions(&s.mask, width, h, next, &mut buf);
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
            "(per type: that type's images against all good ones; {:.1} ms per image)\n",
            self.mean_ms_per_image
        );
        s
    }
}
