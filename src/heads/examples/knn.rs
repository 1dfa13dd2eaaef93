//! k nearest neighbours over the training embeddings: which class a part looks like,
//! how sure the vote is, and how far it is from every example (unknown rejection).
//! Buffers are sized once; a decision allocates nothing.

use ndarray::linalg::general_mat_vec_mul;
use ndarray::{Array1, ArrayView1, ArrayView2};

/// What the neighbours say about one embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The class with the largest similarity-weighted vote of the k nearest examples.
    pub class: usize,
    /// Its share of the vote, in [0, 1].
    pub score: f32,
    /// Cosine distance to the nearest example of any class (0 = same direction).
    pub nearest: f32,
    /// The class of that nearest example.
    pub nearest_class: usize,
}

pub struct Neighbours {
    k: usize,
    similarities: Array1<f32>,
    /// The k nearest so far, nearest first: (distance, row).
    best: Vec<(f32, usize)>,
    /// Per class: vote share of the last decision.
    votes: Vec<f32>,
}

impl Neighbours {
    pub fn new(rows: usize, classes: usize, k: usize) -> Self {
        let k = k.clamp(1, rows.max(1));
        Neighbours {
            k,
            similarities: Array1::zeros(rows),
            best: Vec::with_capacity(k),
            votes: vec![0.0; classes],
        }
    }

    /// Per class: the vote share of the last decision.
    pub fn votes(&self) -> &[f32] {
        &self.votes
    }

    /// Decides `query` (unit length) against `bank` (rows of unit length) whose row `i`
    /// belongs to class `row_class[i]`. `None` when the bank is empty or the sizes
    /// disagree.
    pub fn decide(
        &mut self,
        bank: ArrayView2<'_, f32>,
        row_class: &[usize],
        query: &[f32],
    ) -> Option<Decision> {
        let (rows, dim) = bank.dim();
        if rows == 0
            || dim != query.len()
            || rows != self.similarities.len()
            || row_class.len() != rows
        {
            return None;
        }
        general_mat_vec_mul(
            1.0,
            &bank,
            &ArrayView1::from(query),
            0.0,
            &mut self.similarities,
        );
        self.best.clear();
        for (row, &sim) in self.similarities.iter().enumerate() {
            let d = (1.0 - sim).max(0.0);
            if self.best.len() == self.k && self.best.last().is_some_and(|l| d >= l.0) {
                continue;
            }
            if self.best.len() == self.k {
                self.best.pop();
            }
            let at = self.best.partition_point(|b| b.0 <= d);
            self.best.insert(at, (d, row));
        }
        self.votes.iter_mut().for_each(|v| *v = 0.0);
        let mut total = 0.0;
        for &(d, row) in &self.best {
            let c = *row_class.get(row)?;
            // Similarity-weighted: a near example counts more than a far one.
            let w = (1.0 - d).max(1e-6);
            *self.votes.get_mut(c)? += w;
            total += w;
        }
        for v in &mut self.votes {
            *v /= total;
        }
        // Ties go to the class of the nearer example.
        let mut class = row_class[self.best[0].1];
        for &(_, row) in &self.best {
            let c = row_class[row];
            if self.votes[c] > self.votes[class] {
                class = c;
            }
        }
        let (nearest, row) = self.best[0];
        Some(Decision {
            class,
            score: self.votes[class],
            nearest,
            nearest_class: row_class[row],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: [f32; 2]) -> [f32; 2] {
        let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
        [v[0] / n, v[1] / n]
    }

    #[test]
    fn the_majority_of_near_examples_wins_and_distance_is_to_the_nearest() {
        // class 0 along x, class 1 along y; one class-1 outlier near x.
        let rows = [
            unit([1.0, 0.0]),
            unit([1.0, 0.1]),
            unit([1.0, 0.2]),
            unit([0.0, 1.0]),
            unit([1.0, 0.05]),
        ];
        let bank: Vec<f32> = rows.iter().flatten().copied().collect();
        let bank = ArrayView2::from_shape((5, 2), &bank).unwrap();
        let classes = [0, 0, 0, 1, 1];
        let mut nn = Neighbours::new(5, 2, 3);
        let q = unit([1.0, 0.04]);
        let d = nn.decide(bank, &classes, &q).unwrap();
        assert_eq!(d.class, 0, "two of three nearest are class 0");
        assert_eq!(d.nearest_class, 1, "the single nearest is the outlier");
        assert!(d.nearest < 1e-3 && d.score > 0.6 && d.score < 0.7, "{d:?}");
        let sum: f32 = nn.votes().iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        // Far from everything: the distance says so.
        let d = nn.decide(bank, &classes, &unit([-1.0, -1.0])).unwrap();
        assert!(d.nearest > 1.0, "{d:?}");
        // Sizes that disagree are refused, not indexed.
        assert!(nn.decide(bank, &classes, &[1.0]).is_none());
    }
}
