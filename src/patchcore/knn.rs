//! Nearest-neighbour distance from each query patch to a memory bank.
//!
//! Layout: the bank is row-major `[rows, dim]` f32 with each row's squared norm kept
//! beside it. A block of queries against a block of bank rows is one small matrix
//! product (`ndarray`'s `general_mat_mul` over views of the bank and the queries, which
//! runs `matrixmultiply`'s sgemm: AVX2/FMA or NEON kernels picked at run time),
//! then `|q|² + |b|² - 2 q·b` is minimised along the row (bank norms precomputed). Query
//! blocks are as large as the thread count allows (up to 256) so the bank block is packed
//! once per many queries; rayon spreads query blocks over cores. The scratch is allocated
//! once per query count and reused frame after frame.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Most queries per block (one rayon task): big blocks amortise `sgemm`'s packing of the
/// bank block (measured on 2 cores, 1024 x 8192 x 152: 32 → 115 ms, 256 → 31 ms).
const QB_MAX: usize = 256;
/// Fewest queries per block.
const QB_MIN: usize = 32;
/// Bank rows per block.
const MB: usize = 512;

/// Queries per block for `n` queries: one block per rayon thread, within the bounds.
fn query_block(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1))
        .next_multiple_of(8)
        .clamp(QB_MIN, QB_MAX)
}

/// The PatchCore memory bank: `[rows, dim]` patch features and each row's squared norm.
#[derive(Debug, Clone)]
pub struct MemoryBank {
    bank: Array2<f32>,
    norms: Array1<f32>,
}

impl MemoryBank {
    /// `data` is row-major `[rows, dim]` (a trailing partial row is dropped).
    pub fn new(mut data: Vec<f32>, dim: usize) -> Self {
        let rows = data.len().checked_div(dim).unwrap_or(0);
        data.truncate(rows * dim);
        let bank =
            Array2::from_shape_vec((rows, dim), data).unwrap_or_else(|_| Array2::zeros((0, dim)));
        let norms = bank
            .axis_iter(Axis(0))
            .map(|r| r.as_slice().map_or(0.0, sq_norm))
            .collect();
        MemoryBank { bank, norms }
    }

    pub fn rows(&self) -> usize {
        self.bank.nrows()
    }

    pub fn dim(&self) -> usize {
        self.bank.ncols()
    }

    /// The bank row-major, as the artifact stores it.
    pub fn data(&self) -> &[f32] {
        self.bank.as_slice().unwrap_or(&[])
    }

    /// The bank as a `[rows, dim]` view.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.bank.view()
    }

    /// For each query (row-major `[n, dim]`), the Euclidean distance to its nearest bank row.
    pub fn nearest(&self, queries: &[f32], out: &mut [f32], scratch: &mut NnScratch) {
        self.nearest_with_block(queries, out, scratch, query_block(out.len()));
    }

    /// As [`Self::nearest`] with `qb` queries per block (benches compare block sizes).
    #[doc(hidden)]
    pub fn nearest_with_block(
        &self,
        queries: &[f32],
        out: &mut [f32],
        scratch: &mut NnScratch,
        qb: usize,
    ) {
        let d = self.dim();
        let n = out.len();
        let qb = qb.max(1);
        debug_assert_eq!(queries.len(), n * d);
        let need = n.div_ceil(qb) * qb * MB;
        if scratch.blocks.len() < need {
            scratch.blocks.resize(need, 0.0);
        }
        queries
            .par_chunks(qb * d)
            .zip(out.par_chunks_mut(qb))
            .zip(scratch.blocks.par_chunks_mut(qb * MB))
            .for_each(|((q, o), s)| self.nearest_block(q, o, s));
    }

    fn nearest_block(&self, q: &[f32], out: &mut [f32], scratch: &mut [f32]) {
        let d = self.dim();
        let nq = out.len();
        out.fill(f32::INFINITY);
        let (Ok(q), Some(norms)) = (ArrayView2::from_shape((nq, d), q), self.norms.as_slice())
        else {
            return;
        };
        let rows = self.rows();
        let mut start = 0;
        while start < rows {
            let mb = MB.min(rows - start);
            let bank = self.bank.slice(s![start..start + mb, ..]);
            let Ok(mut c) = ArrayViewMut2::from_shape((nq, mb), &mut scratch[..nq * mb]) else {
                return;
            };
            // C[nq, mb] = Q[nq, d] · B[mb, d]^T
            general_mat_mul(1.0, &q, &bank.t(), 0.0, &mut c);
            let norms = &norms[start..start + mb];
            for (row, best) in c.axis_iter(Axis(0)).zip(out.iter_mut()) {
                if let Some(row) = row.as_slice() {
                    *best = best.min(min_partial(row, norms));
                }
            }
            start += mb;
        }
        for (row, best) in q.axis_iter(Axis(0)).zip(out.iter_mut()) {
            let qn = row.as_slice().map_or(0.0, sq_norm);
            *best = (*best + qn).max(0.0).sqrt();
        }
    }

    /// The same distances by direct subtraction, for tests and benches.
    pub fn nearest_brute_force(&self, queries: &[f32], out: &mut [f32]) {
        let d = self.dim();
        for (o, q) in out.iter_mut().zip(queries.chunks_exact(d.max(1))) {
            let mut best = f32::INFINITY;
            for b in self.data().chunks_exact(d.max(1)) {
                best = best.min(sq_dist(q, b));
            }
            *o = best.sqrt();
        }
    }
}

/// Partial products for every query block; grows only when more queries arrive.
#[derive(Default)]
pub struct NnScratch {
    blocks: Vec<f32>,
}

impl NnScratch {
    pub fn ensure(&mut self, queries: usize) {
        let qb = query_block(queries);
        let need = queries.div_ceil(qb) * qb * MB;
        if self.blocks.len() < need {
            self.blocks.resize(need, 0.0);
        }
    }
}

/// Lanes of the hand-unrolled reductions below: independent accumulators let the
/// compiler keep them in one vector register (a plain `.sum()` must add in order and
/// stays scalar).
const LANES: usize = 8;

pub fn sq_norm(v: &[f32]) -> f32 {
    sq_dist_impl(v, None)
}

pub fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    sq_dist_impl(a, Some(b))
}

#[inline(always)]
fn sq_dist_impl(a: &[f32], b: Option<&[f32]>) -> f32 {
    let mut acc = [0.0f32; LANES];
    let n = a.len() / LANES * LANES;
    match b {
        Some(b) => {
            for (ca, cb) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
                for l in 0..LANES {
                    let d = ca[l] - cb[l];
                    acc[l] += d * d;
                }
            }
            let tail: f32 = a[n..]
                .iter()
                .zip(&b[n..])
                .map(|(x, y)| (x - y) * (x - y))
                .sum();
            acc.iter().sum::<f32>() + tail
        }
        None => {
            for ca in a[..n].chunks_exact(LANES) {
                for l in 0..LANES {
                    acc[l] += ca[l] * ca[l];
                }
            }
            acc.iter().sum::<f32>() + a[n..].iter().map(|x| x * x).sum::<f32>()
        }
    }
}

/// min over j of `norms[j] - 2 * dots[j]`.
#[inline(always)]
fn min_partial(dots: &[f32], norms: &[f32]) -> f32 {
    let mut acc = [f32::INFINITY; LANES];
    let n = dots.len() / LANES * LANES;
    for (cd, cn) in dots[..n]
        .chunks_exact(LANES)
        .zip(norms[..n].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let v = cn[l] - 2.0 * cd[l];
            acc[l] = if v < acc[l] { v } else { acc[l] };
        }
    }
    let mut m = acc.iter().copied().fold(f32::INFINITY, f32::min);
    for (d, bn) in dots[n..].iter().zip(&norms[n..]) {
        m = m.min(bn - 2.0 * d);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patchcore::SplitMix64;

    fn random(n: usize, rng: &mut SplitMix64) -> Vec<f32> {
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn blocked_search_equals_brute_force() {
        let mut rng = SplitMix64::new(7);
        // Sizes that are not multiples of the block sizes, and a dimension like ours.
        let (rows, dim, nq) = (1337, 152, 101);
        let bank = MemoryBank::new(random(rows * dim, &mut rng), dim);
        let mut queries = random(nq * dim, &mut rng);
        // One query equal to a bank row: distance 0.
        queries[..dim].copy_from_slice(&bank.data()[500 * dim..501 * dim]);
        let mut fast = vec![0.0; nq];
        let mut slow = vec![0.0; nq];
        bank.nearest(&queries, &mut fast, &mut NnScratch::default());
        bank.nearest_brute_force(&queries, &mut slow);
        for (f, s) in fast.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-3 * s.max(1.0), "{f} vs {s}");
        }
        for qb in [1, 7, 32, 256] {
            let mut other = vec![0.0; nq];
            bank.nearest_with_block(&queries, &mut other, &mut NnScratch::default(), qb);
            assert_eq!(other, fast, "block size {qb} changes nothing but speed");
        }
        assert!(fast[0] < 1e-2, "exact match should be ~0, got {}", fast[0]);
    }
}
