//! Threshold calibration from the hold-out and validation scores.

use super::extreme::Gumbel;
use crate::patchcore::artifact::{Normalisation, Thresholds};

/// Scores of the calibration images: image scores with labels, and pixel values with
/// labels where they are known.
#[derive(Default)]
pub(super) struct Calibration {
    images: Vec<f32>,
    image_defective: Vec<bool>,
    pixels: Vec<f32>,
    pixel_defective: Vec<bool>,
    /// Range of every map value seen (labelled or not), for the normalisation.
    pix_min: f32,
    pix_max: f32,
}

impl Calibration {
    pub(super) fn add(
        &mut self,
        score: f32,
        defective: bool,
        map: &[f32],
        labels: Option<&[bool]>,
    ) {
        if self.images.is_empty() {
            (self.pix_min, self.pix_max) = (f32::INFINITY, f32::NEG_INFINITY);
        }
        self.images.push(score);
        self.image_defective.push(defective);
        for &v in map {
            self.pix_min = self.pix_min.min(v);
            self.pix_max = self.pix_max.max(v);
        }
        if let Some(l) = labels {
            self.pixels.extend_from_slice(map);
            self.pixel_defective.extend_from_slice(l);
        }
    }

    /// Whether the pixel threshold comes from labelled defect pixels (F1-optimal).
    pub(super) fn pixel_is_f1(&self) -> bool {
        f1_optimal_threshold(&self.pixels, &self.pixel_defective).is_some()
    }

    /// F1-optimal thresholds where defective samples exist (anomalib's
    /// `F1AdaptiveThreshold`), else the largest good score (anomalib's rule without
    /// anomalous validation samples). min/max: the range of all calibration scores.
    pub(super) fn thresholds(&self, holdout: usize, validation: usize) -> Thresholds {
        let max_good = |v: &[f32], d: &[bool]| {
            v.iter()
                .zip(d)
                .filter(|(_, &d)| !d)
                .map(|(&v, _)| v)
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let img_f1 = f1_optimal_threshold(&self.images, &self.image_defective);
        let pix_f1 = f1_optimal_threshold(&self.pixels, &self.pixel_defective);
        let img_t = img_f1.unwrap_or_else(|| max_good(&self.images, &self.image_defective));
        let pix_t = pix_f1.unwrap_or_else(|| max_good(&self.pixels, &self.pixel_defective));
        let img_min = self.images.iter().copied().fold(f32::INFINITY, f32::min);
        let img_max = self
            .images
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let rule = |f1: bool| {
            if f1 {
                "F1-optimal on labelled validation samples (midway between the classes at the best cut)"
            } else {
                "largest good score (no defective validation samples)"
            }
        };
        Thresholds {
            image: Normalisation {
                threshold: img_t,
                min: img_min,
                max: img_max,
            },
            pixel: Normalisation {
                threshold: pix_t,
                min: self.pix_min,
                max: self.pix_max,
            },
            method: format!(
                "{holdout} good hold-out + {validation} validation images; image: {}; pixel: {}; \
                 min/max = range of all calibration scores",
                rule(img_f1.is_some()),
                rule(pix_f1.is_some())
            ),
            calibration_images: holdout + validation,
        }
    }
}

/// Tile-level scores of good hold-out frames, scored tile by tile as `run` scores them.
#[derive(Default)]
pub(super) struct FrameScores {
    /// Each tile's image score (its largest patch distance).
    pub tiles: Vec<f32>,
    /// Each tile's largest anomaly-map value.
    pub tile_map_max: Vec<f32>,
    /// Each frame's score: the largest of its tiles'.
    pub frames: Vec<f32>,
    /// Tiles in the largest hold-out frame.
    pub tiles_per_frame: usize,
}

impl FrameScores {
    pub(super) fn add_tile(&mut self, score: f32, map: &[f32]) {
        self.tiles.push(score);
        let top = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.tile_map_max.push(top);
    }

    /// Replaces the image threshold with the frame-level one: a Gumbel law fitted to the
    /// tile scores, raised to the `frame_tiles` tiles of an inspected frame, at a
    /// false-reject rate `alpha` per frame (never below the largest hold-out frame
    /// score). The pixel threshold likewise from the tiles' map maxima, unless labelled
    /// defect pixels set it (F1). The image range for the normalisation is that of the
    /// tile scores.
    pub(super) fn calibrate(
        &self,
        t: &mut Thresholds,
        frame_tiles: usize,
        alpha: f64,
        pixel_from_f1: bool,
    ) {
        let largest = |v: &[f32]| v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let level = |samples: &[f32], observed: f32| -> (f32, Option<Gumbel>) {
            match Gumbel::fit(samples) {
                Some(g) => (
                    (g.max_quantile(frame_tiles, alpha) as f32).max(observed),
                    Some(g),
                ),
                None => (observed, None),
            }
        };
        let (image, g_img) = level(&self.tiles, largest(&self.frames));
        if !image.is_finite() {
            return;
        }
        t.image = Normalisation {
            threshold: image,
            min: self.tiles.iter().copied().fold(f32::INFINITY, f32::min),
            max: largest(&self.tiles).max(image),
        };
        let mut pixel_rule = "F1-optimal on labelled validation pixels".to_string();
        if !pixel_from_f1 {
            let (pixel, g_pix) = level(&self.tile_map_max, largest(&self.tile_map_max));
            if pixel.is_finite() {
                t.pixel.threshold = pixel;
                t.pixel.max = t.pixel.max.max(pixel);
                pixel_rule = describe("map maxima", g_pix);
            }
        }
        t.method = format!(
            "frame-level extreme-value calibration on {} good hold-out frame(s) ({} tiles): \
             image: {}; pixel: {pixel_rule}; threshold for a false-reject rate of {alpha:.4} \
             per frame of {frame_tiles} tiles, at least the largest hold-out value; \
             min/max = range of the tile scores",
            self.frames.len(),
            self.tiles.len(),
            describe("tile scores", g_img),
        );
    }
}

fn describe(what: &str, g: Option<Gumbel>) -> String {
    match g {
        Some(g) => format!(
            "Gumbel fit to the {what} (mu {:.4}, beta {:.4})",
            g.mu, g.beta
        ),
        None => format!("largest of the {what} (too few to fit a law)"),
    }
}

/// The decision threshold with the best F1 (`score >= threshold` means defective), as
/// anomalib's `F1AdaptiveThreshold` picks it, but placed halfway between the lowest score
/// called defective and the next lower score, so the margin is split between the classes
/// instead of sitting on a defect sample. `None` unless both classes are present.
pub fn f1_optimal_threshold(scores: &[f32], positive: &[bool]) -> Option<f32> {
    let pos = positive.iter().filter(|&&p| p).count();
    if pos == 0 || pos == positive.len() {
        return None;
    }
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best_cut) = (-1.0f64, 0usize);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i] as usize];
        while i < order.len() && scores[order[i] as usize] == s {
            if positive[order[i] as usize] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        // Everything in order[..i] is called defective.
        let f1 = 2.0 * tp as f64 / (tp + fp + pos) as f64;
        if f1 > best_f1 {
            (best_f1, best_cut) = (f1, i);
        }
    }
    let lowest_in = scores[order[best_cut - 1] as usize];
    Some(match order.get(best_cut) {
        Some(&next) => (lowest_in + scores[next as usize]) / 2.0,
        None => lowest_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_threshold_splits_the_gap_and_trades_errors() {
        // Separable: halfway between the lowest defect (0.7) and the highest good (0.5).
        let t = f1_optimal_threshold(&[0.1, 0.5, 0.7, 0.9], &[false, false, true, true]).unwrap();
        assert!((t - 0.6).abs() < 1e-6, "{t}");
        // One good sample above both defects: calling all three defective (tp 2, fp 1:
        // F1 0.8) beats calling only the top one (tp 0) or the top two (F1 0.5).
        let s = [0.1, 0.2, 0.6, 0.7, 0.8];
        let l = [false, false, true, true, false];
        let t = f1_optimal_threshold(&s, &l).unwrap();
        assert!((t - 0.4).abs() < 1e-6, "{t}");
        assert!(f1_optimal_threshold(&[0.1, 0.2], &[false, false]).is_none());
    }
}
