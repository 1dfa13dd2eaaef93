//! Frame → model input tensor, in one call with no per-frame allocation.
//!
//! Each source row of the region of interest is converted from the frame's pixel format
//! (stride honoured) straight into the horizontal resampling pass; the vertical pass
//! writes normalised floats directly into the caller's tensor (NCHW or NHWC, RGB or BGR,
//! optional letterbox padding). Weights and scratch rows are sized once per frame
//! geometry and reused.
//!
//! We resample by hand rather than with `fast_image_resize` because that crate allocates
//! its weights on every call and has no YUV input; fusing conversion into the horizontal
//! pass also saves a full-frame RGB copy.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod color;
mod pixel;
mod resample;
mod simd;
mod sparse;
mod taps;

mod placement;
mod spec;

pub use color::convert_row;
pub use placement::{center_crop, letterbox};
pub use resample::{Axis, Interpolation};
pub use simd::SimdLevel;
pub use spec::{ColorOrder, Fit, Layout, PreprocessError, PreprocessSpec, Rect, Transform};

use placement::full;
use simd::Kernels;
use sparse::{RowCache, SparsePlan};

use crate::frame::FrameLayout;

/// Geometry derived from one frame size; rebuilt only when the frame size changes.
struct Plan {
    frame: (u32, u32),
    x: Axis,
    y: Axis,
    /// Resampled region inside the model input.
    dst: Rect,
    transform: Transform,
    src_x: (usize, usize),
    src_y: (usize, usize),
    /// Source rows (from `src_y.0`) that some vertical weight reads.
    rows_needed: Vec<bool>,
    /// Integer tap tables for `linear` and `nearest`, which read only the pixels they need.
    sparse: Option<SparsePlan>,
}

pub struct Preprocessor {
    spec: PreprocessSpec,
    /// (value * scale - mean) / std for each channel and 8-bit value.
    lut: Vec<[f32; 256]>,
    plan: Option<Plan>,
    row: Vec<u8>,
    horizontal: Vec<f32>,
    acc: Vec<f32>,
    /// One source row as three f32 planes, zero-padded by the tap count.
    planes: [Vec<f32>; 3],
    /// Horizontal sums of the sparse `linear` path.
    cache: RowCache,
    kernels: Kernels,
    /// Unit tests set this to run `linear`/`nearest` through the generic (dense) passes,
    /// the reference the sparse ones must equal.
    dense_only: bool,
}

impl Preprocessor {
    pub fn new(spec: PreprocessSpec) -> Self {
        let lut = (0..spec.color.channels())
            .map(|c| {
                let mut t = [0f32; 256];
                for (v, slot) in t.iter_mut().enumerate() {
                    *slot = (v as f32 * spec.scale - spec.mean[c]) / spec.std[c];
                }
                t
            })
            .collect();
        Preprocessor {
            spec,
            lut,
            plan: None,
            row: Vec::new(),
            horizontal: Vec::new(),
            acc: Vec::new(),
            planes: Default::default(),
            cache: RowCache::default(),
            kernels: Kernels {
                level: SimdLevel::detect(),
            },
            dense_only: false,
        }
    }

    /// Vector kernels on (the best this CPU has) or off (scalar); results are identical,
    /// so this is for tests and benchmarks. `LINESIDE_SIMD=off` sets the default to off.
    pub fn use_simd(&mut self, on: bool) {
        self.kernels.level = if on {
            SimdLevel::best()
        } else {
            SimdLevel::Scalar
        };
    }

    /// The vector instructions this preprocessor uses.
    pub fn simd(&self) -> SimdLevel {
        self.kernels.level
    }

    pub fn spec(&self) -> &PreprocessSpec {
        &self.spec
    }

    /// Writes the model input for one frame into `out` and returns the coordinate mapping.
    pub fn run(
        &mut self,
        bytes: &[u8],
        layout: &FrameLayout,
        out: &mut [f32],
    ) -> Result<Transform, PreprocessError> {
        layout.check(bytes.len())?;
        let need = self.spec.width * self.spec.height * self.spec.color.channels();
        if out.len() != need {
            return Err(PreprocessError::OutputSize {
                have: out.len(),
                need,
            });
        }
        if self
            .plan
            .as_ref()
            .is_none_or(|p| p.frame != (layout.width, layout.height))
        {
            self.replan(layout.width, layout.height)?;
        }
        let Some(plan) = self.plan.as_ref() else {
            return Err(PreprocessError::OutputSize { have: 0, need });
        };
        let ch = self.spec.color.channels();
        let dst_w = plan.dst.width as usize;
        if let Some(sparse) = &plan.sparse {
            self.fill_padding(plan, out);
            let frame = sparse::Frame {
                bytes,
                layout,
                lut: &self.lut,
                kernels: self.kernels,
            };
            let mut target = sparse::Target {
                out,
                layout: self.spec.layout,
                width: self.spec.width,
                height: self.spec.height,
                x0: plan.dst.x as usize,
                y0: plan.dst.y as usize,
                dst_w,
                ch,
                swap: self.spec.color == ColorOrder::Bgr,
            };
            sparse::run(sparse, &frame, &mut self.cache, &mut target);
            return Ok(plan.transform);
        }
        let (x_lo, x_hi) = plan.src_x;
        let (y_lo, y_hi) = plan.src_y;
        let row = &mut self.row[..(x_hi - x_lo) * ch];
        let round = plan.x.round_between_passes;

        // Pass 1: convert each source row the vertical weights read and resample it
        // horizontally into a planar row (one run of `dst_w` floats per channel).
        for sy in y_lo..y_hi {
            if !plan.rows_needed[sy - y_lo] {
                continue;
            }
            convert_row(bytes, layout, sy, x_lo, ch, row);
            let h_row = &mut self.horizontal[(sy - y_lo) * dst_w * ch..][..dst_w * ch];
            if ch == 3 && plan.x.taps >= 8 {
                deinterleave(row, &mut self.planes);
                horizontal_planar(&plan.x, &self.planes, x_lo, round, h_row);
            } else if ch == 3 {
                horizontal_rgb(&plan.x, row, x_lo, round, h_row);
            } else {
                horizontal_grey(&plan.x, row, x_lo, round, h_row);
            }
        }

        // Pass 2: vertical resampling (an axpy per tap over a whole row), then 8-bit
        // rounding, normalisation and layout in one write.
        self.fill_padding(plan, out);
        let (w_in, h_in) = (self.spec.width, self.spec.height);
        let swap = self.spec.color == ColorOrder::Bgr;
        let acc = &mut self.acc[..dst_w];
        for dy in 0..plan.dst.height as usize {
            let (start, w) = plan.y.taps_of(dy);
            let ty = plan.dst.y as usize + dy;
            for c in 0..ch {
                acc.fill(0.0);
                if plan.y.opencv_fixed_point {
                    // OpenCV's vectorised INTER_LINEAR: horizontal sums S in units of 1/2048,
                    // each row term ((S >> 4) * beta) >> 16, then (t + 2) >> 2. Summed here in
                    // integers, kept in `acc` as the final 8-bit value.
                    for (k, &wk) in w.iter().enumerate() {
                        let src =
                            &self.horizontal[((start - y_lo + k) * ch + c) * dst_w..][..dst_w];
                        let beta = (wk * 2048.0) as i32;
                        for (a, &v) in acc.iter_mut().zip(src) {
                            let s = (v * 2048.0) as i32;
                            *a += (((s >> 4) * beta) >> 16) as f32;
                        }
                    }
                    for a in acc.iter_mut() {
                        *a = (((*a as i32) + 2) >> 2) as f32;
                    }
                } else {
                    for (k, &wk) in w.iter().enumerate() {
                        let src =
                            &self.horizontal[((start - y_lo + k) * ch + c) * dst_w..][..dst_w];
                        for (a, &v) in acc.iter_mut().zip(src) {
                            *a += wk * v;
                        }
                    }
                }
                let oc = if swap { 2 - c } else { c };
                let lut = &self.lut[c];
                match self.spec.layout {
                    Layout::Nchw => {
                        let base = (oc * h_in + ty) * w_in + plan.dst.x as usize;
                        for (o, &a) in out[base..base + dst_w].iter_mut().zip(acc.iter()) {
                            *o = lut[(a + 0.5).clamp(0.0, 255.0) as usize];
                        }
                    }
                    Layout::Nhwc => {
                        for (dx, &a) in acc.iter().enumerate() {
                            let idx = (ty * w_in + plan.dst.x as usize + dx) * ch + oc;
                            out[idx] = lut[(a + 0.5).clamp(0.0, 255.0) as usize];
                        }
                    }
                }
            }
        }
        Ok(plan.transform)
    }

    fn fill_padding(&self, plan: &Plan, out: &mut [f32]) {
        if self.spec.fit != Fit::Letterbox {
            return;
        }
        let (w, h, ch) = (
            self.spec.width,
            self.spec.height,
            self.spec.color.channels(),
        );
        let d = plan.dst;
        let inside = |x: usize, y: usize| {
            x >= d.x as usize
                && x < (d.x + d.width) as usize
                && y >= d.y as usize
                && y < (d.y + d.height) as usize
        };
        let pad = usize::from(self.spec.pad_value);
        for y in 0..h {
            for x in 0..w {
                if inside(x, y) {
                    continue;
                }
                for c in 0..ch {
                    let idx = match self.spec.layout {
                        Layout::Nchw => (c * h + y) * w + x,
                        Layout::Nhwc => (y * w + x) * ch + c,
                    };
                    out[idx] = self.lut[c][pad];
                }
            }
        }
    }

    fn replan(&mut self, fw: u32, fh: u32) -> Result<(), PreprocessError> {
        let region = match self.spec.roi {
            Some(r) => {
                check_roi(r, fw, fh)?;
                r
            }
            None => Rect {
                x: 0,
                y: 0,
                width: fw,
                height: fh,
            },
        };
        let (mw, mh) = (self.spec.width as u32, self.spec.height as u32);
        let (src, dst) = match self.spec.fit {
            Fit::Stretch => (region, full(mw, mh)),
            Fit::CenterCrop => (
                center_crop(region, mw, mh, self.spec.crop_fraction),
                full(mw, mh),
            ),
            Fit::Letterbox => (region, letterbox(region, mw, mh)),
        };
        let interp = self.spec.interpolation;
        let x = Axis::new(
            interp,
            src.x as usize,
            src.width as usize,
            dst.width as usize,
        );
        let y = Axis::new(
            interp,
            src.y as usize,
            src.height as usize,
            dst.height as usize,
        );
        let src_x = x.source_span();
        let src_y = y.source_span();
        let ch = self.spec.color.channels();
        let sparse = match interp {
            _ if self.dense_only => None,
            Interpolation::Linear => Some(SparsePlan::linear(&x, &y)),
            Interpolation::Nearest => Some(SparsePlan::nearest(&x, &y)),
            Interpolation::Bilinear | Interpolation::LinearExact => None,
        };
        if let Some(sp) = &sparse {
            self.cache.reset(sp.scratch_len(ch));
        } else {
            self.row.resize((src_x.1 - src_x.0) * ch, 0);
            self.horizontal
                .resize((src_y.1 - src_y.0) * dst.width as usize * ch, 0.0);
            self.acc.resize(dst.width as usize, 0.0);
            for p in &mut self.planes {
                p.clear();
                p.resize(src_x.1 - src_x.0 + x.taps, 0.0);
            }
        }
        let mut rows_needed = vec![false; src_y.1 - src_y.0];
        for i in 0..dst.height as usize {
            let (start, w) = y.taps_of(i);
            for (k, wk) in w.iter().enumerate() {
                if *wk != 0.0 {
                    rows_needed[start - src_y.0 + k] = true;
                }
            }
        }
        let transform = Transform {
            origin: (src.x as f32, src.y as f32),
            scale: (
                src.width as f32 / dst.width as f32,
                src.height as f32 / dst.height as f32,
            ),
            pad: (dst.x as f32, dst.y as f32),
        };
        self.plan = Some(Plan {
            frame: (fw, fh),
            x,
            y,
            dst,
            transform,
            src_x,
            src_y,
            rows_needed,
            sparse,
        });
        Ok(())
    }
}

#[inline(always)]
fn finish_tap(acc: f32, round: bool) -> f32 {
    if round {
        // Round half up to 0..=255. Truncating a non-negative float is floor, without
        // the libm call `floor()` becomes on baseline x86-64.
        ((acc + 0.5).clamp(0.0, 255.0) as u32) as f32
    } else {
        acc
    }
}

/// Horizontal pass over one interleaved RGB row into a planar `[r.. g.. b..]` row.
fn horizontal_rgb(x: &Axis, row: &[u8], x_lo: usize, round: bool, out: &mut [f32]) {
    let dst_w = out.len() / 3;
    let (r_out, rest) = out.split_at_mut(dst_w);
    let (g_out, b_out) = rest.split_at_mut(dst_w);
    for dx in 0..dst_w {
        let (start, w) = x.taps_of(dx);
        let src = &row[(start - x_lo) * 3..(start - x_lo + w.len()) * 3];
        let (mut r, mut g, mut b) = (0f32, 0f32, 0f32);
        for (p, &wk) in src.chunks_exact(3).zip(w) {
            r += wk * f32::from(p[0]);
            g += wk * f32::from(p[1]);
            b += wk * f32::from(p[2]);
        }
        r_out[dx] = finish_tap(r, round);
        g_out[dx] = finish_tap(g, round);
        b_out[dx] = finish_tap(b, round);
    }
}

/// Splits an interleaved RGB row into the first `len` floats of three planes.
fn deinterleave(row: &[u8], planes: &mut [Vec<f32>; 3]) {
    let [r, g, b] = planes;
    for (((p, r), g), b) in row
        .chunks_exact(3)
        .zip(r.iter_mut())
        .zip(g.iter_mut())
        .zip(b.iter_mut())
    {
        *r = f32::from(p[0]);
        *g = f32::from(p[1]);
        *b = f32::from(p[2]);
    }
}

/// Dot product over whole chunks of 8 (`w.len()` is a multiple of 8).
#[inline(always)]
fn dot8(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (wc, xc) in w.chunks_exact(8).zip(x.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += wc[i] * xc[i];
        }
    }
    acc.iter().sum()
}

/// Horizontal pass for wide kernels (large downscales): every output reads `taps`
/// consecutive floats of each plane; zero weights and zero padding cover the tail.
fn horizontal_planar(x: &Axis, planes: &[Vec<f32>; 3], x_lo: usize, round: bool, out: &mut [f32]) {
    let dst_w = out.len() / 3;
    let taps = x.taps;
    for (c, plane) in planes.iter().enumerate() {
        let o = &mut out[c * dst_w..(c + 1) * dst_w];
        for (dx, v) in o.iter_mut().enumerate() {
            let start = x.start[dx] - x_lo;
            let w = &x.weights[dx * taps..(dx + 1) * taps];
            *v = finish_tap(dot8(w, &plane[start..start + taps]), round);
        }
    }
}

fn horizontal_grey(x: &Axis, row: &[u8], x_lo: usize, round: bool, out: &mut [f32]) {
    for (dx, o) in out.iter_mut().enumerate() {
        let (start, w) = x.taps_of(dx);
        let src = &row[start - x_lo..start - x_lo + w.len()];
        let acc: f32 = src.iter().zip(w).map(|(&p, &wk)| wk * f32::from(p)).sum();
        *o = finish_tap(acc, round);
    }
}

#[cfg(test)]
mod equivalence_tests;

/// Checks that `roi` is non-empty and lies inside a `fw`x`fh` frame (`validate` asks this
/// of the first frame's size, `run` of every frame).
pub fn check_roi(roi: Rect, fw: u32, fh: u32) -> Result<(), PreprocessError> {
    if roi.width == 0
        || roi.height == 0
        || roi.x.saturating_add(roi.width) > fw
        || roi.y.saturating_add(roi.height) > fh
    {
        return Err(PreprocessError::RoiOutside {
            roi,
            width: fw,
            height: fh,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelFormat;

    fn spec(w: usize, h: usize) -> PreprocessSpec {
        PreprocessSpec {
            roi: None,
            fit: Fit::Stretch,
            crop_fraction: 1.0,
            pad_value: 114,
            interpolation: Interpolation::Bilinear,
            color: ColorOrder::Rgb,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            layout: Layout::Nchw,
            width: w,
            height: h,
        }
    }

    #[test]
    fn same_size_rgb_is_exact_and_planar() {
        let layout = FrameLayout::packed(2, 1, PixelFormat::Rgb24);
        let bytes = [1u8, 2, 3, 4, 5, 6];
        let mut out = [0f32; 6];
        Preprocessor::new(spec(2, 1))
            .run(&bytes, &layout, &mut out)
            .unwrap();
        assert_eq!(out, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn bgr_models_get_swapped_channels_and_padded_stride_is_skipped() {
        let layout = FrameLayout {
            stride: 8,
            ..FrameLayout::packed(2, 2, PixelFormat::Rgb24)
        };
        let bytes = [
            1u8, 2, 3, 4, 5, 6, 99, 99, //
            7, 8, 9, 10, 11, 12, 99, 99,
        ];
        let mut s = spec(2, 2);
        s.color = ColorOrder::Bgr;
        s.layout = Layout::Nhwc;
        let mut out = [0f32; 12];
        Preprocessor::new(s).run(&bytes, &layout, &mut out).unwrap();
        assert_eq!(&out[..6], &[3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        assert_eq!(&out[6..], &[9.0, 8.0, 7.0, 12.0, 11.0, 10.0]);
    }

    #[test]
    fn roi_outside_frame_is_an_error_not_a_panic() {
        let layout = FrameLayout::packed(4, 4, PixelFormat::Grey);
        let mut s = spec(2, 2);
        s.roi = Some(Rect {
            x: 3,
            y: 0,
            width: 2,
            height: 2,
        });
        let mut out = [0f32; 12];
        let err = Preprocessor::new(s)
            .run(&[0u8; 16], &layout, &mut out)
            .unwrap_err();
        assert!(matches!(err, PreprocessError::RoiOutside { .. }));
    }

    #[test]
    fn letterbox_matches_ultralytics_geometry_and_maps_back() {
        let r = Rect {
            x: 0,
            y: 0,
            width: 1280,
            height: 720,
        };
        let d = letterbox(r, 640, 640);
        assert_eq!((d.x, d.y, d.width, d.height), (0, 140, 640, 360));
        let layout = FrameLayout::packed(1280, 720, PixelFormat::Grey);
        let mut s = spec(640, 640);
        s.fit = Fit::Letterbox;
        s.color = ColorOrder::Gray;
        let mut out = vec![0f32; 640 * 640];
        let t = Preprocessor::new(s)
            .run(&vec![7u8; 1280 * 720], &layout, &mut out)
            .unwrap();
        assert_eq!(out[0], 114.0);
        assert_eq!(out[320 * 640 + 320], 7.0);
        assert_eq!(t.to_frame(320.0, 320.0), (640.0, 360.0));
    }

    #[test]
    fn center_crop_is_imagenet_style() {
        let r = Rect {
            x: 0,
            y: 0,
            width: 451,
            height: 300,
        };
        let c = center_crop(r, 224, 224, 0.875);
        assert_eq!((c.width, c.height), (263, 263));
        assert_eq!((c.x, c.y), (94, 19));
    }
}
