//! OpenCV's `INTER_LINEAR` and `INTER_NEAREST` as integer tap tables that read only the
//! source columns and rows the output needs (a 1280→224 row reads 448 of 1280 columns).
//!
//! `INTER_LINEAR` on 8-bit images is fixed point in OpenCV: 11-bit weights (sum 2048), a
//! horizontal sum `S = p0*a0 + p1*a1`, then per row `((S >> 4) * b) >> 16` and `(t + 2) >> 2`
//! (its vectorised vertical pass). This reproduces that integer for integer.

use super::resample::Axis;

/// Lanes the vector kernels process at once; tables are padded to a multiple of it.
pub(super) const LANES: usize = 8;

/// Two taps per output sample with 11-bit weights (`w0 + w1 == 2048`).
#[derive(Debug, Default)]
pub(super) struct FixedTaps {
    pub i0: Vec<usize>,
    pub i1: Vec<usize>,
    pub w0: Vec<i32>,
    pub w1: Vec<i32>,
}

impl FixedTaps {
    /// From an `opencv_linear` axis; `padded` repeats the last sample (weights kept) up to
    /// a multiple of [`LANES`] so vector kernels can run whole lanes inside the source.
    pub fn from_axis(axis: &Axis, padded: bool) -> FixedTaps {
        let n = axis.start.len();
        let len = if padded { n.next_multiple_of(LANES) } else { n };
        let mut t = FixedTaps::default();
        for i in 0..len {
            let (start, w) = axis.taps_of(i.min(n.saturating_sub(1)));
            // Weights are multiples of 1/2048 (see `opencv_linear`): exact in f32.
            let w1 = w.get(1).map_or(0, |&b| (b * 2048.0) as i32);
            t.i0.push(start);
            t.i1.push(if w.len() > 1 { start + 1 } else { start });
            t.w0.push(2048 - w1);
            t.w1.push(w1);
        }
        t
    }
}

/// OpenCV's vertical step and final rounding for one output value, from two horizontal
/// sums and the two row weights.
#[inline(always)]
pub(super) fn vertical_fixed(h0: i32, h1: i32, b0: i32, b1: i32) -> usize {
    let t = (((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16);
    ((t + 2) >> 2).clamp(0, 255) as usize
}

#[cfg(test)]
mod tests {
    use super::super::resample::Interpolation;
    use super::*;

    #[test]
    fn weights_are_opencvs_11_bit_pairs_and_reads_stay_inside() {
        for (i, o) in [(1280, 224), (720, 224), (100, 300), (7, 7), (3, 1)] {
            let axis = Axis::new(Interpolation::Linear, 5, i, o);
            let t = FixedTaps::from_axis(&axis, true);
            assert_eq!(t.i0.len() % LANES, 0);
            for k in 0..t.i0.len() {
                assert_eq!(t.w0[k] + t.w1[k], 2048);
                assert!((0..=2048).contains(&t.w1[k]));
                assert!(t.i0[k] >= 5 && t.i1[k] < 5 + i, "{i}->{o} [{k}]");
            }
        }
    }

    #[test]
    fn a_flat_source_stays_flat_through_the_fixed_point_steps() {
        for v in [0i32, 1, 127, 254, 255] {
            for (w1, b1) in [(0, 0), (1, 2047), (1024, 1024), (2047, 5)] {
                let h = v * (2048 - w1) + v * w1;
                assert_eq!(vertical_fixed(h, h, 2048 - b1, b1), v as usize);
            }
        }
    }
}
