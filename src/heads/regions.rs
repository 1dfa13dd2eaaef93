//! Connected regions of a score map above a threshold (8-connectivity), with scratch
//! buffers reused across frames.

/// One region in map coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x0: usize,
    pub y0: usize,
    /// Exclusive right/bottom edges.
    pub x1: usize,
    pub y1: usize,
    pub pixels: usize,
    pub max: f32,
    /// Sum of the values over the region's pixels (mean = sum / pixels).
    pub sum: f32,
}

#[derive(Default)]
pub struct RegionFinder {
    seen: Vec<bool>,
    stack: Vec<u32>,
}

impl RegionFinder {
    /// Calls `emit` for each region of `map` (row-major `w`x`h`) with values >= `threshold`.
    pub fn find(
        &mut self,
        map: &[f32],
        w: usize,
        h: usize,
        threshold: f32,
        emit: impl FnMut(Region),
    ) {
        let n = (w * h).min(map.len());
        self.find_where(w, h, |i| i < n && map[i] >= threshold, |i| map[i], emit);
    }

    /// Calls `emit` for each 8-connected region of pixels where `inside(index)` holds, in
    /// the row-major order of each region's first pixel; `value(index)` feeds max and sum.
    pub fn find_where(
        &mut self,
        w: usize,
        h: usize,
        inside: impl Fn(usize) -> bool,
        value: impl Fn(usize) -> f32,
        mut emit: impl FnMut(Region),
    ) {
        let n = w * h;
        if self.seen.len() != n {
            self.seen.resize(n, false);
            self.stack.reserve(n.saturating_sub(self.stack.capacity()));
        }
        self.seen.fill(false);
        for start in 0..n {
            if self.seen[start] || !inside(start) {
                continue;
            }
            let mut r = Region {
                x0: start % w,
                y0: start / w,
                x1: start % w + 1,
                y1: start / w + 1,
                pixels: 0,
                max: f32::NEG_INFINITY,
                sum: 0.0,
            };
            self.seen[start] = true;
            self.stack.clear();
            self.stack.push(start as u32);
            while let Some(i) = self.stack.pop() {
                let i = i as usize;
                let (x, y) = (i % w, i / w);
                let v = value(i);
                r.pixels += 1;
                r.max = r.max.max(v);
                r.sum += v;
                r.x0 = r.x0.min(x);
                r.y0 = r.y0.min(y);
                r.x1 = r.x1.max(x + 1);
                r.y1 = r.y1.max(y + 1);
                for ny in y.saturating_sub(1)..(y + 2).min(h) {
                    for nx in x.saturating_sub(1)..(x + 2).min(w) {
                        let j = ny * w + nx;
                        if !self.seen[j] && inside(j) {
                            self.seen[j] = true;
                            self.stack.push(j as u32);
                        }
                    }
                }
            }
            emit(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_separate_blobs_with_boxes_and_counts() {
        #[rustfmt::skip]
        let map = [
            0.9, 0.8, 0.0, 0.0, 0.0,
            0.0, 0.7, 0.0, 0.0, 0.6,
            0.0, 0.0, 0.0, 0.6, 0.6,
        ];
        let mut found = Vec::new();
        RegionFinder::default().find(&map, 5, 3, 0.5, |r| found.push(r));
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].x0, found[0].y0, found[0].x1, found[0].y1),
            (0, 0, 2, 2)
        );
        assert_eq!(found[0].pixels, 3);
        assert_eq!(found[0].max, 0.9);
        assert_eq!(
            (found[1].x0, found[1].y0, found[1].x1, found[1].y1),
            (3, 1, 5, 3)
        );
        assert_eq!(found[1].pixels, 3);
    }
}
