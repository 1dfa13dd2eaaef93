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
mod copy;
mod dense;
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
    /// The source region, when it is exactly as large as `dst` (no resampling at all).
    copy: Option<Rect>,
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
        // Every path writes only the resampled region; the letterbox bars are filled here.
        self.fill_padding(plan, out);
        if let Some(src) = plan.copy {
            let copy = copy::OneToOne {
                spec: &self.spec,
                lut: &self.lut,
                src,
                dst: plan.dst,
                row: &mut self.row,
            };
            copy::run(copy, bytes, layout, out);
            return Ok(plan.transform);
        }
        if let Some(sparse) = &plan.sparse {
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
        let dense = dense::Dense {
            spec: &self.spec,
            lut: &self.lut,
            plan,
            row: &mut self.row,
            horizontal: &mut self.horizontal,
            acc: &mut self.acc,
            planes: &mut self.planes,
        };
        dense::run(dense, bytes, layout, out, self.kernels.level);
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
        let same_size = src.width == dst.width && src.height == dst.height;
        let copy = (same_size && !self.dense_only).then_some(src);
        let sparse = match interp {
            _ if self.dense_only || copy.is_some() => None,
            Interpolation::Linear => Some(SparsePlan::linear(&x, &y)),
            Interpolation::Nearest => Some(SparsePlan::nearest(&x, &y)),
            Interpolation::Bilinear | Interpolation::LinearExact => None,
        };
        if copy.is_some() {
            self.row.resize(src.width as usize * ch, 0);
        } else if let Some(sp) = &sparse {
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
            copy,
        });
        Ok(())
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
