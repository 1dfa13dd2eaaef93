//! `linear` (OpenCV `INTER_LINEAR`, fixed point) and `nearest` (`INTER_NEAREST`): each
//! output pixel reads two (or one) source pixels, so these paths convert only those
//! pixels — never whole rows — and keep integers until the normalising write.
//!
//! Every kernel has a scalar version (the reference) and, where the CPU has it, a vector
//! version in [`super::simd`] that gives the same bits (tests compare the two).

use super::pixel::SourceRow;
use super::resample::Axis;
use super::simd::Kernels;
use super::spec::Layout;
use super::taps::{vertical_fixed, FixedTaps, LANES};
use crate::frame::{FrameLayout, PixelFormat};

/// Per-geometry tables for one of the two sparse interpolations.
pub(super) enum SparsePlan {
    Linear {
        x: FixedTaps,
        y: FixedTaps,
        /// Byte offsets and luma shifts of `x`'s taps in a packed 4:2:2 row.
        packed: PackedTaps,
    },
    Nearest {
        x: Vec<usize>,
        y: Vec<usize>,
        packed: PackedTaps,
    },
}

/// Where each tap's pixel lies in a YUYV/UYVY row: the byte offset of its 4-byte pixel
/// pair and the bit shift of its luma byte within that pair (YUYV order; UYVY adds 8).
#[derive(Debug, Default)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the AVX2 kernels only
pub(super) struct PackedTaps {
    /// Bytes from the row start that the taps read (the last pair's end).
    pub span: usize,
    pub off0: Vec<i32>,
    pub shift0: Vec<i32>,
    pub off1: Vec<i32>,
    pub shift1: Vec<i32>,
}

impl PackedTaps {
    fn new(i0: &[usize], i1: &[usize]) -> Option<PackedTaps> {
        let off = |x: usize| i32::try_from((x & !1) * 2).ok();
        let shift = |x: usize| ((x & 1) * 16) as i32;
        let last = i0
            .iter()
            .chain(i1)
            .map(|&x| (x & !1) * 2 + 4)
            .max()
            .unwrap_or(0);
        Some(PackedTaps {
            span: last,
            off0: i0.iter().map(|&x| off(x)).collect::<Option<_>>()?,
            shift0: i0.iter().map(|&x| shift(x)).collect(),
            off1: i1.iter().map(|&x| off(x)).collect::<Option<_>>()?,
            shift1: i1.iter().map(|&x| shift(x)).collect(),
        })
    }
}

impl SparsePlan {
    /// Tables for `x`/`y` axes made by `Axis::new(Linear | Nearest, ..)`.
    pub fn linear(x: &Axis, y: &Axis) -> SparsePlan {
        let x = FixedTaps::from_axis(x, true);
        let packed = PackedTaps::new(&x.i0, &x.i1).unwrap_or_default();
        SparsePlan::Linear {
            packed,
            x,
            y: FixedTaps::from_axis(y, false),
        }
    }

    pub fn nearest(x: &Axis, y: &Axis) -> SparsePlan {
        let n = x.start.len();
        let xs: Vec<usize> = (0..n.next_multiple_of(LANES))
            .map(|i| x.start[i.min(n.saturating_sub(1))])
            .collect();
        let packed = PackedTaps::new(&xs, &xs).unwrap_or_default();
        SparsePlan::Nearest {
            x: xs,
            y: y.start.clone(),
            packed,
        }
    }

    /// Horizontal sums scratch needed: two rows of `ch` padded channel runs.
    pub fn scratch_len(&self, ch: usize) -> usize {
        match self {
            SparsePlan::Linear { x, .. } => 2 * ch * x.i0.len(),
            SparsePlan::Nearest { .. } => 0,
        }
    }
}

/// Where the resampled region goes in the model input.
pub(super) struct Target<'a> {
    pub out: &'a mut [f32],
    pub layout: Layout,
    pub width: usize,
    pub height: usize,
    pub x0: usize,
    pub y0: usize,
    pub dst_w: usize,
    pub ch: usize,
    pub swap: bool,
}

impl Target<'_> {
    /// Index of output pixel 0 of row `dy`, channel `c`, and the step between pixels.
    fn row(&self, dy: usize, c: usize) -> (usize, usize) {
        let oc = if self.swap { 2 - c } else { c };
        let ty = self.y0 + dy;
        match self.layout {
            Layout::Nchw => ((oc * self.height + ty) * self.width + self.x0, 1),
            Layout::Nhwc => ((ty * self.width + self.x0) * self.ch + oc, self.ch),
        }
    }

    /// The contiguous output run of row `dy`, channel `c` (NCHW only).
    fn run(&mut self, dy: usize, c: usize) -> Option<&mut [f32]> {
        let (base, step) = self.row(dy, c);
        (step == 1).then(|| &mut self.out[base..base + self.dst_w])
    }
}

/// Horizontal sums of two source rows, cached across output rows (upscales reuse rows).
#[derive(Default)]
pub(super) struct RowCache {
    pub sums: Vec<i32>,
    tags: [Option<usize>; 2],
}

impl RowCache {
    pub fn reset(&mut self, len: usize) {
        self.sums.clear();
        self.sums.resize(len, 0);
        self.tags = [None; 2];
    }
}

/// Everything one frame's sparse pass reads.
pub(super) struct Frame<'a> {
    pub bytes: &'a [u8],
    pub layout: &'a FrameLayout,
    pub lut: &'a [[f32; 256]],
    pub kernels: Kernels,
}

pub(super) fn run(plan: &SparsePlan, f: &Frame, cache: &mut RowCache, t: &mut Target) {
    match plan {
        SparsePlan::Linear { x, y, packed } => linear(x, y, packed, f, cache, t),
        SparsePlan::Nearest { x, y, packed } => nearest(x, y, packed, f, t),
    }
}

fn is_packed_422(format: PixelFormat) -> bool {
    matches!(format, PixelFormat::Yuyv | PixelFormat::Uyvy)
}

fn linear(
    x: &FixedTaps,
    y: &FixedTaps,
    packed: &PackedTaps,
    f: &Frame,
    cache: &mut RowCache,
    t: &mut Target,
) {
    let ch = t.ch;
    let stride = x.i0.len();
    let slot_len = ch * stride;
    // Sums cached from the previous frame are stale.
    cache.tags = [None; 2];
    for dy in 0..y.i0.len() {
        let (r0, r1) = (y.i0[dy], y.i1[dy]);
        let s0 = ensure_row(r0, r1, x, packed, f, cache, slot_len);
        let s1 = ensure_row(r1, r0, x, packed, f, cache, slot_len);
        let (b0, b1) = (y.w0[dy], y.w1[dy]);
        for c in 0..ch {
            let h0 = &cache.sums[s0 * slot_len + c * stride..][..stride];
            let h1 = &cache.sums[s1 * slot_len + c * stride..][..stride];
            let lut = &f.lut[c];
            let done = match t.run(dy, c) {
                Some(out) => f.kernels.vertical_fixed(h0, h1, b0, b1, lut, out),
                None => 0,
            };
            let (base, step) = t.row(dy, c);
            for dx in done..t.dst_w {
                t.out[base + dx * step] = lut[vertical_fixed(h0[dx], h1[dx], b0, b1)];
            }
        }
    }
}

/// Makes sure source row `row` has its horizontal sums in a cache slot (keeping `keep`,
/// the other row the current output row reads) and returns the slot.
fn ensure_row(
    row: usize,
    keep: usize,
    x: &FixedTaps,
    packed: &PackedTaps,
    f: &Frame,
    cache: &mut RowCache,
    slot_len: usize,
) -> usize {
    if let Some(s) = cache.tags.iter().position(|&t| t == Some(row)) {
        return s;
    }
    let slot = usize::from(cache.tags[0] == Some(keep));
    cache.tags[slot] = Some(row);
    let sums = &mut cache.sums[slot * slot_len..][..slot_len];
    let ch = slot_len / x.i0.len();
    let format = f.layout.format;
    if ch == 3
        && is_packed_422(format)
        && f.kernels
            .horizontal_fixed_422(f.bytes, f.layout, row, x, packed, sums)
    {
        return slot;
    }
    horizontal_fixed(&SourceRow::new(f.bytes, f.layout, row), x, ch, sums);
    slot
}

/// OpenCV's horizontal fixed-point sums of one row into `ch` planar runs.
pub(super) fn horizontal_fixed(src: &SourceRow, x: &FixedTaps, ch: usize, sums: &mut [i32]) {
    let stride = x.i0.len();
    if ch == 3 {
        let (r, rest) = sums.split_at_mut(stride);
        let (g, b) = rest.split_at_mut(stride);
        for dx in 0..stride {
            let (p, q) = (src.rgb(x.i0[dx]), src.rgb(x.i1[dx]));
            let (w0, w1) = (x.w0[dx], x.w1[dx]);
            r[dx] = i32::from(p[0]) * w0 + i32::from(q[0]) * w1;
            g[dx] = i32::from(p[1]) * w0 + i32::from(q[1]) * w1;
            b[dx] = i32::from(p[2]) * w0 + i32::from(q[2]) * w1;
        }
    } else {
        for (dx, s) in sums.iter_mut().enumerate().take(stride) {
            let (p, q) = (src.grey(x.i0[dx]), src.grey(x.i1[dx]));
            *s = i32::from(p) * x.w0[dx] + i32::from(q) * x.w1[dx];
        }
    }
}

fn nearest(xs: &[usize], ys: &[usize], packed: &PackedTaps, f: &Frame, t: &mut Target) {
    let format = f.layout.format;
    for (dy, &sy) in ys.iter().enumerate() {
        let done = if t.ch == 3 && is_packed_422(format) && t.layout == Layout::Nchw {
            let starts = [0, 1, 2].map(|c| t.row(dy, c).0);
            f.kernels
                .nearest_422(f.bytes, f.layout, sy, packed, f.lut, t.out, starts, t.dst_w)
        } else {
            0
        };
        let src = SourceRow::new(f.bytes, f.layout, sy);
        if t.ch == 3 {
            let [(r, step), (g, _), (b, _)] = [0, 1, 2].map(|c| t.row(dy, c));
            let [lr, lg, lb] = [&f.lut[0], &f.lut[1], &f.lut[2]];
            for (dx, &sx) in xs.iter().enumerate().take(t.dst_w).skip(done) {
                let p = src.rgb(sx);
                let o = dx * step;
                t.out[r + o] = lr[usize::from(p[0])];
                t.out[g + o] = lg[usize::from(p[1])];
                t.out[b + o] = lb[usize::from(p[2])];
            }
        } else {
            let (base, step) = t.row(dy, 0);
            for (dx, &sx) in xs.iter().take(t.dst_w).enumerate() {
                t.out[base + dx * step] = f.lut[0][usize::from(src.grey(sx))];
            }
        }
    }
}
