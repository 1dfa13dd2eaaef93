//! DB post-processing: the detector's probability map → text boxes on the frame, in
//! reading order, as rapidocr's `DBPostProcess` and `filter_tag_det_res` produce them.

use crate::frame::FrameLayout;
use crate::geometry::{self, min_area_rect, Quad, RotRect};
use crate::heads::FrameGeometry;

/// The thresholds that pick boxes (from [`super::OcrConfig`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct BoxParams {
    pub det_threshold: f32,
    pub box_threshold: f32,
    pub unclip_ratio: f32,
    pub max_candidates: usize,
}

/// The box thresholds and scratch buffers reused across frames.
pub(super) struct BoxFinder {
    p: BoxParams,
    bitmap: Vec<u8>,
    seen: Vec<bool>,
    stack: Vec<u32>,
    pixels: Vec<(i32, i32)>,
}

impl BoxFinder {
    pub fn new(p: BoxParams) -> Self {
        BoxFinder {
            p,
            bitmap: Vec::new(),
            seen: Vec::new(),
            stack: Vec::new(),
            pixels: Vec::new(),
        }
    }

    /// Fills `boxes` from the `w`x`h` map, in frame pixels and reading order.
    pub fn find(
        &mut self,
        map: &[f32],
        w: usize,
        h: usize,
        g: &FrameGeometry,
        layout: &FrameLayout,
        boxes: &mut Vec<Quad>,
    ) {
        boxes.clear();
        let p = self.p;
        let n = w * h;
        self.bitmap.clear();
        self.bitmap
            .extend(map.iter().map(|&v| u8::from(v > p.det_threshold)));
        // cv2.dilate with a 2x2 kernel of ones (anchor at 1,1): a pixel is set when it,
        // its left, upper or upper-left neighbour is.
        for y in (0..h).rev() {
            for x in (0..w).rev() {
                let i = y * w + x;
                let mut v = self.bitmap[i];
                if x > 0 {
                    v |= self.bitmap[i - 1];
                }
                if y > 0 {
                    v |= self.bitmap[i - w];
                    if x > 0 {
                        v |= self.bitmap[i - w - 1];
                    }
                }
                self.bitmap[i] = v;
            }
        }
        self.seen.clear();
        self.seen.resize(n, false);
        // Frame extent of what the detector saw (the ROI, or the whole frame).
        let t = g.transform;
        let (dest_w, dest_h) = (
            (g.input.0 as f32 - 2.0 * t.pad.0) * t.scale.0,
            (g.input.1 as f32 - 2.0 * t.pad.1) * t.scale.1,
        );
        let (dest_w, dest_h) = (dest_w.round(), dest_h.round());
        let (kx, ky) = (dest_w / w as f32, dest_h / h as f32);
        let (frame_w, frame_h) = (layout.width as f32, layout.height as f32);
        let mut candidates = 0;
        for start in 0..n {
            if self.seen[start] || self.bitmap[start] == 0 {
                continue;
            }
            if candidates == p.max_candidates {
                break;
            }
            candidates += 1;
            self.region(start, w, h);
            let Some((rect, sside)) = min_area_rect(&mut self.pixels) else {
                continue;
            };
            if sside < 3.0 {
                continue;
            }
            let points = mini_box(&rect);
            let score = box_score_fast(map, w, h, &points);
            if p.box_threshold > score {
                continue;
            }
            let grown = unclip(&points, p.unclip_ratio);
            self.pixels.clear();
            self.pixels.extend(grown);
            let Some((rect, sside)) = min_area_rect(&mut self.pixels) else {
                continue;
            };
            if sside < 5.0 {
                continue;
            }
            let mut quad = mini_box(&rect);
            for q in quad.iter_mut() {
                // rapidocr: clip(round(x / width * dest_width), 0, dest_width) as int32.
                q[0] = (q[0] * kx).round_ties_even().clamp(0.0, dest_w);
                q[1] = (q[1] * ky).round_ties_even().clamp(0.0, dest_h);
                q[0] = (q[0] + t.origin.0).trunc();
                q[1] = (q[1] + t.origin.1).trunc();
            }
            // filter_tag_det_res: order clockwise, clip to the image, drop slivers.
            let mut quad = order_clockwise(quad);
            for q in quad.iter_mut() {
                q[0] = q[0].clamp(0.0, frame_w - 1.0).trunc();
                q[1] = q[1].clamp(0.0, frame_h - 1.0).trunc();
            }
            if geometry::dist(quad[0], quad[1]) as i64 <= 3
                || geometry::dist(quad[0], quad[3]) as i64 <= 3
            {
                continue;
            }
            boxes.push(quad);
        }
        sort_reading_order(boxes);
    }

    /// Collects the boundary pixels of the 8-connected region containing `start`.
    fn region(&mut self, start: usize, w: usize, h: usize) {
        self.pixels.clear();
        self.stack.clear();
        self.seen[start] = true;
        self.stack.push(start as u32);
        while let Some(i) = self.stack.pop() {
            let i = i as usize;
            let (x, y) = (i % w, i / w);
            // Only boundary pixels can be hull vertices.
            let inner = x > 0
                && y > 0
                && x + 1 < w
                && y + 1 < h
                && self.bitmap[i - 1] != 0
                && self.bitmap[i + 1] != 0
                && self.bitmap[i - w] != 0
                && self.bitmap[i + w] != 0;
            if !inner {
                self.pixels.push((x as i32, y as i32));
            }
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if !self.seen[j] && self.bitmap[j] != 0 {
                        self.seen[j] = true;
                        self.stack.push(j as u32);
                    }
                }
            }
        }
    }
}

/// rapidocr's `get_mini_boxes` corner order: top-left, top-right, bottom-right, bottom-left.
fn mini_box(r: &RotRect) -> Quad {
    let mut p = r.corners;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    [p[i1], p[i2], p[i3], p[i4]]
}

/// rapidocr's `order_points_clockwise`.
fn order_clockwise(q: Quad) -> Quad {
    let mut p = q;
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (mut left, mut right) = ([p[0], p[1]], [p[2], p[3]]);
    left.sort_by(|a, b| a[1].total_cmp(&b[1]));
    right.sort_by(|a, b| a[1].total_cmp(&b[1]));
    [left[0], right[0], right[1], left[1]]
}

/// Mean map value inside the quad (rapidocr `box_score_fast`: the quad's corners are
/// truncated to whole pixels, inside-or-on-edge pixels count).
fn box_score_fast(map: &[f32], w: usize, h: usize, q: &Quad) -> f32 {
    let clampi = |v: f32, hi: usize| (v as i64).clamp(0, hi as i64 - 1);
    let [x0, y0, x1, y1] = geometry::bounds(q);
    let xmin = clampi(x0.floor(), w);
    let xmax = clampi(x1.ceil(), w);
    let ymin = clampi(y0.floor(), h);
    let ymax = clampi(y1.ceil(), h);
    let poly: Vec<(f64, f64)> = q
        .iter()
        .map(|p| {
            (
                f64::from((p[0] - xmin as f32).trunc()),
                f64::from((p[1] - ymin as f32).trunc()),
            )
        })
        .collect();
    let (mut sum, mut count) = (0f64, 0usize);
    for y in 0..=(ymax - ymin) {
        let yf = y as f64;
        // Span of the convex polygon on this scanline.
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for i in 0..4 {
            let (a, b) = (poly[i], poly[(i + 1) % 4]);
            if (a.1 - yf) * (b.1 - yf) > 0.0 {
                continue;
            }
            if a.1 == b.1 {
                lo = lo.min(a.0.min(b.0));
                hi = hi.max(a.0.max(b.0));
            } else {
                let x = a.0 + (yf - a.1) * (b.0 - a.0) / (b.1 - a.1);
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        if lo > hi {
            continue;
        }
        let lo = (lo.round() as i64).max(0);
        let hi = (hi.round() as i64).min(xmax - xmin);
        for x in lo..=hi {
            let i = ((ymin + y) as usize) * w + (xmin + x) as usize;
            sum += f64::from(map[i]);
            count += 1;
        }
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64) as f32
    }
}

/// rapidocr's `unclip`: the quad grown by area × ratio / perimeter (pyclipper round offset).
fn unclip(q: &Quad, ratio: f32) -> Vec<(i32, i32)> {
    let area = geometry::polygon_area(q);
    let length = geometry::perimeter(q);
    if length == 0.0 {
        return Vec::new();
    }
    geometry::offset_quad(q, area * f64::from(ratio) / length)
}

/// rapidocr's `sorted_boxes`: by the first corner's (y, x), then neighbours on the same
/// line (y within 10 px) swapped into left-to-right order.
fn sort_reading_order(boxes: &mut [Quad]) {
    boxes.sort_by(|a, b| {
        a[0][1]
            .total_cmp(&b[0][1])
            .then(a[0][0].total_cmp(&b[0][0]))
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            if (boxes[j + 1][0][1] - boxes[j][0][1]).abs() < 10.0
                && boxes[j + 1][0][0] < boxes[j][0][0]
            {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mini_box_of_an_axis_aligned_block() {
        let mut pts: Vec<(i32, i32)> = (0..10).flat_map(|x| (0..4).map(move |y| (x, y))).collect();
        let (r, sside) = min_area_rect(&mut pts).unwrap();
        assert_eq!(sside, 3.0);
        let q = mini_box(&r);
        assert_eq!(q, [[0.0, 0.0], [9.0, 0.0], [9.0, 3.0], [0.0, 3.0]]);
    }

    #[test]
    fn unclip_matches_pyclipper_on_a_rectangle() {
        // pyclipper offsets [[0.9,0.9],[10.9,0.9],[10.9,5.9],[0.9,5.9]] by 2.0 to a shape
        // spanning x -2..12, y -2..7.
        let q = [[0.9, 0.9], [10.9, 0.9], [10.9, 5.9], [0.9, 5.9]];
        // area 50, perimeter 30: ratio 1.2 gives distance 2.
        let mut pts = unclip(&q, 1.2);
        let xs: Vec<i32> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<i32> = pts.iter().map(|p| p.1).collect();
        assert_eq!(
            (*xs.iter().min().unwrap(), *xs.iter().max().unwrap()),
            (-2, 12)
        );
        assert_eq!(
            (*ys.iter().min().unwrap(), *ys.iter().max().unwrap()),
            (-2, 7)
        );
        let (_, sside) = min_area_rect(&mut pts).unwrap();
        assert_eq!(sside, 9.0);
    }
}
