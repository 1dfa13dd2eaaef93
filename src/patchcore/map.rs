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
    /// Bilinear taps along x and y, computed once (they depend only on the sizes).
    taps_x: Vec<(usize, usize, f32)>,
    taps_y: Vec<(usize, usize, f32)>,
    up: Vec<f32>,
    tmp: Vec<f32>,
    /// One upsampled row with its reflected borders, so the horizontal pass is a plain
    /// (vectorisable) sum over shifted slices.
    padded: Vec<f32>,
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
            taps_x: (0..out_w).map(|x| bilinear_src(x, map_w, out_w)).collect(),
            taps_y: (0..out_h).map(|y| bilinear_src(y, map_h, out_h)).collect(),
            padded: vec![0.0; out_w + 2 * radius],
            kernel,
            up: vec![0.0; out_w * out_h],
            tmp: vec![0.0; out_w * out_h],
        }
    }

    pub fn out_size(&self) -> (usize, usize) {
        (self.out_w, self.out_h)
    }

    /// `patches` is `[map_h, map_w]`; writes `[out_h, out_w]` into `out`. Each output
    /// value is summed in the same order as the textbook loop (tap by tap), so the map
    /// does not depend on how the loops are vectorised.
    pub fn build(&mut self, patches: &[f32], out: &mut [f32]) {
        let (mw, w, h) = (self.map_w, self.out_w, self.out_h);
        debug_assert_eq!(patches.len(), mw * self.map_h);
        if w == 0 || h == 0 || patches.len() < mw * self.map_h {
            return;
        }
        for (row, &(y0, y1, fy)) in self.up.chunks_exact_mut(w).zip(&self.taps_y) {
            let (p0, p1) = (&patches[y0 * mw..][..mw], &patches[y1 * mw..][..mw]);
            for (u, &(x0, x1, fx)) in row.iter_mut().zip(&self.taps_x) {
                let top = p0[x0] * (1.0 - fx) + p0[x1] * fx;
                let bot = p1[x0] * (1.0 - fx) + p1[x1] * fx;
                *u = top * (1.0 - fy) + bot * fy;
            }
        }
        let r = self.kernel.len() / 2;
        // Horizontal pass: reflect the row into `padded` once, then add tap by tap.
        for (src, dst) in self.up.chunks_exact(w).zip(self.tmp.chunks_exact_mut(w)) {
            for (i, p) in self.padded.iter_mut().enumerate() {
                *p = src[reflect(i as isize - r as isize, w)];
            }
            dst.fill(0.0);
            for (k, kv) in self.kernel.iter().enumerate() {
                for (d, s) in dst.iter_mut().zip(&self.padded[k..k + w]) {
                    *d += kv * s;
                }
            }
        }
        // Vertical pass, row by row so the inner loop runs along contiguous memory.
        out[..w * h].fill(0.0);
        for (y, dst) in out[..w * h].chunks_exact_mut(w).enumerate() {
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

    /// The map as first written: one output value at a time, taps in order.
    fn textbook(b: &MapBuilder, patches: &[f32]) -> Vec<f32> {
        let (mw, mh, w, h) = (b.map_w, b.map_h, b.out_w, b.out_h);
        let mut up = vec![0.0f32; w * h];
        for y in 0..h {
            let (y0, y1, fy) = bilinear_src(y, mh, h);
            for x in 0..w {
                let (x0, x1, fx) = bilinear_src(x, mw, w);
                let top = patches[y0 * mw + x0] * (1.0 - fx) + patches[y0 * mw + x1] * fx;
                let bot = patches[y1 * mw + x0] * (1.0 - fx) + patches[y1 * mw + x1] * fx;
                up[y * w + x] = top * (1.0 - fy) + bot * fy;
            }
        }
        let r = b.kernel.len() / 2;
        let mut tmp = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, kv) in b.kernel.iter().enumerate() {
                    acc += kv * up[y * w + reflect(x as isize + k as isize - r as isize, w)];
                }
                tmp[y * w + x] = acc;
            }
        }
        let mut out = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, kv) in b.kernel.iter().enumerate() {
                    acc += kv * tmp[reflect(y as isize + k as isize - r as isize, h) * w + x];
                }
                out[y * w + x] = acc;
            }
        }
        out
    }

    #[test]
    fn map_is_the_textbook_loop_bit_for_bit() {
        let mut rng = crate::patchcore::SplitMix64::new(7);
        // The 5 MP tile (32 -> 256, sigma 4), a non-square one, and one whose kernel is
        // wider than the map (reflection wraps more than once).
        for (mw, mh, w, h, sigma) in [
            (32, 32, 256, 256, 4.0),
            (28, 20, 224, 160, 4.0),
            (4, 3, 8, 6, 4.0),
        ] {
            let mut b = MapBuilder::new(mw, mh, w, h, sigma);
            let patches: Vec<f32> = (0..mw * mh).map(|_| rng.next_f64() as f32 * 30.0).collect();
            let mut out = vec![0.0; w * h];
            b.build(&patches, &mut out);
            let want = textbook(&b, &patches);
            assert!(
                out.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{mw}x{mh} -> {w}x{h}"
            );
        }
    }
}
