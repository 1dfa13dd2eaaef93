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
//!
//! A bank of more than a couple of thousand rows is stored cluster by cluster and searched
//! with [`super::clusters`]' exact pruning: the same distances, most of the bank unread.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::clusters::{self, BlockScratch, Clusters};

/// Most queries per block (one rayon task): big blocks amortise `sgemm`'s packing of the
/// bank block (measured on 2 cores, 1024 x 8192 x 152: 32 → 115 ms, 256 → 31 ms).
const QB_MAX: usize = 256;
/// Fewest queries per block.
const QB_MIN: usize = 32;
/// Bank rows per block.
const MB: usize = 512;
/// Queries per block of the pruned search: no packing to amortise, and queries differ in
/// cost, so small blocks keep every thread busy to the end.
const PRUNED_QB: usize = 64;

/// Queries per block for `n` queries: one block per rayon thread, within the bounds.
fn query_block(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1))
        .next_multiple_of(8)
        .clamp(QB_MIN, QB_MAX)
}

/// The PatchCore memory bank: `[rows, dim]` patch features and each row's squared norm.
/// Large banks are kept in cluster order (`order` maps back to the rows as given).
#[derive(Debug, Clone)]
pub struct MemoryBank {
    bank: Array2<f32>,
    norms: Array1<f32>,
    clusters: Option<Clusters>,
    order: Option<Vec<usize>>,
}

impl MemoryBank {
    /// `data` is row-major `[rows, dim]` (a trailing partial row is dropped).
    pub fn new(mut data: Vec<f32>, dim: usize) -> Self {
        let rows = data.len().checked_div(dim).unwrap_or(0);
        data.truncate(rows * dim);
        let (clusters, order) = if rows >= clusters::MIN_ROWS {
            let (c, order) = clusters::cluster(&data, dim);
            data = order
                .iter()
                .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            (Some(c), Some(order))
        } else {
            (None, None)
        };
        let bank =
            Array2::from_shape_vec((rows, dim), data).unwrap_or_else(|_| Array2::zeros((0, dim)));
        let norms = bank
            .axis_iter(Axis(0))
            .map(|r| r.as_slice().map_or(0.0, sq_norm))
            .collect();
        MemoryBank {
            bank,
            norms,
            clusters,
            order,
        }
    }

    pub fn rows(&self) -> usize {
        self.bank.nrows()
    }

    pub fn dim(&self) -> usize {
        self.bank.ncols()
    }

    /// The bank row-major in its stored (possibly cluster) order.
    pub fn data(&self) -> &[f32] {
        self.bank.as_slice().unwrap_or(&[])
    }

    /// The rows in the order they were given (as the artifact stores them).
    pub fn rows_as_given(&self) -> Vec<f32> {
        let Some(order) = &self.order else {
            return self.data().to_vec();
        };
        let mut out = vec![0.0; self.bank.len()];
        let d = self.dim().max(1);
        for (row, &i) in self.data().chunks_exact(d).zip(order) {
            out[i * d..(i + 1) * d].copy_from_slice(row);
        }
        out
    }

    /// The bank as a `[rows, dim]` view (stored order).
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.bank.view()
    }

    /// Whether the search prunes (the bank was grouped into clusters).
    pub fn is_clustered(&self) -> bool {
        self.clusters.is_some()
    }

    /// For each query (row-major `[n, dim]`), the Euclidean distance to its nearest bank row.
    pub fn nearest(&self, queries: &[f32], out: &mut [f32], scratch: &mut NnScratch) {
        self.nearest_with_block(queries, out, scratch, self.block_for(out.len()));
    }

    /// Queries per block for `n` queries.
    fn block_for(&self, n: usize) -> usize {
        if self.clusters.is_some() {
            PRUNED_QB
        } else {
            query_block(n)
        }
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
        if let Some(clusters) = &self.clusters {
            clusters.ensure(&mut scratch.pruned, n.div_ceil(qb));
            let bank = self.data();
            queries
                .par_chunks(qb * d)
                .zip(out.par_chunks_mut(qb))
                .zip(scratch.pruned.par_iter_mut())
                .for_each(|((q, o), s)| clusters.search(bank, q, o, s));
            return;
        }
        self.nearest_unpruned(queries, out, scratch, qb);
    }

    /// Every query against every row (the search before pruning), for tests and benches.
    #[doc(hidden)]
    pub fn nearest_unpruned(
        &self,
        queries: &[f32],
        out: &mut [f32],
        scratch: &mut NnScratch,
        qb: usize,
    ) {
        let d = self.dim();
        let n = out.len();
        let qb = qb.max(1);
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
    pruned: Vec<BlockScratch>,
}

impl NnScratch {
    /// Sizes the scratch for `queries` queries against `bank`, so no search allocates.
    pub fn ensure(&mut self, bank: &MemoryBank, queries: usize) {
        let qb = bank.block_for(queries);
        if let Some(c) = &bank.clusters {
            c.ensure(&mut self.pruned, queries.div_ceil(qb));
            return;
        }
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

#[inline(always)]
pub fn sq_norm(v: &[f32]) -> f32 {
    sq_dist_impl(v, None)
}

// Inlined so a caller compiled for AVX2 gets it at AVX2 width (same arithmetic: no
// contraction to FMA, the same lanes in the same order).
#[inline(always)]
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
        let data = random(rows * dim, &mut rng);
        let bank = MemoryBank::new(data.clone(), dim);
        let mut queries = random(nq * dim, &mut rng);
        // One query equal to a bank row: distance 0.
        queries[..dim].copy_from_slice(&data[500 * dim..501 * dim]);
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

    /// Data with structure, as patch features have: rows scattered around a few hundred
    /// points, some queries close to the bank (normal patches), some far (defects).
    fn clustered(rows: usize, dim: usize, nq: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = SplitMix64::new(11);
        let modes: Vec<Vec<f32>> = (0..300)
            .map(|_| (0..dim).map(|_| 4.0 * rng.normal() as f32).collect())
            .collect();
        let near = |scale: f32, rng: &mut SplitMix64| -> Vec<f32> {
            let m = &modes[rng.below(modes.len())];
            m.iter().map(|v| v + scale * rng.normal() as f32).collect()
        };
        let bank: Vec<f32> = (0..rows).flat_map(|_| near(0.5, &mut rng)).collect();
        let queries: Vec<f32> = (0..nq)
            .flat_map(|i| near(if i % 10 == 0 { 3.0 } else { 0.4 }, &mut rng))
            .collect();
        (bank, queries)
    }

    #[test]
    fn pruned_search_is_the_brute_force_minimum_bit_for_bit() {
        let (rows, dim, nq) = (5000, 152, 700);
        let (data, queries) = clustered(rows, dim, nq);
        let bank = MemoryBank::new(data.clone(), dim);
        assert!(bank.is_clustered());
        let mut pruned = vec![0.0; nq];
        let mut scratch = NnScratch::default();
        bank.nearest(&queries, &mut pruned, &mut scratch);
        let mut slow = vec![0.0; nq];
        bank.nearest_brute_force(&queries, &mut slow);
        assert_eq!(pruned, slow);
        // The matrix-product search agrees to its rounding.
        let mut whole = vec![0.0; nq];
        bank.nearest_unpruned(&queries, &mut whole, &mut scratch, 64);
        for (f, s) in whole.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-3 * s.max(1.0), "{f} vs {s}");
        }
        // The rows as given come back in their order (what a fit writes).
        assert_eq!(bank.rows_as_given(), data);
        // A bank row as a query: distance 0 (rounding aside).
        let mut zero = [1.0f32];
        bank.nearest(&data[1234 * dim..1235 * dim], &mut zero, &mut scratch);
        assert!(zero[0] < 1e-2, "{}", zero[0]);
    }

    #[test]
    fn pruned_search_handles_duplicate_rows_and_random_data() {
        // Every row the same: one cluster of radius 0.
        let dim = 8;
        let same: Vec<f32> = (0..3000).flat_map(|_| [1.0f32; 8]).collect();
        let bank = MemoryBank::new(same, dim);
        let mut out = [0.0f32; 2];
        bank.nearest(&[1.0; 16], &mut out, &mut NnScratch::default());
        assert_eq!(out, [0.0, 0.0]);
        // No structure at all: pruning helps little but the answer is the same. Widths
        // that end a bound stage early (fewer dimensions than a stage) as well as 32.
        let mut rng = SplitMix64::new(3);
        for dim in [5, 12, 20] {
            let bank = MemoryBank::new(random(2100 * dim, &mut rng), dim);
            let q = random(40 * dim, &mut rng);
            let (mut a, mut b) = (vec![0.0; 40], vec![0.0; 40]);
            bank.nearest(&q, &mut a, &mut NnScratch::default());
            bank.nearest_brute_force(&q, &mut b);
            assert_eq!(a, b, "{dim} dims");
        }
        let bank = MemoryBank::new(random(2500 * 32, &mut rng), 32);
        let q = random(50 * 32, &mut rng);
        let (mut a, mut b) = (vec![0.0; 50], vec![0.0; 50]);
        bank.nearest(&q, &mut a, &mut NnScratch::default());
        bank.nearest_brute_force(&q, &mut b);
        assert_eq!(a, b);
        // A NaN query is searched like brute force searches it.
        let mut nan = q[..32].to_vec();
        nan[3] = f32::NAN;
        let (mut a, mut b) = ([0.0f32], [0.0f32]);
        bank.nearest(&nan, &mut a, &mut NnScratch::default());
        bank.nearest_brute_force(&nan, &mut b);
        assert_eq!(a[0].to_bits(), b[0].to_bits());
    }
}
