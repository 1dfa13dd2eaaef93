//! Backbone feature maps → one unit-length embedding per image. The fit and the head share
//! this, so the rows of a model and the frames compared with them are made alike.

use ndarray::{ArrayView2, ArrayViewMut1};

use super::artifact::{Block, Pool};

/// Writes the embedding of one image into `out` (`blocks`' channels summed long):
/// `map(output)` gives each block's feature map, CHW of batch 1. Each block is pooled
/// over the map, L2-normalised and scaled by `1/sqrt(blocks)` so all blocks weigh alike
/// and the embedding has unit length. Returns the name of a map whose size is wrong.
pub fn embed<'a>(
    blocks: &[Block],
    mut map: impl FnMut(&str) -> Option<&'a [f32]>,
    out: &mut [f32],
) -> Result<(), String> {
    let weight = 1.0 / (blocks.len().max(1) as f32).sqrt();
    let mut start = 0;
    for b in blocks {
        let end = start + b.channels;
        let data = map(&b.output).ok_or_else(|| b.output.clone())?;
        let hw = data.len() / b.channels.max(1);
        if hw == 0 {
            return Err(b.output.clone());
        }
        let maps = ArrayView2::from_shape((b.channels, hw), data).map_err(|_| b.output.clone())?;
        let Some(dst) = out.get_mut(start..end) else {
            return Err(b.output.clone());
        };
        let mut dst = ArrayViewMut1::from(dst);
        for (v, channel) in dst.iter_mut().zip(maps.outer_iter()) {
            *v = match b.pool {
                Pool::Avg => channel.sum() / hw as f32,
                Pool::Max => channel.fold(f32::NEG_INFINITY, |m, &x| m.max(x)),
            };
        }
        let norm = dst.dot(&dst).sqrt();
        if norm > 0.0 && norm.is_finite() {
            dst *= weight / norm;
        }
        start = end;
    }
    Ok(())
}

/// The embedding's blocks for `pooling` ("avg" or "avg+max") over the stride-8 and
/// stride-16 maps with `channels` each.
pub fn blocks(pooling: &[Pool], outputs: &[(&str, usize)]) -> Vec<Block> {
    outputs
        .iter()
        .flat_map(|&(output, channels)| {
            pooling.iter().map(move |&pool| Block {
                output: output.to_string(),
                pool,
                channels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_pooled_normalised_and_weighted() {
        // Two channels of a 2x2 map.
        let data = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 4.0];
        let bl = blocks(&[Pool::Avg, Pool::Max], &[("f", 2)]);
        let mut out = [0.0f32; 4];
        embed(&bl, |_| Some(&data[..]), &mut out).unwrap();
        let w = 1.0 / 2f32.sqrt();
        // avg = [1, 1] → [w/√2, w/√2]; max = [1, 4] → [1, 4] w/√17
        let e = [
            w / 2f32.sqrt(),
            w / 2f32.sqrt(),
            w / 17f32.sqrt(),
            4.0 * w / 17f32.sqrt(),
        ];
        for (a, b) in out.iter().zip(e) {
            assert!((a - b).abs() < 1e-6, "{out:?} vs {e:?}");
        }
        let len: f32 = out.iter().map(|v| v * v).sum();
        assert!((len - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_missing_map_is_named() {
        let bl = blocks(&[Pool::Avg], &[("feat_s16", 2)]);
        let mut out = [0.0f32; 2];
        assert_eq!(embed(&bl, |_| None, &mut out), Err("feat_s16".into()));
    }
}
