//! Quality metrics as anomalib and scikit-learn define them: ROC AUC (ties handled like
//! `sklearn.metrics.roc_auc_score`), AUPRO (MVTec's per-region overlap integrated up to a
//! false-positive-rate limit and divided by it; anomalib's `AUPRO(fpr_limit=0.3)`), and
//! the confusion matrix / F1 at a fixed decision.

use serde::Serialize;

/// Area under the ROC curve. `None` when one class is missing.
pub fn auroc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let pos = positive.iter().filter(|&&p| p).count();
    let neg = positive.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let order = descending(scores);
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut prev_tpr, mut prev_fpr, mut area) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i] as usize];
        // One ROC point per distinct score: ties move diagonally (sklearn's convention).
        while i < order.len() && scores[order[i] as usize] == s {
            if positive[order[i] as usize] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let (tpr, fpr) = (tp as f64 / pos as f64, fp as f64 / neg as f64);
        area += (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
        (prev_tpr, prev_fpr) = (tpr, fpr);
    }
    Some(area)
}

/// Area under the per-region-overlap curve up to `fpr_limit`, divided by `fpr_limit`
/// (1.0 is perfect). `regions[i]` is 0 for a good pixel, else the id (1..=n) of the
/// connected defect region it belongs to. `None` without regions or good pixels.
pub fn aupro(scores: &[f32], regions: &[u32], fpr_limit: f64) -> Option<f64> {
    let n_regions = regions.iter().copied().max().unwrap_or(0) as usize;
    let mut size = vec![0usize; n_regions + 1];
    for &r in regions {
        size[r as usize] += 1;
    }
    let neg = size[0];
    if n_regions == 0 || neg == 0 {
        return None;
    }
    let order = descending(scores);
    let (mut fp, mut pro_sum) = (0usize, 0.0f64);
    let (mut prev_fpr, mut prev_pro, mut area) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i] as usize];
        while i < order.len() && scores[order[i] as usize] == s {
            let r = regions[order[i] as usize] as usize;
            if r == 0 {
                fp += 1;
            } else {
                pro_sum += 1.0 / size[r] as f64;
            }
            i += 1;
        }
        let fpr = fp as f64 / neg as f64;
        let pro = pro_sum / n_regions as f64;
        if fpr >= fpr_limit {
            // Interpolate the segment up to the limit and stop.
            let t = if fpr > prev_fpr {
                (fpr_limit - prev_fpr) / (fpr - prev_fpr)
            } else {
                0.0
            };
            let pro_at = prev_pro + t * (pro - prev_pro);
            area += (fpr_limit - prev_fpr) * (prev_pro + pro_at) / 2.0;
            return Some(area / fpr_limit);
        }
        area += (fpr - prev_fpr) * (pro + prev_pro) / 2.0;
        (prev_fpr, prev_pro) = (fpr, pro);
    }
    Some(area / fpr_limit)
}

/// Labels the 8-connected regions of a binary mask `[h, w]`, numbering from `first`;
/// returns the next free id. Good pixels get 0.
pub fn label_regions(mask: &[bool], w: usize, h: usize, first: u32, out: &mut [u32]) -> u32 {
    out.fill(0);
    let mut next = first;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || out[start] != 0 {
            continue;
        }
        out[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if mask[j] && out[j] == 0 {
                        out[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        next += 1;
    }
    next
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn add(&mut self, actual_defect: bool, predicted_defect: bool) {
        match (actual_defect, predicted_defect) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
            (true, false) => self.fn_ += 1,
        }
    }

    pub fn precision(&self) -> Option<f64> {
        let d = self.tp + self.fp;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        let d = self.tp + self.fn_;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }

    pub fn f1(&self) -> Option<f64> {
        let d = 2 * self.tp + self.fp + self.fn_;
        (d > 0).then(|| 2.0 * self.tp as f64 / d as f64)
    }
}

fn descending(scores: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_handles_ties_like_sklearn() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        let a = auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((a - 0.75).abs() < 1e-12);
        // All tied: 0.5.
        let a = auroc(&[1.0; 4], &[false, true, false, true]).unwrap();
        assert!((a - 0.5).abs() < 1e-12);
        assert!(auroc(&[1.0, 2.0], &[true, true]).is_none());
    }

    #[test]
    fn perfect_separation_gives_aupro_one() {
        let scores = [0.9, 0.8, 0.1, 0.2, 0.0, 0.3];
        let regions = [1, 2, 0, 0, 0, 0];
        assert!((aupro(&scores, &regions, 0.3).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn regions_are_8_connected() {
        #[rustfmt::skip]
        let m = [
            true,  false, false,
            false, true,  false,
            false, false, false,
            true,  true,  false,
        ];
        let mut out = [0u32; 12];
        let next = label_regions(&m, 3, 4, 1, &mut out);
        assert_eq!(next, 3);
        assert_eq!(out[0], out[4]);
        assert_ne!(out[9], out[0]);
        assert_eq!(out[9], out[10]);
    }
}
