//! Luminance planes on the reference side: the reference images are turned into the same
//! smoothed luma the `models/luma` first stage gives the frames, plus the pyramid levels
//! and gradients registration and the tolerance need.

use image::RgbImage;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};

/// BT.601 weights, as `models/luma/luma.onnx` applies them.
const BT601: [f32; 3] = [0.299, 0.587, 0.114];

/// The 5-tap Gaussian (sigma 1) of `tools/models/build_luma.py`, normalised in f64 there.
fn gaussian_taps() -> [f32; 5] {
    let k: Vec<f64> = (-2..=2)
        .map(|x: i32| (-(f64::from(x * x)) / 2.0).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    [0, 1, 2, 3, 4].map(|i| (k[i] / sum) as f32)
}

/// The luma plane of an RGB image with exactly the model's math: BT.601 of RGB/255, then
/// the separable Gaussian with replicated borders. Reference images are read once at plan
/// time, so this small copy of the graph saves a session run per reference and keeps plan
/// and run in one place; `tests/golden.rs` checks both agree.
pub fn luma_of_rgb(img: &RgbImage) -> Array2<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut y = Array2::<f32>::zeros((h, w));
    for (px, v) in img.pixels().zip(y.iter_mut()) {
        let [r, g, b] = px.0.map(|c| f32::from(c) / 255.0);
        *v = BT601[0] * r + BT601[1] * g + BT601[2] * b;
    }
    blur(y.view())
}

/// The separable 5-tap Gaussian, vertical then horizontal (the graph's order), borders
/// replicated.
fn blur(src: ArrayView2<f32>) -> Array2<f32> {
    let k = gaussian_taps();
    let (h, w) = src.dim();
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let mut v = Array2::<f32>::zeros((h, w));
    for ((y, x), out) in v.indexed_iter_mut() {
        *out = (0..5)
            .map(|t| k[t] * src[[clamp(y as isize + t as isize - 2, h), x]])
            .sum();
    }
    let mut out = Array2::<f32>::zeros((h, w));
    for ((y, x), o) in out.indexed_iter_mut() {
        *o = (0..5)
            .map(|t| k[t] * v[[y, clamp(x as isize + t as isize - 2, w)]])
            .sum();
    }
    out
}

/// The size of the next pyramid level: half, rounded down (an odd last row or column is
/// dropped, which keeps level coordinates an exact factor of 2 apart about the centre).
pub fn half(dim: (usize, usize)) -> (usize, usize) {
    (dim.0 / 2, dim.1 / 2)
}

/// 2x2 box average of `src` into `dst` (`dst` sized by [`half`]).
pub fn downsample(src: ArrayView2<f32>, mut dst: ArrayViewMut2<f32>) {
    Zip::indexed(&mut dst).for_each(|(y, x), d| {
        let (sy, sx) = (2 * y, 2 * x);
        *d = 0.25 * (src[[sy, sx]] + src[[sy, sx + 1]] + src[[sy + 1, sx]] + src[[sy + 1, sx + 1]]);
    });
}

/// Central-difference gradients (luma per pixel); zero on the one-pixel border.
pub fn gradient(src: ArrayView2<f32>) -> (Array2<f32>, Array2<f32>) {
    let (h, w) = src.dim();
    let mut gx = Array2::<f32>::zeros((h, w));
    let mut gy = Array2::<f32>::zeros((h, w));
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            gx[[y, x]] = 0.5 * (src[[y, x + 1]] - src[[y, x - 1]]);
            gy[[y, x]] = 0.5 * (src[[y + 1, x]] - src[[y - 1, x]]);
        }
    }
    (gx, gy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_match_the_model_script() {
        // tools/models/build_luma.py: exp(-x^2/2) normalised, sigma 1, 5 taps.
        let k = gaussian_taps();
        assert!((k[2] - 0.402_619_9).abs() < 1e-6, "{k:?}");
        assert!((k[0] - 0.054_488_7).abs() < 1e-6, "{k:?}");
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn blur_keeps_flat_borders_and_a_step_symmetric() {
        let mut img = RgbImage::new(8, 4);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb(if x < 4 { [0, 0, 0] } else { [255, 255, 255] });
        }
        let y = luma_of_rgb(&img);
        assert!(y[[0, 0]].abs() < 1e-6 && (y[[3, 7]] - 1.0).abs() < 1e-6);
        // Symmetric about the step at x = 3.5.
        assert!((y[[1, 3]] + y[[1, 4]] - 1.0).abs() < 1e-5);
    }
}
