//! Patch distances → anomaly map at model-input resolution: bilinear upsampling
//! (`align_corners=False`) then a separable Gaussian blur with reflected borders, as
//! anomalib's PatchCore `AnomalyMapGenerator` does (sigma 4, kernel 2·⌊4σ+0.5⌋+1).

use super::features::bilinear_src;

pub struct MapBuilder {
    map_w: usize,
    map_h: usize,
    out_w: usize,
    out_h: usize,
    kernel: Vec<f32>,
    up: Vec<f32>,
    tmp: Vec<f32>,
}

impl MapBuilder {
    pub fn new(map_w: usize, map_h: usize, out_w: usize, out_h: usize, sigma: f32) -> Self {
        let radius = (4.0 * sigma + 0.5) as usize;
        let mut kernel: Vec<f32> = (0..=2 * radius)
            .map(|i| {
                let x = i as f32 - radius as f32;
                (-x * x / (2.0 * sigma * sigma)).exp()
            })
            .collect();
        let sum: f32 = kernel.iter().sum();
        kernel.iter_mut().for_each(|k| *k /= sum);
        MapBuilder {
            map_w,
            map_h,
            out_w,
            out_h,
            kernel,
            up: vec![0.0; out_w * out_h],
            tmp: vec![0.0; out_w * out_h],
        }
    }

    pub fn out_size(&self) -> (usize, usize) {
        (self.out_w, self.out_h)
    }

    /// `patches` is `[map_h, map_w]`; writes `[out_h, out_w]` into `out`.
    pub fn build(&mut self, patches: &[f32], out: &mut [f32]) {
        let (mw, mh, w, h) = (self.map_w, self.map_h, self.out_w, self.out_h);
        for y in 0..h {
            let (y0, y1, fy) = bilinear_src(y, mh, h);
            for x in 0..w {
                let (x0, x1, fx) = bilinear_src(x, mw, w);
                let top = patches[y0 * mw + x0] * (1.0 - fx) + patches[y0 * mw + x1] * fx;
                let bot = patches[y1 * mw + x0] * (1.0 - fx) + patches[y1 * mw + x1] * fx;
                self.up[y * w + x] = top * (1.0 - fy) + bot * fy;
            }
        }
        let r = self.kernel.len() / 2;
        // Horizontal pass.
        for y in 0..h {
            let src = &self.up[y * w..(y + 1) * w];
            let dst = &mut self.tmp[y * w..(y + 1) * w];
            for (x, d) in dst.iter_mut().enumerate() {
                let mut acc = 0.0;
                for (k, kv) in self.kernel.iter().enumerate() {
                    acc += kv * src[reflect(x as isize + k as isize - r as isize, w)];
                }
                *d = acc;
            }
        }
        // Vertical pass, row by row so the inner loop runs along contiguous memory.
        out[..w * h].fill(0.0);
        for y in 0..h {
            let dst = &mut out[y * w..(y + 1) * w];
            for (k, kv) in self.kernel.iter().enumerate() {
                let sy = reflect(y as isize + k as isize - r as isize, h);
                let src = &self.tmp[sy * w..(sy + 1) * w];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += kv * s;
                }
            }
        }
    }
}

/// Reflect-101 index (`torch` "reflect" padding: `dcb|abcd|cba`).
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_maps_stay_constant_and_peaks_spread_symmetrically() {
        let mut b = MapBuilder::new(4, 4, 32, 32, 4.0);
        let mut out = vec![0.0; 32 * 32];
        b.build(&[2.5; 16], &mut out);
        assert!(out.iter().all(|v| (v - 2.5).abs() < 1e-5));
        let mut p = [0.0; 16];
        p[5] = 1.0; // (1,1) of a 4x4 grid
        b.build(&p, &mut out);
        let peak = out.iter().cloned().fold(0.0, f32::max);
        assert!(peak > 0.0 && peak < 1.0, "blurred peak {peak}");
        assert_eq!(reflect(-1, 5), 1);
        assert_eq!(reflect(5, 5), 3);
    }
}
