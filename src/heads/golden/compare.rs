//! Comparison: the registered frame against the reference, pixel by pixel, under a
//! per-pixel tolerance, and the pixels beyond it grouped into regions per region class.

use ndarray::{Array2, ArrayView2, Zip};

use super::register::{bilinear, Similarity};
use crate::heads::regions::{Region, RegionFinder};

/// What the per-pixel tolerance is made of (luma units, 0..1).
pub struct ToleranceParts<'a> {
    /// The reference plane (level 0).
    pub reference: ArrayView2<'a, f32>,
    /// Each pixel's class index into `class_tolerance`.
    pub classes: &'a [u8],
    /// The base tolerance of each class (`[rules] tolerance`, or the region's own).
    pub class_tolerance: &'a [f32],
    /// The largest deviation the good references showed at each pixel, once registered.
    pub spread: Option<ArrayView2<'a, f32>>,
    /// Pixels of slack on edges: a misregistration of `d` px on an edge of gradient `g`
    /// leaves a difference of about `g * d`.
    pub edge_slack_px: f32,
    /// Sensitivity 0..1 per pixel (`tolerance_mask` / 255); 0 ignores the pixel.
    pub sensitivity: Option<ArrayView2<'a, f32>>,
}

/// The per-pixel tolerance, row-major; `f32::INFINITY` where nothing is compared.
pub fn tolerance_map(p: &ToleranceParts<'_>) -> Vec<f32> {
    let (h, w) = p.reference.dim();
    let mut tol = Array2::<f32>::zeros((h, w));
    Zip::indexed(&mut tol).for_each(|(y, x), t| {
        let r = &p.reference;
        let gx = 0.5 * (r[[y, (x + 1).min(w - 1)]] - r[[y, x.saturating_sub(1)]]);
        let gy = 0.5 * (r[[(y + 1).min(h - 1), x]] - r[[y.saturating_sub(1), x]]);
        let class = p.classes.get(y * w + x).copied().unwrap_or(0) as usize;
        let base = p
            .class_tolerance
            .get(class)
            .copied()
            .unwrap_or(f32::INFINITY);
        let spread = p.spread.as_ref().map_or(0.0, |s| s[[y, x]]);
        let sum = base + spread + p.edge_slack_px * gx.hypot(gy);
        let sens = p.sensitivity.as_ref().map_or(1.0, |s| s[[y, x]]);
        *t = if sens > 0.0 {
            sum / sens
        } else {
            f32::INFINITY
        };
    });
    tol.into_iter().collect()
}

/// Per-frame comparison state, sized once.
pub struct Comparer {
    w: usize,
    h: usize,
    /// |frame - reference| / tolerance; 0 where not compared.
    ratio: Vec<f32>,
    regions: RegionFinder,
}

impl Comparer {
    pub fn new(w: usize, h: usize) -> Self {
        Comparer {
            w,
            h,
            ratio: vec![0.0; w * h],
            regions: RegionFinder::default(),
        }
    }

    /// Fills the ratio plane for `frame` laid on `reference` by `warp`; returns the
    /// largest ratio (1 = at the tolerance). Reference pixels whose warped position falls
    /// outside the frame are not compared.
    pub fn compare(
        &mut self,
        frame: ArrayView2<f32>,
        reference: ArrayView2<f32>,
        tolerance: &[f32],
        warp: &Similarity,
    ) -> f32 {
        let w = self.w;
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (self.h as f64 - 1.0) / 2.0);
        let mut worst = 0f32;
        for ((y, x), &r) in reference.indexed_iter() {
            let i = y * w + x;
            let tol = tolerance.get(i).copied().unwrap_or(f32::INFINITY);
            let (fx, fy) = warp.apply((x as f64 - cx, y as f64 - cy));
            let ratio = match bilinear(&frame, fx + cx, fy + cy) {
                Some(v) if tol.is_finite() => (v - r).abs() / tol,
                _ => 0.0,
            };
            if let Some(slot) = self.ratio.get_mut(i) {
                *slot = ratio;
            }
            worst = worst.max(ratio);
        }
        worst
    }

    /// Calls `emit` for each region of class `class` whose pixels are beyond the
    /// tolerance (8-connected, in reference pixels).
    pub fn regions_of(&mut self, classes: &[u8], class: u8, emit: impl FnMut(Region)) {
        let (ratio, n) = (&self.ratio, self.w * self.h);
        self.regions.find_where(
            self.w,
            self.h,
            |i| i < n && ratio[i] > 1.0 && classes.get(i) == Some(&class),
            |i| ratio[i],
            emit,
        );
    }

    /// The ratio plane of the last frame (reference pixels).
    pub fn ratio(&self) -> &[f32] {
        &self.ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_adds_edges_and_spread_and_honours_the_mask() {
        // A vertical step: gradient 0.5 per px on the two pixels beside it.
        let reference = Array2::from_shape_fn((3, 4), |(_, x)| if x < 2 { 0.0 } else { 1.0 });
        let spread = Array2::from_elem((3, 4), 0.01f32);
        let mut sens = Array2::from_elem((3, 4), 1.0f32);
        sens[[0, 0]] = 0.0;
        sens[[2, 0]] = 0.5;
        let classes = vec![0u8; 12];
        let tol = tolerance_map(&ToleranceParts {
            reference: reference.view(),
            classes: &classes,
            class_tolerance: &[0.1],
            spread: Some(spread.view()),
            edge_slack_px: 0.4,
            sensitivity: Some(sens.view()),
        });
        assert!(tol[0].is_infinite());
        assert!((tol[4] - 0.11).abs() < 1e-6, "flat: base + spread");
        assert!((tol[5] - (0.11 + 0.4 * 0.5)).abs() < 1e-6, "edge slack");
        assert!((tol[8] - 0.22).abs() < 1e-6, "half sensitivity doubles it");
    }

    #[test]
    fn regions_are_split_by_class_and_outside_pixels_are_not_compared() {
        let (w, h) = (6, 4);
        let reference = Array2::<f32>::zeros((h, w));
        let mut frame = Array2::<f32>::zeros((h, w));
        // A bright bar across two classes (columns 0-2 class 0, 3-5 class 1).
        for x in 1..5 {
            frame[[1, x]] = 0.5;
        }
        let classes: Vec<u8> = (0..w * h).map(|i| u8::from(i % w >= 3)).collect();
        let tol = vec![0.1; w * h];
        let mut c = Comparer::new(w, h);
        let worst = c.compare(frame.view(), reference.view(), &tol, &Similarity::IDENTITY);
        assert!((worst - 5.0).abs() < 1e-5);
        let mut found = Vec::new();
        for class in 0..2 {
            c.regions_of(&classes, class, |r| found.push((class, r.pixels)));
        }
        assert_eq!(found, vec![(0, 2), (1, 2)]);
        // Shifted by 10 px nothing maps inside the frame: nothing compared.
        let far = Similarity {
            s: (1.0, 0.0),
            t: (10.0, 0.0),
        };
        assert_eq!(c.compare(frame.view(), reference.view(), &tol, &far), 0.0);
    }
}
