//! Exact nearest-neighbour search that reads a small part of the bank.
//!
//! Patch features have most of their variance in a few directions, so their distance
//! in a projection onto those directions is a lower bound that rules out almost every
//! row without reading it: for any `p x dim` matrix `P` with orthonormal rows,
//! `|P(q - b)| <= |q - b|`. At load the bank gets
//!
//! - `P`: the top `p` principal directions of its rows (subspace iteration on their
//!   covariance; any orthonormal `P` keeps the bound, the principal ones make it tight),
//! - clusters in the projected space (greedy k-center), rows stored cluster by cluster,
//!   each cluster's projected coordinates kept dimension-major for a vectorised scan.
//!
//! A query is projected; a cluster whose projected centre distance minus its projected
//! radius already exceeds the best distance found is skipped whole; in the others, rows
//! are bounded eight at a time, the projected distance summed in stages (8, 16, 32
//! dimensions) and the eight dropped at the first stage where none is within the best
//! found; the rest are measured exactly (`|q - b|²`
//! by direct subtraction, the same arithmetic as [`super::MemoryBank::nearest_brute_force`],
//! so the result is the brute-force minimum bit for bit). Every comparison leaves a margin
//! larger than f32 rounding of the projection could explain.
//!
//! Measured on the 5 MP fabric model (13,107 rows x 152 dims; one frame's 110,592
//! queries, 103 clusters): a query scans 46 clusters, bounds their ~6,000 rows on 8
//! projected dimensions, ~550 of those on more, and measures 37 exactly; the search
//! takes ~1.2 s on 2 cores, 40% of the full matrix product's 3.1 s.
//!
//! Tried and measured no better on that model: smaller clusters (32 or 64 rows: more
//! skipped, but their centres cost more), 64 or 96 directions (fewer exact distances,
//! as many clusters scanned), the residual's length as one more coordinate (residual
//! lengths barely differ between rows) and per-cluster bounding boxes.

use std::ops::Range;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::coreset::farthest_first;
use super::knn::sq_dist;

/// Directions the bank is projected onto.
const PROJECTED: usize = 32;
/// Where the bound of a group of rows is tested while it is summed: after 8 projected
/// dimensions (most groups stop there), after 16, after all 32.
const STAGES: [usize; 3] = [8, 16, PROJECTED];
/// Rows bounded at once (one vector register).
const LANES: usize = 8;
/// Where padding rows lie in every projected dimension: their bound overflows to infinity.
const FAR: f32 = 1e30;
/// Rows per cluster aimed at.
const ROWS_PER_CLUSTER: usize = 128;
/// Relative margin on every bound: projecting in f32 errs by ~dim x 2^-24 of the vectors'
/// length; this is a hundred times that.
const ROUNDING: f32 = 1e-4;
/// Subspace-iteration steps for the principal directions.
const ITERATIONS: usize = 60;
/// Banks smaller than this are searched whole: pruning would not pay.
pub(super) const MIN_ROWS: usize = 2048;

/// The bank's projection and grouping.
#[derive(Debug, Clone)]
pub(super) struct Clusters {
    dim: usize,
    p: usize,
    mean: Vec<f32>,
    /// `[p, dim]`, orthonormal rows.
    basis: Vec<f32>,
    /// `[k, p]` projected centres.
    centres: Vec<f32>,
    /// Largest projected distance from a centre to a row of its cluster (rounded up).
    radius: Vec<f32>,
    /// Rows of the (reordered) bank in each cluster.
    ranges: Vec<Range<usize>>,
    /// The projected rows, cluster by cluster, each cluster `[p][rows rounded up to
    /// LANES]` (dimension-major, so eight rows are bounded in one register; padding
    /// rows lie far away).
    projected: Vec<f32>,
    /// Where each cluster's block starts in `projected`.
    block_at: Vec<usize>,
    /// Where each centre's own row sits in the (reordered) bank.
    centre_row: Vec<usize>,
    /// Largest `|b - mean|` (scales the rounding margin).
    spread: f32,
    /// Whether this CPU runs the AVX2 build of the search.
    avx2: bool,
}

/// Projects and groups the `[rows, dim]` bank `data`. Returns the index and the order to
/// store the rows in (`order[i]` = original row at position `i`). Deterministic.
pub(super) fn cluster(data: &[f32], dim: usize) -> (Clusters, Vec<usize>) {
    let rows = data.len().checked_div(dim).unwrap_or(0);
    let p = PROJECTED.min(dim);
    let mean = column_mean(data, dim, rows);
    let basis = principal_directions(data, dim, &mean, p);
    let project = |row: &[f32], out: &mut [f32]| {
        for (o, dir) in out.iter_mut().zip(basis.chunks_exact(dim)) {
            *o = dir
                .iter()
                .zip(row.iter().zip(&mean))
                .map(|(d, (x, m))| d * (x - m))
                .sum();
        }
    };
    let mut y = vec![0.0f32; rows * p];
    y.par_chunks_mut(p)
        .zip(data.par_chunks(dim))
        .for_each(|(o, row)| project(row, o));
    let (home, reach) = k_center(&y, p, rows.div_ceil(ROWS_PER_CLUSTER).clamp(1, 4096));
    let k = home.iter().map(|&h| h as usize + 1).max().unwrap_or(1);
    let mut order: Vec<usize> = (0..rows).collect();
    // Cluster by cluster; inside a cluster by the first principal coordinate, so the
    // eight rows bounded together lie close along it and are ruled out together.
    order.sort_by(|&a, &b| home[a].cmp(&home[b]).then(y[a * p].total_cmp(&y[b * p])));
    let mut ranges = Vec::with_capacity(k);
    let mut radius = Vec::with_capacity(k);
    let mut centres = vec![0.0f32; k * p];
    let mut projected = Vec::with_capacity((rows + k * LANES) * p);
    let mut block_at = Vec::with_capacity(k);
    let mut centre_row = Vec::with_capacity(k);
    let mut start = 0;
    for c in 0..k {
        let n = order[start..].partition_point(|&i| home[i] as usize == c);
        let members = &order[start..start + n];
        // The centre is the member the greedy pass picked (reach 0), else the first.
        let at = members.iter().position(|&i| reach[i] == 0.0).unwrap_or(0);
        if let Some(&ci) = members.get(at) {
            centres[c * p..(c + 1) * p].copy_from_slice(&y[ci * p..(ci + 1) * p]);
        }
        centre_row.push(start + at);
        let r = members.iter().map(|&i| reach[i].sqrt()).fold(0.0, f32::max);
        radius.push(r * (1.0 + ROUNDING));
        let padded = n.next_multiple_of(LANES);
        block_at.push(projected.len());
        for j in 0..p {
            projected.extend(members.iter().map(|&i| y[i * p + j]));
            projected.extend(std::iter::repeat_n(FAR, padded - n));
        }
        ranges.push(start..start + n);
        start += n;
    }
    let spread = data
        .chunks_exact(dim.max(1))
        .map(|row| sq_dist(row, &mean).sqrt())
        .fold(0.0, f32::max);
    (
        Clusters {
            dim,
            p,
            mean,
            basis,
            centres,
            radius,
            ranges,
            projected,
            block_at,
            centre_row,
            spread,
            avx2: avx2(),
        },
        order,
    )
}

fn column_mean(data: &[f32], dim: usize, rows: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; dim];
    for row in data.chunks_exact(dim.max(1)) {
        for (s, x) in sum.iter_mut().zip(row) {
            *s += f64::from(*x);
        }
    }
    sum.iter()
        .map(|s| (s / rows.max(1) as f64) as f32)
        .collect()
}

/// The top `p` principal directions of the rows, as orthonormal `[p, dim]` rows (f32).
/// Subspace iteration on the covariance from a fixed start: deterministic, and any
/// orthonormal result is a valid bound even if iteration stopped short.
fn principal_directions(data: &[f32], dim: usize, mean: &[f32], p: usize) -> Vec<f32> {
    // The covariance a few thousand rows at a time: a large bank (100k rows x 1536 dims)
    // never needs a centred f64 copy of itself.
    const CHUNK: usize = 4096;
    let mut cov = Array2::<f64>::zeros((dim, dim));
    for chunk in data.chunks(CHUNK * dim.max(1)) {
        let n = chunk.len() / dim.max(1);
        let centred = Array2::from_shape_fn((n, dim), |(i, j)| {
            f64::from(chunk[i * dim + j]) - f64::from(mean[j])
        });
        ndarray::linalg::general_mat_mul(1.0, &centred.t(), &centred, 1.0, &mut cov);
    }
    // Start: the p coordinate axes of largest variance.
    let mut axes: Vec<usize> = (0..dim).collect();
    axes.sort_by(|&a, &b| cov[[b, b]].total_cmp(&cov[[a, a]]));
    let mut v = Array2::<f64>::zeros((dim, p));
    for (col, &a) in axes.iter().take(p).enumerate() {
        v[[a, col]] = 1.0;
    }
    for _ in 0..ITERATIONS {
        v = cov.dot(&v);
        orthonormalise(&mut v);
    }
    let mut basis = vec![0.0f32; p * dim];
    for (j, col) in v.axis_iter(Axis(1)).enumerate() {
        for (i, x) in col.iter().enumerate() {
            basis[j * dim + i] = *x as f32;
        }
    }
    basis
}

/// Modified Gram-Schmidt on the columns; a column with nothing left becomes zero (a zero
/// row of the projection still keeps the bound).
fn orthonormalise(v: &mut Array2<f64>) {
    for j in 0..v.ncols() {
        for i in 0..j {
            let d = v.column(i).dot(&v.column(j));
            let prev = v.column(i).to_owned();
            v.column_mut(j).scaled_add(-d, &prev);
        }
        let n = v.column(j).dot(&v.column(j)).sqrt();
        let s = if n > 1e-12 { 1.0 / n } else { 0.0 };
        v.column_mut(j).mapv_inplace(|x| x * s);
    }
}

/// Greedy k-center on `[n, p]` points: each row's cluster and squared distance to its
/// centre (0 for the centres themselves). Ties go to the earlier centre.
fn k_center(y: &[f32], p: usize, k: usize) -> (Vec<u32>, Vec<f32>) {
    let n = y.len().checked_div(p).unwrap_or(0);
    let centres = farthest_first(y, p, k, 0, true, |_| {});
    let mut reach = vec![f32::INFINITY; n];
    let mut home = vec![0u32; n];
    reach
        .par_iter_mut()
        .zip(home.par_iter_mut())
        .zip(y.par_chunks(p.max(1)))
        .for_each(|((r, h), pt)| {
            for (c, &at) in centres.iter().enumerate() {
                let d = sq_dist(pt, &y[at * p..(at + 1) * p]);
                if d < *r {
                    *r = d;
                    *h = c as u32;
                }
            }
        });
    (home, reach)
}

/// One block's working memory, sized once and reused.
#[derive(Default)]
pub(super) struct BlockScratch {
    centred: Vec<f32>,
    projected: Vec<f32>,
    centre: Vec<f32>,
    /// The nearest row of the previous query: neighbouring patches come one after
    /// another and have close features, so it is a tight first candidate.
    last: Option<usize>,
}

impl Clusters {
    /// Scratch for `blocks` parallel blocks (allocates only when growing).
    pub(super) fn ensure(&self, scratch: &mut Vec<BlockScratch>, blocks: usize) {
        if scratch.len() < blocks {
            scratch.resize_with(blocks, BlockScratch::default);
        }
        for s in scratch.iter_mut() {
            grow(&mut s.centred, self.dim);
            grow(&mut s.projected, self.p);
            grow(&mut s.centre, self.ranges.len());
        }
    }

    /// For each query of `q` (`[out.len(), dim]`), the distance to its nearest row of
    /// `bank` (`[rows, dim]`, row-major, in this index's order).
    pub(super) fn search(&self, bank: &[f32], q: &[f32], out: &mut [f32], s: &mut BlockScratch) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only where the CPU has AVX2 and FMA.
            unsafe { self.search_avx2(bank, q, out, s) };
            return;
        }
        self.search_any(bank, q, out, s);
    }

    /// The same code compiled for AVX2 (8 lanes instead of SSE's 4; the arithmetic, and
    /// so every result, is the same).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(&self, bank: &[f32], q: &[f32], out: &mut [f32], s: &mut BlockScratch) {
        self.search_any(bank, q, out, s);
    }

    #[inline(always)]
    fn search_any(&self, bank: &[f32], q: &[f32], out: &mut [f32], s: &mut BlockScratch) {
        for (o, query) in out.iter_mut().zip(q.chunks_exact(self.dim.max(1))) {
            *o = self.nearest(bank, query, s).sqrt();
        }
    }

    /// Squared distance from `q` to its nearest row.
    #[inline(always)]
    fn nearest(&self, bank: &[f32], q: &[f32], s: &mut BlockScratch) -> f32 {
        let (p, dim) = (self.p, self.dim);
        let y = &mut s.projected[..p];
        let centred = &mut s.centred[..dim];
        for ((c, x), m) in centred.iter_mut().zip(q).zip(&self.mean) {
            *c = x - m;
        }
        for (o, dir) in y.iter_mut().zip(self.basis.chunks_exact(dim.max(1))) {
            *o = dot(dir, centred);
        }
        let margin = ROUNDING * (sq_dist(q, &self.mean).sqrt() + self.spread);
        let k = self.ranges.len();
        let mut home = (f32::INFINITY, 0usize);
        for (c, (d, centre)) in s.centre[..k]
            .iter_mut()
            .zip(self.centres.chunks_exact(p.max(1)))
            .enumerate()
        {
            *d = sq_dist(y, centre).sqrt();
            if *d < home.0 {
                home = (*d, c);
            }
        }
        // First candidates before any scan: the previous query's nearest row and the
        // home cluster's centre. Any row's exact distance bounds the minimum from above,
        // so the result does not depend on them, only the work does.
        let mut best = (f32::INFINITY, usize::MAX);
        for r in [s.last, self.centre_row.get(home.1).copied()]
            .into_iter()
            .flatten()
        {
            if let Some(row) = bank.get(r * dim..(r + 1) * dim) {
                let d = sq_dist(q, row);
                if d < best.0 {
                    best = (d, r);
                }
            }
        }
        self.scan(home.1, bank, q, s, margin, &mut best);
        for c in 0..k {
            // A NaN bound compares false and the cluster is scanned (as brute force would).
            let skip = s.centre[c] - self.radius[c] > best.0.sqrt() + margin;
            if c != home.1 && !skip {
                self.scan(c, bank, q, s, margin, &mut best);
            }
        }
        s.last = (best.1 != usize::MAX).then_some(best.1);
        best.0
    }

    /// Measures the rows of cluster `c` that the projected bound cannot rule out. Eight
    /// rows at a time, the bound is summed over the projected dimensions in stages and
    /// the group dropped at the first stage where every row is out; the rows left are
    /// measured exactly.
    #[inline(always)]
    fn scan(
        &self,
        c: usize,
        bank: &[f32],
        q: &[f32],
        s: &mut BlockScratch,
        margin: f32,
        best: &mut (f32, usize),
    ) {
        let (p, dim) = (self.p, self.dim);
        let range = self.ranges[c].clone();
        let n = range.len();
        if n == 0 {
            return;
        }
        let padded = n.next_multiple_of(LANES);
        let Some(block) = self
            .block_at
            .get(c)
            .and_then(|&at| self.projected.get(at..at + p * padded))
        else {
            return;
        };
        let y = &s.projected[..p];
        let mut limit = (best.0.sqrt() + margin).powi(2);
        let y0 = y.first().copied().unwrap_or(0.0);
        'group: for chunk in 0..padded / LANES {
            // Rows are sorted along the first direction: if the group's lowest value
            // there is already out of reach, so is every later group; if its highest is
            // below reach, this group is out. (The same first term as the sum below,
            // and a float sum of squares never falls below its first term.)
            let first = block[chunk * LANES];
            let last = block[chunk * LANES + (n - 1 - chunk * LANES).min(LANES - 1)];
            if first > y0 && (first - y0) * (first - y0) > limit {
                break;
            }
            if last < y0 && (y0 - last) * (y0 - last) > limit {
                continue;
            }
            let mut bound = [0.0f32; LANES];
            let mut from = 0;
            for to in STAGES.map(|t| t.min(p)) {
                for (j, yj) in y[from..to].iter().enumerate() {
                    let xs = &block[(from + j) * padded + chunk * LANES..][..LANES];
                    for l in 0..LANES {
                        let d = yj - xs[l];
                        bound[l] += d * d;
                    }
                }
                from = to;
                // One vectorised test drops the group. A NaN bound goes on, as brute
                // force would measure its row.
                if !bound
                    .iter()
                    .fold(false, |any, &b| any | (b <= limit) | b.is_nan())
                {
                    continue 'group;
                }
            }
            for (l, &b) in bound.iter().enumerate() {
                let i = chunk * LANES + l;
                if b > limit || i >= n {
                    continue;
                }
                let row = range.start + i;
                let d = sq_dist(q, &bank[row * dim..(row + 1) * dim]);
                if d < best.0 {
                    *best = (d, row);
                    limit = (d.sqrt() + margin).powi(2);
                }
            }
        }
    }
}

/// `a · b` with independent lanes (vectorises; order fixed, so results do not depend
/// on the build).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 8;
    let mut acc = [0.0f32; L];
    let n = a.len().min(b.len()) / L * L;
    for (ca, cb) in a[..n].chunks_exact(L).zip(b[..n].chunks_exact(L)) {
        for l in 0..L {
            acc[l] += ca[l] * cb[l];
        }
    }
    let tail: f32 = a[n..].iter().zip(&b[n..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}
