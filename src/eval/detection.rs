//! Box detection quality, computed the way pycocotools' `COCOeval` does for `bbox` (all
//! areas, up to 100 detections per image and class), so the numbers can be checked against
//! it: per class AP at IoU 0.50 and averaged over 0.50:0.05:0.95 on 101 recall points.
//! Beside them, precision and recall at IoU 0.50 of the detections as the scenario
//! reports them (its own confidence threshold), which is what the line sees.

use std::collections::BTreeMap;

use serde::Serialize;

/// Detections kept per image and class, as `COCOeval`'s largest `maxDets`.
const MAX_DETS: usize = 100;
const RECALL_POINTS: usize = 101;
const IOU_STEPS: usize = 10;

/// One box: class index, x, y, width, height (frame pixels) and, for detections, a score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scored {
    pub class: usize,
    pub bbox: [f64; 4],
    pub score: f64,
}

/// The figures for one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// Ground-truth boxes.
    pub instances: usize,
    pub detections: usize,
    pub ap50: Option<f64>,
    pub ap50_95: Option<f64>,
    /// At IoU 0.50, over every detection the scenario reported.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectionMetrics {
    /// Per class name; classes with neither truth nor detections are left out.
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// Mean over the classes that have ground truth (as COCO averages).
    pub map50: Option<f64>,
    pub map50_95: Option<f64>,
}

/// `COCOeval`'s thresholds: `np.linspace(.5, .95, 10)` and `np.linspace(0, 1, 101)`,
/// computed the same way (start + i * step) so comparisons at the edges agree.
fn iou_thresholds() -> [f64; IOU_STEPS] {
    let step = (0.95 - 0.5) / (IOU_STEPS - 1) as f64;
    std::array::from_fn(|i| i as f64 * step + 0.5)
}

fn recall_thresholds() -> [f64; RECALL_POINTS] {
    let step = 1.0 / (RECALL_POINTS - 1) as f64;
    std::array::from_fn(|i| i as f64 * step)
}

/// Intersection over union of two `[x, y, w, h]` boxes (pycocotools' `bbIou`).
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Per image, the match of each detection (sorted by score, best first) at each IoU
/// threshold: `COCOeval.evaluateImg` for one class.
struct ImageMatches {
    scores: Vec<f64>,
    /// `[threshold][detection]`: matched a ground-truth box.
    matched: Vec<Vec<bool>>,
}

fn match_image(truth: &[&Scored], dets: &[&Scored], thresholds: &[f64]) -> ImageMatches {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    // Stable, as numpy's mergesort on -score.
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    order.truncate(MAX_DETS);
    let ious: Vec<Vec<f64>> = order
        .iter()
        .map(|&d| truth.iter().map(|g| iou(&dets[d].bbox, &g.bbox)).collect())
        .collect();
    let matched = thresholds
        .iter()
        .map(|&t| {
            let mut taken = vec![false; truth.len()];
            ious.iter()
                .map(|row| {
                    let mut best = t.min(1.0 - 1e-10);
                    let mut m = None;
                    for (g, &v) in row.iter().enumerate() {
                        if taken[g] || v < best {
                            continue;
                        }
                        best = v;
                        m = Some(g);
                    }
                    if let Some(g) = m {
                        taken[g] = true;
                    }
                    m.is_some()
                })
                .collect()
        })
        .collect();
    ImageMatches {
        scores: order.iter().map(|&d| dets[d].score).collect(),
        matched,
    }
}

/// Area under the interpolated precision/recall curve on the 101 recall points
/// (`COCOeval.accumulate` for one threshold).
fn average_precision(scores: &[f64], matched: &[bool], positives: usize) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut recall = Vec::with_capacity(order.len());
    let mut precision = Vec::with_capacity(order.len());
    for &i in &order {
        if matched[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        recall.push(tp / positives as f64);
        precision.push(tp / (fp + tp + f64::EPSILON));
    }
    // Precision envelope: non-increasing from the right.
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    let sum: f64 = recall_thresholds()
        .iter()
        .map(|&r| {
            // np.searchsorted(recall, r, side="left")
            let at = recall.partition_point(|&x| x < r);
            precision.get(at).copied().unwrap_or(0.0)
        })
        .sum();
    sum / RECALL_POINTS as f64
}

/// Scores the detections of every image against its truth (`images[i] = (truth,
/// detections)`); `names[c]` is class `c`'s name.
pub fn evaluate(images: &[(Vec<Scored>, Vec<Scored>)], names: &[String]) -> DetectionMetrics {
    let thresholds = iou_thresholds();
    let mut per_class = BTreeMap::new();
    let (mut ap50s, mut aps) = (Vec::new(), Vec::new());
    for (class, name) in names.iter().enumerate() {
        let mut positives = 0;
        let mut detections = 0;
        let mut scores = Vec::new();
        let mut matched: Vec<Vec<bool>> = vec![Vec::new(); IOU_STEPS];
        // Precision and recall as reported: every detection, IoU 0.50.
        let mut tp_all = 0usize;
        for (truth, dets) in images {
            let t: Vec<&Scored> = truth.iter().filter(|b| b.class == class).collect();
            let d: Vec<&Scored> = dets.iter().filter(|b| b.class == class).collect();
            positives += t.len();
            detections += d.len();
            if t.is_empty() && d.is_empty() {
                continue;
            }
            let m = match_image(&t, &d, &thresholds);
            scores.extend_from_slice(&m.scores);
            for (all, these) in matched.iter_mut().zip(m.matched) {
                all.extend(these);
            }
            let at50 = match_image(&t, &d, &thresholds[..1]);
            tp_all += at50.matched[0].iter().filter(|&&x| x).count();
        }
        if positives == 0 && detections == 0 {
            continue;
        }
        let (ap50, ap50_95) = if positives == 0 {
            (None, None)
        } else {
            let per_t: Vec<f64> = matched
                .iter()
                .map(|m| average_precision(&scores, m, positives))
                .collect();
            let ap = per_t.iter().sum::<f64>() / per_t.len() as f64;
            ap50s.push(per_t[0]);
            aps.push(ap);
            (Some(per_t[0]), Some(ap))
        };
        let ratio = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
        per_class.insert(
            name.clone(),
            ClassMetrics {
                instances: positives,
                detections,
                ap50,
                ap50_95,
                precision: ratio(tp_all, detections),
                recall: ratio(tp_all, positives),
            },
        );
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    DetectionMetrics {
        per_class,
        map50: mean(&ap50s),
        map50_95: mean(&aps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(class: usize, x: f64, score: f64) -> Scored {
        Scored {
            class,
            bbox: [x, 0.0, 10.0, 10.0],
            score,
        }
    }

    #[test]
    fn perfect_detections_score_one_and_misses_lower_recall() {
        let names = ["a".to_string(), "b".to_string()];
        let images = vec![(
            vec![b(0, 0.0, 1.0), b(0, 20.0, 1.0), b(1, 40.0, 1.0)],
            vec![b(0, 0.0, 0.9), b(0, 20.0, 0.8)],
        )];
        let m = evaluate(&images, &names);
        assert_eq!(m.per_class["a"].ap50_95, Some(1.0));
        assert_eq!(m.per_class["a"].precision, Some(1.0));
        assert_eq!(m.per_class["b"].ap50, Some(0.0));
        assert_eq!(m.per_class["b"].recall, Some(0.0));
        assert_eq!(m.map50, Some(0.5));
    }

    #[test]
    fn a_false_positive_above_a_hit_costs_precision() {
        // Ranked: miss (0.9), hit (0.8): precision at recall 1 is 0.5.
        let names = ["a".to_string()];
        let images = vec![(vec![b(0, 0.0, 1.0)], vec![b(0, 50.0, 0.9), b(0, 0.0, 0.8)])];
        let m = evaluate(&images, &names);
        let ap = m.per_class["a"].ap50.unwrap();
        assert!((ap - 0.5).abs() < 1e-9, "{ap}");
        // A box shifted by 3 of 10 pixels: IoU 7/13 = 0.54, a hit at 0.50 only.
        let images = vec![(vec![b(0, 0.0, 1.0)], vec![b(0, 3.0, 0.9)])];
        let m = evaluate(&images, &names);
        assert!((m.per_class["a"].ap50.unwrap() - 1.0).abs() < 1e-9);
        assert!((m.per_class["a"].ap50_95.unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn iou_of_touching_and_nested_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 10.0, 10.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 5.0, 10.0]), 0.5);
    }
}
