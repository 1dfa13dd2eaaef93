//! Tiling: a frame larger than the model input is inspected as overlapping tiles, each
//! through the backbone and the kNN, and the tile maps are averaged where they overlap
//! into one map over the whole region of interest (`[head] tile`, `tile_overlap`).
//!
//! Along each axis `n = ceil((L - overlap) / (tile - overlap))` tiles are spread evenly
//! from 0 to `L - tile` (integer positions, so neighbours overlap by at least `overlap`
//! pixels and the last tile ends exactly on the frame edge): every pixel is covered.

use crate::preprocess::Rect;

/// Tile size and overlap in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileSpec {
    pub width: u32,
    pub height: u32,
    pub overlap: u32,
}

/// Start offsets of tiles of length `tile` covering `0..len` with at least `overlap`
/// shared pixels between neighbours. A `len` at or below `tile` gives one tile at 0
/// (the caller clamps the tile to `len`).
pub fn axis_offsets(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if len <= tile || tile <= overlap {
        return vec![0];
    }
    let (len, tile, overlap) = (u64::from(len), u64::from(tile), u64::from(overlap));
    let n = (len - overlap).div_ceil(tile - overlap).max(2);
    (0..n)
        .map(|i| (i * (len - tile) / (n - 1)) as u32)
        .collect()
}

/// The tiles over `region` (frame pixels), row by row. Tiles larger than the region are
/// clamped to it.
pub fn tile_grid(region: Rect, spec: &TileSpec) -> Vec<Rect> {
    let (tw, th) = (spec.width.min(region.width), spec.height.min(region.height));
    let xs = axis_offsets(region.width, tw, spec.overlap);
    let ys = axis_offsets(region.height, th, spec.overlap);
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for &y in &ys {
        for &x in &xs {
            out.push(Rect {
                x: region.x + x,
                y: region.y + y,
                width: tw,
                height: th,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_every_pixel_with_the_overlap_asked_for() {
        for (w, h, tw, th, ov) in [
            (2048, 1536, 256, 256, 32),
            (2592, 1944, 256, 256, 32), // 5 MP
            (300, 256, 256, 256, 0),
            (257, 1000, 256, 96, 16),
            (256, 256, 256, 256, 32),
            (100, 80, 256, 256, 32), // smaller than one tile
        ] {
            let region = Rect {
                x: 10,
                y: 20,
                width: w,
                height: h,
            };
            let spec = TileSpec {
                width: tw,
                height: th,
                overlap: ov,
            };
            let tiles = tile_grid(region, &spec);
            let mut hits = vec![0u8; (w * h) as usize];
            for t in &tiles {
                assert!(
                    t.x >= 10 && t.y >= 20 && t.x + t.width <= 10 + w && t.y + t.height <= 20 + h
                );
                assert_eq!((t.width, t.height), (tw.min(w), th.min(h)));
                for y in t.y - 20..t.y - 20 + t.height {
                    for x in t.x - 10..t.x - 10 + t.width {
                        hits[(y * w + x) as usize] = 1;
                    }
                }
            }
            assert!(
                hits.iter().all(|&v| v == 1),
                "{w}x{h} / {tw}x{th}: a pixel is uncovered"
            );
            for (len, t) in [(w, tw.min(w)), (h, th.min(h))] {
                let offs = axis_offsets(len, t, ov);
                for pair in offs.windows(2) {
                    assert!(pair[1] > pair[0] && pair[0] + t >= pair[1] + ov, "{offs:?}");
                }
                assert_eq!(offs.last().copied().unwrap() + t, len);
            }
        }
        // 2048 wide, 256 tiles, 32 overlap: ceil(2016 / 224) = 9 tiles.
        assert_eq!(axis_offsets(2048, 256, 32).len(), 9);
        assert_eq!(axis_offsets(256, 256, 32), vec![0]);
    }
}
