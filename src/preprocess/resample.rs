//! Separable resampling weights, computed once per geometry and reused for every frame.
//!
//! Two conventions, because models are trained with one or the other and a mismatch costs
//! accuracy: `Bilinear` is Pillow's (antialiased: the kernel widens when shrinking — what
//! torchvision's `Resize` uses on PIL images), `Linear` is OpenCV's `INTER_LINEAR` (two taps
//! always — what Ultralytics' letterbox uses). `Nearest` follows OpenCV's `INTER_NEAREST`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Pillow `Image.BILINEAR` (antialiased).
    #[default]
    Bilinear,
    /// OpenCV `cv2.INTER_LINEAR` (not antialiased), bit for bit.
    Linear,
    /// OpenCV `cv2.INTER_LINEAR_EXACT` (within one 8-bit level).
    LinearExact,
    /// OpenCV `cv2.INTER_NEAREST`.
    Nearest,
}

/// Weights mapping `in_len` source samples (starting at `in_start`) to `out_len` samples.
#[derive(Debug, Clone, Default)]
pub struct Axis {
    /// First source index (absolute) each output sample reads.
    pub start: Vec<usize>,
    /// Number of taps each output sample reads.
    pub len: Vec<usize>,
    /// `taps` weights per output sample; unused tail weights are zero.
    pub weights: Vec<f32>,
    pub taps: usize,
    /// Whether the horizontal pass rounds to 8 bits before the vertical one (Pillow does;
    /// OpenCV keeps the intermediate in fixed point).
    pub round_between_passes: bool,
    /// Whether the vertical pass reproduces OpenCV's vectorised fixed-point arithmetic
    /// (`INTER_LINEAR`) instead of rounding an exact sum.
    pub opencv_fixed_point: bool,
}

impl Axis {
    pub fn new(interp: Interpolation, in_start: usize, in_len: usize, out_len: usize) -> Axis {
        match interp {
            Interpolation::Bilinear => pillow_bilinear(in_start, in_len, out_len),
            Interpolation::Linear => opencv_linear(in_start, in_len, out_len, true),
            Interpolation::LinearExact => opencv_linear(in_start, in_len, out_len, false),
            Interpolation::Nearest => opencv_nearest(in_start, in_len, out_len),
        }
    }

    #[inline(always)]
    pub fn taps_of(&self, i: usize) -> (usize, &[f32]) {
        let w = &self.weights[i * self.taps..i * self.taps + self.len[i]];
        (self.start[i], w)
    }

    /// Lowest and highest source index any output sample reads (inclusive, exclusive).
    pub fn source_span(&self) -> (usize, usize) {
        let lo = self.start.iter().copied().min().unwrap_or(0);
        let hi = self
            .start
            .iter()
            .zip(&self.len)
            .map(|(s, l)| s + l)
            .max()
            .unwrap_or(0);
        (lo, hi)
    }
}

fn pillow_bilinear(in_start: usize, in_len: usize, out_len: usize) -> Axis {
    // Pillow's precompute_coeffs (libImaging/Resample.c) with the triangle filter, support 1.
    let scale = in_len as f64 / out_len as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    // Padded to a multiple of 8 with zero weights, so the horizontal pass can run
    // fixed-width dot products that the compiler vectorises.
    let taps = ((support.ceil() as usize) * 2 + 1).next_multiple_of(8);
    let mut axis = Axis {
        start: Vec::with_capacity(out_len),
        len: Vec::with_capacity(out_len),
        weights: vec![0.0; out_len * taps],
        taps,
        round_between_passes: true,
        opencv_fixed_point: false,
    };
    let ss = 1.0 / filterscale;
    for xx in 0..out_len {
        let center = (xx as f64 + 0.5) * scale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_len as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(taps);
        let k = &mut axis.weights[xx * taps..xx * taps + n];
        let mut total = 0.0f64;
        for (x, kw) in k.iter_mut().enumerate() {
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            let w = (1.0 - t.abs()).max(0.0);
            *kw = w as f32;
            total += w;
        }
        if total != 0.0 {
            for kw in k.iter_mut() {
                *kw = (f64::from(*kw) / total) as f32;
            }
        }
        axis.start.push(in_start + xmin);
        axis.len.push(n);
    }
    axis
}

fn opencv_linear(in_start: usize, in_len: usize, out_len: usize, fixed_point: bool) -> Axis {
    let scale = in_len as f64 / out_len as f64;
    let mut axis = Axis {
        start: Vec::with_capacity(out_len),
        len: Vec::with_capacity(out_len),
        weights: vec![0.0; out_len * 2],
        taps: 2,
        round_between_passes: false,
        opencv_fixed_point: fixed_point,
    };
    for dx in 0..out_len {
        let f = ((dx as f64 + 0.5) * scale - 0.5) as f32;
        let mut sx = f.floor() as i64;
        let mut fx = f - sx as f32;
        if sx < 0 {
            sx = 0;
            fx = 0.0;
        }
        if sx >= in_len as i64 - 1 {
            sx = in_len as i64 - 1;
            fx = 0.0;
        }
        // OpenCV quantises weights to 11 bits (INTER_RESIZE_COEF_BITS): the first is
        // cvRound((1 - fx) * 2048), the second what is left of 2048.
        let b = (2048.0 - ((1.0 - fx) * 2048.0).round_ties_even()) / 2048.0;
        let n = if b == 0.0 { 1 } else { 2 };
        axis.weights[dx * 2] = 1.0 - b;
        axis.weights[dx * 2 + 1] = b;
        axis.start.push(in_start + sx as usize);
        axis.len.push(n);
    }
    axis
}

fn opencv_nearest(in_start: usize, in_len: usize, out_len: usize) -> Axis {
    let scale = in_len as f64 / out_len as f64;
    let mut axis = Axis {
        start: Vec::with_capacity(out_len),
        len: vec![1; out_len],
        weights: vec![1.0; out_len],
        taps: 1,
        round_between_passes: false,
        opencv_fixed_point: false,
    };
    for dx in 0..out_len {
        let sx = ((dx as f64 * scale).floor() as usize).min(in_len - 1);
        axis.start.push(in_start + sx);
    }
    axis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one() {
        for interp in [
            Interpolation::Bilinear,
            Interpolation::Linear,
            Interpolation::LinearExact,
            Interpolation::Nearest,
        ] {
            for (i, o) in [(1280, 224), (100, 300), (7, 7), (3, 1)] {
                let a = Axis::new(interp, 0, i, o);
                for k in 0..o {
                    let (s, w) = a.taps_of(k);
                    let sum: f32 = w.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{interp:?} {i}->{o} [{k}] {sum}");
                    assert!(s + w.len() <= i, "{interp:?} reads past the source");
                }
            }
        }
    }

    #[test]
    fn identity_size_is_a_copy() {
        let a = Axis::new(Interpolation::Bilinear, 5, 10, 10);
        for k in 0..10 {
            let (s, w) = a.taps_of(k);
            let (best, _) =
                w.iter()
                    .enumerate()
                    .fold((0, 0.0f32), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            assert_eq!(s + best, 5 + k);
            assert!((w[best] - 1.0).abs() < 1e-6);
        }
    }
}
