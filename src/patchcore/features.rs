//! Backbone feature maps → patch features, as PatchCore builds them:
//! each map is averaged over a 3x3 neighbourhood (stride 1, zero padding counted, like
//! `torch.nn.AvgPool2d(3, 1, 1)`), the stride-16 map is upsampled bilinearly to the
//! stride-8 grid (`align_corners=False`), and the two are concatenated per position.
//!
//! The result is row-major `[patches, dim]` (one contiguous vector per patch), the layout
//! the nearest-neighbour search and the coreset read sequentially.

use serde::{Deserialize, Serialize};

/// Channel counts and grid sizes of the two feature maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLayout {
    pub c8: usize,
    pub c16: usize,
    /// The stride-8 grid, which is the patch grid.
    pub w: usize,
    pub h: usize,
    /// The stride-16 grid.
    pub w16: usize,
    pub h16: usize,
}

impl FeatureLayout {
    /// Layout for an input of `width` x `height` (multiples of 16).
    pub fn for_input(c8: usize, c16: usize, width: usize, height: usize) -> Self {
        FeatureLayout {
            c8,
            c16,
            w: width / 8,
            h: height / 8,
            w16: width / 16,
            h16: height / 16,
        }
    }

    pub fn dim(&self) -> usize {
        self.c8 + self.c16
    }

    pub fn patches(&self) -> usize {
        self.w * self.h
    }
}

/// Builds patch features with scratch space allocated once.
pub struct PatchAssembler {
    layout: FeatureLayout,
    pooled16: Vec<f32>,
}

impl PatchAssembler {
    pub fn new(layout: FeatureLayout) -> Self {
        PatchAssembler {
            pooled16: vec![0.0; layout.c16 * layout.h16 * layout.w16],
            layout,
        }
    }

    pub fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    /// `s8` is `[c8, h, w]`, `s16` is `[c16, h16, w16]` (batch 1, CHW); writes
    /// `[h*w, c8+c16]` into `out`.
    pub fn assemble(&mut self, s8: &[f32], s16: &[f32], out: &mut [f32]) {
        let l = self.layout;
        let d = l.dim();
        debug_assert_eq!(s8.len(), l.c8 * l.h * l.w);
        debug_assert_eq!(s16.len(), l.c16 * l.h16 * l.w16);
        debug_assert_eq!(out.len(), l.patches() * d);
        for c in 0..l.c8 {
            let plane = &s8[c * l.h * l.w..][..l.h * l.w];
            for y in 0..l.h {
                for x in 0..l.w {
                    out[(y * l.w + x) * d + c] = avg3x3(plane, l.w, l.h, x, y);
                }
            }
        }
        for c in 0..l.c16 {
            let plane = &s16[c * l.h16 * l.w16..][..l.h16 * l.w16];
            let dst = &mut self.pooled16[c * l.h16 * l.w16..][..l.h16 * l.w16];
            for y in 0..l.h16 {
                for x in 0..l.w16 {
                    dst[y * l.w16 + x] = avg3x3(plane, l.w16, l.h16, x, y);
                }
            }
        }
        for y in 0..l.h {
            let (y0, y1, fy) = bilinear_src(y, l.h16, l.h);
            for x in 0..l.w {
                let (x0, x1, fx) = bilinear_src(x, l.w16, l.w);
                let row = &mut out[(y * l.w + x) * d + l.c8..][..l.c16];
                for (c, o) in row.iter_mut().enumerate() {
                    let p = &self.pooled16[c * l.h16 * l.w16..];
                    let top = p[y0 * l.w16 + x0] * (1.0 - fx) + p[y0 * l.w16 + x1] * fx;
                    let bottom = p[y1 * l.w16 + x0] * (1.0 - fx) + p[y1 * l.w16 + x1] * fx;
                    *o = top * (1.0 - fy) + bottom * fy;
                }
            }
        }
    }
}

fn avg3x3(plane: &[f32], w: usize, h: usize, x: usize, y: usize) -> f32 {
    let mut sum = 0.0;
    for yy in y.saturating_sub(1)..(y + 2).min(h) {
        for xx in x.saturating_sub(1)..(x + 2).min(w) {
            sum += plane[yy * w + xx];
        }
    }
    sum / 9.0
}

/// Source taps of output index `dst` when resizing `src_n` → `dst_n` bilinearly with
/// `align_corners=False` (PyTorch's `F.interpolate`): (lower, upper, weight of upper).
pub fn bilinear_src(dst: usize, src_n: usize, dst_n: usize) -> (usize, usize, f32) {
    let scale = src_n as f32 / dst_n as f32;
    let s = ((dst as f32 + 0.5) * scale - 0.5).max(0.0);
    let i0 = (s.floor() as usize).min(src_n - 1);
    let i1 = (i0 + 1).min(src_n - 1);
    (i0, i1, s - i0 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_counts_padding_and_upsampling_matches_torch() {
        // 1 channel each; s8 4x4 of ones → corners average 4/9, edges 6/9, centre 1.
        let l = FeatureLayout::for_input(1, 1, 32, 32);
        let s8 = vec![1.0; 16];
        // s16 2x2 [[0, 1], [2, 3]]: pooled = each value's 3x3 sum / 9 = 6/9 everywhere.
        let s16 = [0.0, 1.0, 2.0, 3.0];
        let mut out = vec![0.0; 16 * 2];
        PatchAssembler::new(l).assemble(&s8, &s16, &mut out);
        assert!((out[0] - 4.0 / 9.0).abs() < 1e-6);
        assert!((out[2 * (4 + 1)] - 1.0).abs() < 1e-6);
        assert!((out[2] - 6.0 / 9.0).abs() < 1e-6, "edge patch");
        for p in 0..16 {
            assert!((out[p * 2 + 1] - 6.0 / 9.0).abs() < 1e-6);
        }
        // torch: F.interpolate(1x1x2x2, size=4, bilinear, align_corners=False) taps.
        assert_eq!(bilinear_src(0, 2, 4), (0, 1, 0.0));
        assert_eq!(bilinear_src(1, 2, 4), (0, 1, 0.25));
        assert_eq!(bilinear_src(2, 2, 4), (0, 1, 0.75));
        assert_eq!(bilinear_src(3, 2, 4).0, 1);
    }
}
