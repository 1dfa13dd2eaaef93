//! `eval` for every head but the anomaly ones: each image of a folder goes through the
//! scenario's worker and is compared with its truth ([`super::truth`]). What the truth
//! holds decides what is measured: objects → detection AP and precision/recall per class,
//! texts → OCR character accuracy, verdicts → the OK/NG confusion. An ERROR counts as NG
//! (the line rejects it) and is also counted on its own.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget};
use serde::Serialize;

use super::detection::{self, DetectionMetrics, Scored};
use super::metrics::Confusion;
use super::text::TextMetrics;
use super::truth::{read_truth_json, read_yolo, ImageTruth, TruthError, TruthObject};
use super::EvalError;
use crate::dataset::{list_images, load_rgb};
use crate::frame::{FrameLayout, PixelFormat};
use crate::pipeline::Worker;
use crate::scenario::ScenarioPlan;
use crate::verdict::Verdict;

#[derive(Debug, Clone, Serialize)]
pub struct VerdictMetrics {
    /// Positive = NG: `tp` is an NG part rejected, `fp` a good part rejected.
    pub confusion: Confusion,
    pub accuracy: Option<f64>,
    /// Parts that came out ERROR (counted as NG above).
    pub errors: usize,
}

/// One image: what was expected and what the scenario decided.
#[derive(Debug, Clone, Serialize)]
pub struct ImageOutcome {
    pub file: String,
    pub expected: Option<Verdict>,
    pub verdict: Verdict,
    /// The objects the truth lists (class, x, y, w, h).
    pub objects: Vec<TruthObject>,
    /// Class-tagged regions the head reported (class, x, y, w, h, score).
    pub detections: Vec<Scored>,
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelledReport {
    pub scenario: String,
    pub data: PathBuf,
    pub model: String,
    pub model_sha256: String,
    /// Images with truth (others in the folder are left out and counted).
    pub images: usize,
    pub unlabelled: usize,
    pub verdicts: Option<VerdictMetrics>,
    pub detection: Option<DetectionMetrics>,
    pub text: Option<TextMetrics>,
    pub mean_ms_per_image: f64,
    pub results: Vec<ImageOutcome>,
}

/// The truth of every image of `dir` that has one, in file-name order.
fn labelled_images(
    dir: &Path,
    labels: &[String],
) -> Result<(Vec<(PathBuf, ImageTruth)>, usize), EvalError> {
    let files = list_images(dir)?;
    let json = read_truth_json(dir, labels)?;
    // YOLO: a folder where some image has a label file; an image without one shows none.
    let yolo = json.is_none() && files.iter().any(|f| f.with_extension("txt").is_file());
    let mut out = Vec::new();
    let mut unlabelled = 0;
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let truth = match &json {
            Some(map) => map.get(&name).cloned(),
            None if yolo => Some(ImageTruth::default()),
            None => None,
        };
        match truth {
            Some(t) => out.push((f, t)),
            None => unlabelled += 1,
        }
    }
    if out.is_empty() || (!yolo && json.is_none()) {
        return Err(TruthError::Missing(dir.to_path_buf()).into());
    }
    Ok((out, unlabelled))
}

pub fn evaluate(
    plan: &ScenarioPlan,
    dir: &Path,
    threads: usize,
    progress: bool,
) -> Result<LabelledReport, EvalError> {
    let labels = &plan.labels;
    let (items, unlabelled) = labelled_images(dir, labels)?;
    let mut worker = Worker::new(plan, threads)?;
    let mut inspection = worker.new_inspection();
    let pb = ProgressBar::new(items.len() as u64);
    if !progress {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut busy = 0.0;
    let mut results = Vec::with_capacity(items.len());
    let mut boxes = Vec::with_capacity(items.len());
    let mut text = TextMetrics::default();
    let (mut confusion, mut errors, mut judged) = (Confusion::default(), 0, 0);
    let (mut any_objects, mut any_texts) = (false, false);
    for (path, mut truth) in items {
        let (rgb, w, h) = load_rgb(&path)?;
        if truth.objects.is_none() {
            truth.objects = read_yolo(&path, w, h, labels.len())?;
        }
        let layout = FrameLayout::packed(w, h, PixelFormat::Rgb24);
        let t = Instant::now();
        worker
            .process(&rgb, &layout, &mut inspection)
            .map_err(|source| EvalError::Worker {
                path: path.clone(),
                source,
            })?;
        busy += t.elapsed().as_secs_f64();
        let detections: Vec<Scored> = inspection
            .defects
            .iter()
            .filter_map(|d| {
                d.class.map(|class| Scored {
                    class,
                    bbox: d.bbox.map(f64::from),
                    score: f64::from(d.score),
                })
            })
            .collect();
        let read: Vec<&str> = inspection.texts.iter().map(|t| t.text.as_str()).collect();
        if let Some(expected) = &truth.texts {
            any_texts = true;
            text.add(expected, &read);
        }
        if let Some(expected) = truth.verdict {
            judged += 1;
            let rejected = inspection.verdict != Verdict::Ok;
            errors += usize::from(inspection.verdict == Verdict::Error);
            confusion.add(expected == Verdict::Ng, rejected);
        }
        let objects: Vec<Scored> = truth
            .objects
            .iter()
            .flatten()
            .map(|o| Scored {
                class: o.class,
                bbox: o.bbox,
                score: 1.0,
            })
            .collect();
        any_objects |= truth.objects.is_some();
        boxes.push((objects, detections.clone()));
        results.push(ImageOutcome {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            expected: truth.verdict,
            verdict: inspection.verdict,
            objects: truth.objects.unwrap_or_default(),
            detections,
            texts: read.iter().map(|s| s.to_string()).collect(),
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let (model, model_sha256) = plan.logged_model();
    Ok(LabelledReport {
        scenario: plan.id.clone(),
        data: dir.to_path_buf(),
        model,
        model_sha256,
        images: results.len(),
        unlabelled,
        verdicts: (judged > 0).then(|| VerdictMetrics {
            accuracy: Some((confusion.tp + confusion.tn) as f64 / judged as f64),
            confusion,
            errors,
        }),
        detection: any_objects.then(|| detection::evaluate(&boxes, labels)),
        text: any_texts.then_some(text),
        mean_ms_per_image: busy * 1000.0 / results.len().max(1) as f64,
        results,
    })
}

impl LabelledReport {
    /// A table for people.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        let mut s = format!(
            "scenario {} on {} (model {}): {} images{}\n",
            self.scenario,
            self.data.display(),
            self.model,
            self.images,
            if self.unlabelled > 0 {
                format!(", {} without truth left out", self.unlabelled)
            } else {
                String::new()
            }
        );
        if let Some(d) = &self.detection {
            s += &format!(
                "{:<16} {:>9} {:>10} {:>9} {:>9} {:>8} {:>8}\n",
                "class", "instances", "detections", "precision", "recall", "AP50", "AP50-95"
            );
            for (name, c) in &d.per_class {
                s += &format!(
                    "{:<16} {:>9} {:>10} {:>9} {:>9} {:>8} {:>8}\n",
                    name,
                    c.instances,
                    c.detections,
                    f(c.precision),
                    f(c.recall),
                    f(c.ap50),
                    f(c.ap50_95)
                );
            }
            s += &format!(
                "{:<16} {:>9} {:>10} {:>9} {:>9} {:>8} {:>8}\n",
                "all (mean)",
                "",
                "",
                "",
                "",
                f(d.map50),
                f(d.map50_95)
            );
            s += "(AP as pycocotools computes it; precision and recall at IoU 0.50 of the \
                  detections the scenario reports)\n";
        }
        if let Some(t) = &self.text {
            s += &format!(
                "text: character accuracy {} ({} edits in {} characters), lines read \
                 exactly {}/{}\n",
                f(t.char_accuracy),
                t.char_errors,
                t.chars,
                t.lines_exact,
                t.lines
            );
        }
        if let Some(v) = &self.verdicts {
            let c = &v.confusion;
            s += &format!(
                "verdicts: accuracy {} (NG rejected {}, NG passed {}, good rejected {}, good \
                 passed {}; {} ERROR)\n",
                f(v.accuracy),
                c.tp,
                c.fn_,
                c.fp,
                c.tn,
                v.errors
            );
        }
        s += &format!("({:.1} ms per image)\n", self.mean_ms_per_image);
        s
    }
}
