//! The seeded hold-out split of the good images: the hold-out share calibrates the
//! thresholds and never enters the memory bank.

use crate::patchcore::SplitMix64;

/// Mixed into the seed so the split and the coreset do not share a stream.
const SPLIT_SALT: u64 = 0x5eed_5011;

/// Splits `n` items into (train, holdout) index lists with a seeded shuffle; both sorted.
pub fn split(n: usize, holdout: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed ^ SPLIT_SALT).shuffle(&mut idx);
    let k = ((n as f32 * holdout).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let mut hold = idx[..k].to_vec();
    let mut train = idx[k..].to_vec();
    hold.sort_unstable();
    train.sort_unstable();
    (train, hold)
}
