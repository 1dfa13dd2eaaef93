//! Greedy k-center coreset (PatchCore's memory-bank subsampling, anomalib's
//! `KCenterGreedy`): start from a seeded random patch, then repeatedly take the patch
//! farthest from everything taken so far. Distances may be measured after a Gaussian
//! random projection to fewer dimensions (Johnson–Lindenstrauss), which is what makes
//! the selection fast; the bank keeps the full-dimension features of the chosen patches.

use rayon::prelude::*;

use super::knn::sq_dist;
use super::SplitMix64;

/// Patches per rayon task in the update pass.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub struct CoresetOptions {
    /// Patches to keep.
    pub size: usize,
    /// Dimensions to project to before measuring distances (0: no projection).
    pub projection_dim: usize,
    pub seed: u64,
}

/// Indices of the selected patches, in selection order. `features` is `[n, dim]`.
/// `progress` is called with the number selected so far, now and then.
pub fn greedy_coreset(
    features: &[f32],
    dim: usize,
    opts: CoresetOptions,
    progress: impl FnMut(usize),
) -> Vec<usize> {
    let n = features.len().checked_div(dim).unwrap_or(0);
    let k = opts.size.min(n);
    if k == 0 {
        return Vec::new();
    }
    let mut rng = SplitMix64::new(opts.seed);
    let projected;
    let (space, sdim) = if opts.projection_dim > 0 && opts.projection_dim < dim {
        projected = project(features, dim, opts.projection_dim, &mut rng);
        (&projected[..], opts.projection_dim)
    } else {
        (features, dim)
    };
    farthest_first(space, sdim, k, rng.below(n), false, progress)
}

/// Farthest-point traversal of `space` (`[n, dim]`) from `first`: up to `k` indices,
/// each the point farthest from those before it. With `until_covered` it stops early
/// once every point sits on one already taken. `progress` is called with the number
/// taken so far, now and then.
pub(super) fn farthest_first(
    space: &[f32],
    dim: usize,
    k: usize,
    first: usize,
    until_covered: bool,
    mut progress: impl FnMut(usize),
) -> Vec<usize> {
    let n = space.len().checked_div(dim).unwrap_or(0);
    let k = k.min(n);
    let mut selected = Vec::with_capacity(k);
    let mut min_d = vec![f32::INFINITY; n];
    let mut next = first;
    while selected.len() < k && next < n {
        selected.push(next);
        let centre = &space[next * dim..(next + 1) * dim];
        // Update every point's distance to the selected set and find the farthest in the
        // same pass. Ties go to the lower index so the result does not depend on threads.
        let best = space
            .par_chunks(CHUNK * dim)
            .zip(min_d.par_chunks_mut(CHUNK))
            .enumerate()
            .map(|(ci, (pts, md))| {
                let mut best = (f32::NEG_INFINITY, usize::MAX);
                for (i, (p, m)) in pts.chunks_exact(dim).zip(md.iter_mut()).enumerate() {
                    let d = sq_dist(p, centre);
                    if d < *m {
                        *m = d;
                    }
                    if *m > best.0 {
                        best = (*m, ci * CHUNK + i);
                    }
                }
                best
            })
            .reduce(
                || (f32::NEG_INFINITY, usize::MAX),
                |a, b| {
                    if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                        b
                    } else {
                        a
                    }
                },
            );
        next = best.1;
        if selected.len() % 64 == 0 {
            progress(selected.len());
        }
        if best.1 == usize::MAX || (until_covered && best.0 <= 0.0) {
            break;
        }
    }
    progress(selected.len());
    selected
}

/// `features [n, dim]` · `R [dim, out]` with R ~ N(0, 1/out).
fn project(features: &[f32], dim: usize, out: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let n = features.len() / dim;
    let scale = 1.0 / (out as f64).sqrt();
    let r: Vec<f32> = (0..dim * out)
        .map(|_| (rng.normal() * scale) as f32)
        .collect();
    let mut p = vec![0.0f32; n * out];
    p.par_chunks_mut(CHUNK * out)
        .zip(features.par_chunks(CHUNK * dim))
        .for_each(|(dst, src)| {
            let rows = src.len() / dim;
            // SAFETY: src is [rows, dim], r is [dim, out], dst is [rows, out], row-major.
            unsafe {
                matrixmultiply::sgemm(
                    rows,
                    dim,
                    out,
                    1.0,
                    src.as_ptr(),
                    dim as isize,
                    1,
                    r.as_ptr(),
                    out as isize,
                    1,
                    0.0,
                    dst.as_mut_ptr(),
                    out as isize,
                    1,
                );
            }
        });
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..n * dim).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn coreset_has_the_requested_size_and_distinct_points() {
        let f = points(5000, 16, 1);
        let sel = greedy_coreset(
            &f,
            16,
            CoresetOptions {
                size: 250,
                projection_dim: 8,
                seed: 3,
            },
            |_| {},
        );
        assert_eq!(sel.len(), 250);
        let mut s = sel.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 250, "no patch chosen twice");
        // More than there are points: all of them, once.
        let all = greedy_coreset(
            &f[..10 * 16],
            16,
            CoresetOptions {
                size: 50,
                projection_dim: 0,
                seed: 3,
            },
            |_| {},
        );
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn each_pick_is_the_farthest_point_from_those_before_it() {
        let (n, dim) = (9000, 12);
        let f = points(n, dim, 2);
        let sel = greedy_coreset(
            &f,
            dim,
            CoresetOptions {
                size: 40,
                projection_dim: 0,
                seed: 5,
            },
            |_| {},
        );
        let row = |i: usize| &f[i * dim..(i + 1) * dim];
        for t in 1..sel.len() {
            let dist_to_set = |i: usize| {
                sel[..t]
                    .iter()
                    .map(|&s| sq_dist(row(i), row(s)))
                    .fold(f32::INFINITY, f32::min)
            };
            let farthest = (0..n).map(dist_to_set).fold(0.0f32, f32::max);
            assert_eq!(
                dist_to_set(sel[t]),
                farthest,
                "pick {t} is not the farthest point"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_coreset() {
        let f = points(3000, 20, 9);
        let o = CoresetOptions {
            size: 64,
            projection_dim: 10,
            seed: 11,
        };
        assert_eq!(
            greedy_coreset(&f, 20, o, |_| {}),
            greedy_coreset(&f, 20, o, |_| {})
        );
    }
}
