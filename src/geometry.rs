//! Plane geometry the heads share: boxes, quads and polygons, convex hull and minimum-area
//! rectangle, homographies and a perspective warp.
//!
//! Ground floor: this module imports nothing from the crate. Several functions reproduce an
//! OpenCV or pyclipper routine exactly (named in their docs), because heads are tested for
//! parity with Python pipelines that call them; their arithmetic (precision, rounding,
//! order of operations) is part of the contract.

/// Four corners of a (possibly rotated or skewed) box, usually top-left, top-right,
/// bottom-right, bottom-left, in pixels.
pub type Quad = [[f32; 2]; 4];

/// Euclidean distance between two points.
pub fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// The axis-aligned bounds `[x0, y0, x1, y1]` of some points (`x0 > x1` when empty).
pub fn bounds(points: &[[f32; 2]]) -> [f32; 4] {
    [
        points.iter().map(|p| p[0]).fold(f32::MAX, f32::min),
        points.iter().map(|p| p[1]).fold(f32::MAX, f32::min),
        points.iter().map(|p| p[0]).fold(f32::MIN, f32::max),
        points.iter().map(|p| p[1]).fold(f32::MIN, f32::max),
    ]
}

/// Centre-size `[cx, cy, w, h]` to corner `[x0, y0, x1, y1]`.
pub fn xywh_to_xyxy([cx, cy, w, h]: [f32; 4]) -> [f32; 4] {
    let (hw, hh) = (w / 2.0, h / 2.0);
    [cx - hw, cy - hh, cx + hw, cy + hh]
}

/// Intersection over union of two xyxy boxes (torchvision's `box_iou`).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Area of a simple polygon (shoelace, summed in f64).
pub fn polygon_area(p: &[[f32; 2]]) -> f64 {
    let n = p.len();
    let mut twice = 0f64;
    for i in 0..n {
        let (a, b) = (p[i], p[(i + 1) % n]);
        twice += f64::from(a[0]) * f64::from(b[1]) - f64::from(b[0]) * f64::from(a[1]);
    }
    twice.abs() / 2.0
}

/// Length of a closed polygon's boundary.
pub fn perimeter(p: &[[f32; 2]]) -> f64 {
    let n = p.len();
    (0..n)
        .map(|i| f64::from(dist(p[i], p[(i + 1) % n])))
        .fold(0.0, |s, l| s + l)
}

/// A quad grown outward by `d` as pyclipper's round offset does for text boxes: corners
/// truncated to integers (pyclipper works on integers), each moved out along both adjacent
/// edge normals, rounded. Two points per non-degenerate edge, in edge order.
pub fn offset_quad(q: &Quad, d: f64) -> Vec<(i32, i32)> {
    let p: Vec<(f64, f64)> = q
        .iter()
        .map(|p| (f64::from(p[0]).trunc(), f64::from(p[1]).trunc()))
        .collect();
    // Orientation: positive signed area means counter-clockwise in y-down pixels.
    let signed: f64 = (0..4)
        .map(|i| p[i].0 * p[(i + 1) % 4].1 - p[(i + 1) % 4].0 * p[i].1)
        .sum();
    let sign = if signed >= 0.0 { 1.0 } else { -1.0 };
    let mut out = Vec::with_capacity(8);
    for i in 0..4 {
        let (a, b) = (p[i], p[(i + 1) % 4]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            continue;
        }
        // Outward normal of edge a→b.
        let (nx, ny) = (sign * dy / len, -sign * dx / len);
        for q in [a, b] {
            out.push(((q.0 + nx * d).round() as i32, (q.1 + ny * d).round() as i32));
        }
    }
    out
}

/// Convex hull of integer points (Andrew's monotone chain), counter-clockwise in y-up
/// terms, without repeated or collinear points; sorts `points` in place.
pub fn convex_hull(points: &mut [(i32, i32)]) -> Vec<(i32, i32)> {
    points.sort_unstable();
    let cross = |o: (i32, i32), a: (i32, i32), b: (i32, i32)| {
        i64::from(a.0 - o.0) * i64::from(b.1 - o.1) - i64::from(a.1 - o.1) * i64::from(b.0 - o.0)
    };
    let mut hull: Vec<(i32, i32)> = Vec::with_capacity(points.len() + 1);
    for &p in points.iter() {
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    }
    let lower = hull.len() + 1;
    for &p in points.iter().rev().skip(1) {
        while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    }
    hull.pop();
    hull.dedup();
    hull
}

/// A rotated rectangle as its four corners, in order around it.
#[derive(Debug, Clone, Copy)]
pub struct RotRect {
    pub corners: Quad,
}

/// OpenCV `minAreaRect` (rotating calipers over the convex hull); `None` for no points.
/// Returns the rectangle and its shorter side. Sorts `points` in place.
pub fn min_area_rect(points: &mut [(i32, i32)]) -> Option<(RotRect, f32)> {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return None,
        1 => {
            let p = [hull[0].0 as f32, hull[0].1 as f32];
            return Some((RotRect { corners: [p; 4] }, 0.0));
        }
        _ => {}
    }
    let mut best: Option<(f64, RotRect, f32)> = None;
    for i in 0..hull.len() {
        let a = hull[i];
        let b = hull[(i + 1) % hull.len()];
        let (dx, dy) = (f64::from(b.0 - a.0), f64::from(b.1 - a.1));
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        let (vx, vy) = (-uy, ux);
        let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &hull {
            let (px, py) = (f64::from(p.0 - a.0), f64::from(p.1 - a.1));
            let u = px * ux + py * uy;
            let v = px * vx + py * vy;
            u0 = u0.min(u);
            u1 = u1.max(u);
            v0 = v0.min(v);
            v1 = v1.max(v);
        }
        let area = (u1 - u0) * (v1 - v0);
        // The tolerance keeps the first of equal rectangles, as OpenCV does.
        if best.as_ref().is_none_or(|(b, _, _)| area < *b - 1e-9) {
            let corner = |u: f64, v: f64| {
                [
                    (f64::from(a.0) + u * ux + v * vx) as f32,
                    (f64::from(a.1) + u * uy + v * vy) as f32,
                ]
            };
            let rect = RotRect {
                corners: [
                    corner(u0, v0),
                    corner(u1, v0),
                    corner(u1, v1),
                    corner(u0, v1),
                ],
            };
            best = Some((area, rect, (u1 - u0).min(v1 - v0) as f32));
        }
    }
    best.map(|(_, r, s)| (r, s))
}

/// A 3x3 homography, row-major: `(x, y)` maps to `((m0 x + m1 y + m2) / d, (m3 x + m4 y +
/// m5) / d)` with `d = m6 x + m7 y + m8`.
pub type Homography = [f64; 9];

/// The identity homography.
pub const IDENTITY: Homography = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

/// The homography taking `from[i]` to `to[i]` (OpenCV `getPerspectiveTransform`); `None`
/// when the corners are degenerate (three in a line).
pub fn perspective(from: &[[f64; 2]; 4], to: &[[f64; 2]; 4]) -> Option<Homography> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (from[i], to[i]);
        a[i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[i + 4] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for r in 0..8 {
            if r != col {
                let f = a[r][col] / a[col][col];
                let pivot_row = a[col];
                for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut m = [1f64; 9];
    for (i, row) in a.iter().enumerate() {
        m[i] = row[8] / row[i];
    }
    Some(m)
}

/// A packed 8-bit image (`channels` bytes per pixel, rows without padding).
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

/// OpenCV `warpPerspective` with `WARP_INVERSE_MAP`, `INTER_CUBIC` and `BORDER_REPLICATE`:
/// a `w`x`h` image whose pixel `(x, y)` is sampled from `src` at `m(x, y)`. Source positions
/// are quantised to 1/32 pixel as OpenCV does. `src` must hold `width * height * channels`
/// bytes and be at least 1x1.
pub fn warp_perspective(src: ImageRef<'_>, m: &Homography, w: usize, h: usize) -> Vec<u8> {
    let (sw, sh, ch) = (src.width, src.height, src.channels);
    let mut pixels = vec![0u8; w * h * ch];
    let at = |x: i64, y: i64, c: usize| {
        let x = x.clamp(0, sw as i64 - 1) as usize;
        let y = y.clamp(0, sh as i64 - 1) as usize;
        f32::from(src.pixels[(y * sw + x) * ch + c])
    };
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f64, y as f64);
            let d = m[6] * xf + m[7] * yf + m[8];
            let d = if d != 0.0 { 32.0 / d } else { 0.0 };
            let sx = ((m[0] * xf + m[1] * yf + m[2]) * d).round() as i64;
            let sy = ((m[3] * xf + m[4] * yf + m[5]) * d).round() as i64;
            let (ix, iy) = (sx >> 5, sy >> 5);
            let cx = cubic_weights((sx & 31) as f32 / 32.0);
            let cy = cubic_weights((sy & 31) as f32 / 32.0);
            for c in 0..ch {
                let mut v = 0f32;
                for (j, wy) in cy.iter().enumerate() {
                    let mut row = 0f32;
                    for (i, wx) in cx.iter().enumerate() {
                        row += wx * at(ix - 1 + i as i64, iy - 1 + j as i64, c);
                    }
                    v += wy * row;
                }
                pixels[(y * w + x) * ch + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    pixels
}

/// OpenCV's bicubic weights (A = -0.75) for a fractional offset.
fn cubic_weights(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_area_rect_of_an_axis_aligned_block() {
        let mut pts: Vec<(i32, i32)> = (0..10).flat_map(|x| (0..4).map(move |y| (x, y))).collect();
        let (r, sside) = min_area_rect(&mut pts).unwrap();
        assert_eq!(sside, 3.0);
        let b = bounds(&r.corners);
        assert_eq!(b, [0.0, 0.0, 9.0, 3.0]);
    }

    #[test]
    fn offset_matches_pyclipper_on_a_rectangle() {
        // pyclipper offsets [[0.9,0.9],[10.9,0.9],[10.9,5.9],[0.9,5.9]] by 2.0 to a shape
        // spanning x -2..12, y -2..7.
        let q = [[0.9, 0.9], [10.9, 0.9], [10.9, 5.9], [0.9, 5.9]];
        assert!((polygon_area(&q) - 50.0).abs() < 1e-4);
        assert!((perimeter(&q) - 30.0).abs() < 1e-4);
        let mut pts = offset_quad(&q, 2.0);
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

    #[test]
    fn perspective_maps_corners() {
        let from = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]];
        let to = [[3.0, 4.0], [13.0, 5.0], [12.0, 10.0], [2.0, 9.0]];
        let m = perspective(&from, &to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            let d = m[6] * f[0] + m[7] * f[1] + m[8];
            let x = (m[0] * f[0] + m[1] * f[1] + m[2]) / d;
            let y = (m[3] * f[0] + m[4] * f[1] + m[5]) / d;
            assert!((x - t[0]).abs() < 1e-9 && (y - t[1]).abs() < 1e-9);
        }
    }

    #[test]
    fn identity_warp_copies_the_image() {
        let pixels: Vec<u8> = (0..4 * 3 * 2).map(|v| v as u8 * 10).collect();
        let src = ImageRef {
            pixels: &pixels,
            width: 4,
            height: 3,
            channels: 2,
        };
        assert_eq!(warp_perspective(src, &IDENTITY, 4, 3), pixels);
    }

    #[test]
    fn iou_of_overlapping_and_empty_boxes() {
        let a = [0.0, 0.0, 2.0, 2.0];
        assert_eq!(iou(&a, &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
        assert_eq!(iou(&a, &[5.0, 5.0, 6.0, 6.0]), 0.0);
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
        assert_eq!(xywh_to_xyxy([2.0, 3.0, 4.0, 2.0]), [0.0, 2.0, 4.0, 4.0]);
    }
}
