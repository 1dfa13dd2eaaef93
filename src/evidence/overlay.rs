//! Draws an evidence image: the frame as RGB, the anomaly heatmap or segmentation mask
//! blended in, boxes with class and score, OCR quads with the text read, and a banner with
//! the verdict and the failed rules. Text comes from the public-domain `font8x8` bitmaps,
//! so no font file is needed on the box.

use image::RgbImage;

use crate::heads::NO_CLASS;
use crate::preprocess::convert_row;
use crate::verdict::Verdict;

use super::Capture;

/// A box to draw: frame rectangle (x, y, width, height), its label and colour index.
#[derive(Debug, Clone)]
pub struct Mark {
    pub rect: [f32; 4],
    pub label: String,
    pub color: usize,
}

/// What to draw over the frame, in words and frame coordinates.
#[derive(Debug, Clone, Default)]
pub struct Drawing {
    pub verdict: Verdict,
    /// First banner line, e.g. `NG  seq 42  kit-completeness`.
    pub title: String,
    /// Further banner lines: the failed rules, or why the part could not be inspected.
    pub lines: Vec<String>,
    pub boxes: Vec<Mark>,
    /// OCR lines: corners (tl, tr, br, bl) and the text read.
    pub quads: Vec<([[f32; 2]; 4], String)>,
}

/// Colours for classes (and the anomaly class, 0), distinct on grey parts.
const PALETTE: [[u8; 3]; 8] = [
    [255, 56, 56],
    [255, 178, 29],
    [72, 249, 10],
    [0, 194, 255],
    [255, 55, 199],
    [146, 204, 23],
    [52, 69, 147],
    [255, 149, 200],
];
const HEAT_ALPHA: f32 = 0.45;
const MASK_ALPHA: f32 = 0.45;
/// Size of the placeholder image of a part whose frame could not be read.
const BLANK_SIZE: (u32, u32) = (640, 160);

pub fn color(i: usize) -> [u8; 3] {
    PALETTE[i % PALETTE.len()]
}

/// The frame as RGB (`None`: no pixels, or they do not fit their layout) and the
/// annotated image (a blank canvas with the banner when there are no pixels).
pub fn render(capture: Option<&Capture>, d: &Drawing) -> (Option<RgbImage>, RgbImage) {
    let plain = capture.and_then(frame_rgb);
    let mut img = match &plain {
        Some(p) => p.clone(),
        None => RgbImage::new(BLANK_SIZE.0, BLANK_SIZE.1),
    };
    if let (Some(c), true) = (capture, plain.is_some()) {
        if !c.heat.is_empty() {
            blend_map(&mut img, c, |v: usize| {
                let h = c.heat[v];
                Some((jet(h), HEAT_ALPHA))
            });
        } else if !c.classes.is_empty() {
            blend_map(&mut img, c, |v: usize| {
                let k = c.classes[v];
                (k != NO_CLASS).then(|| (color(usize::from(k)), MASK_ALPHA))
            });
        }
    }
    let scale = text_scale(img.width());
    for m in &d.boxes {
        let [x, y, w, h] = m.rect;
        let c = color(m.color);
        let t = (img.width().min(img.height()) / 300).max(2) as i64;
        rect(
            &mut img,
            x as i64,
            y as i64,
            (x + w) as i64,
            (y + h) as i64,
            t,
            c,
        );
        label(&mut img, x as i64, y as i64, &m.label, scale, c);
    }
    for (q, text) in &d.quads {
        let c = [0, 255, 255];
        for i in 0..4 {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            line(&mut img, a, b, 2, c);
        }
        label(&mut img, q[0][0] as i64, q[0][1] as i64, text, scale, c);
    }
    banner(&mut img, d, scale);
    (plain, img)
}

/// A region of the plain frame around `rect` (x, y, w, h) with a margin, at least 1x1.
pub fn crop(plain: &RgbImage, rect: [f32; 4]) -> RgbImage {
    let [x, y, w, h] = rect;
    let margin = (0.1 * w.max(h)).max(8.0);
    let (fw, fh) = (plain.width() as f32, plain.height() as f32);
    let x0 = (x - margin).clamp(0.0, (fw - 1.0).max(0.0));
    let y0 = (y - margin).clamp(0.0, (fh - 1.0).max(0.0));
    let x1 = (x + w + margin).clamp(x0 + 1.0, fw.max(x0 + 1.0));
    let y1 = (y + h + margin).clamp(y0 + 1.0, fh.max(y0 + 1.0));
    let (x0, y0) = (x0 as u32, y0 as u32);
    let cw = ((x1 as u32).saturating_sub(x0)).clamp(1, plain.width().saturating_sub(x0).max(1));
    let ch = ((y1 as u32).saturating_sub(y0)).clamp(1, plain.height().saturating_sub(y0).max(1));
    image::imageops::crop_imm(plain, x0, y0, cw, ch).to_image()
}

/// The captured frame converted to packed RGB, if its pixels fit their layout.
fn frame_rgb(c: &Capture) -> Option<RgbImage> {
    let layout = c.layout?;
    layout.check(c.pixels.len()).ok()?;
    let (w, h) = (layout.width as usize, layout.height as usize);
    let mut rgb = vec![0u8; w.checked_mul(h)?.checked_mul(3)?];
    for (y, row) in rgb.chunks_exact_mut(w * 3).enumerate() {
        convert_row(&c.pixels, &layout, y, 0, 3, row);
    }
    RgbImage::from_raw(layout.width, layout.height, rgb)
}

/// Blends `at(map index)`'s colour into every frame pixel the map covers.
fn blend_map(img: &mut RgbImage, c: &Capture, at: impl Fn(usize) -> Option<([u8; 3], f32)>) {
    let (mw, mh) = c.map_size;
    let [x0, y0, x1, y1] = c.map_box;
    if mw == 0 || mh == 0 || x1 <= x0 || y1 <= y0 {
        return;
    }
    let (kx, ky) = (mw as f32 / (x1 - x0), mh as f32 / (y1 - y0));
    let (w, h) = (img.width(), img.height());
    let cols = (x0.max(0.0) as u32).min(w)..(x1.ceil().max(0.0) as u32).min(w);
    for y in (y0.max(0.0) as u32).min(h)..(y1.ceil().max(0.0) as u32).min(h) {
        let my = (((y as f32 + 0.5 - y0) * ky) as usize).min(mh - 1);
        for x in cols.clone() {
            let mx = (((x as f32 + 0.5 - x0) * kx) as usize).min(mw - 1);
            if let Some((col, alpha)) = at(my * mw + mx) {
                let p = img.get_pixel_mut(x, y);
                for (ch, v) in p.0.iter_mut().zip(col) {
                    *ch = (f32::from(*ch) * (1.0 - alpha) + f32::from(v) * alpha) as u8;
                }
            }
        }
    }
}

/// The "jet" colormap (OpenCV's COLORMAP_JET, which anomalib's heatmaps use): 0 blue,
/// 0.5 green-yellow, 1 red.
pub fn jet(v: f32) -> [u8; 3] {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let ch = |c: f32| ((1.5 - (4.0 * v - c).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

fn text_scale(width: u32) -> u32 {
    (width / 640).clamp(1, 4)
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, image::Rgb(c));
    }
}

/// A rectangle outline `t` pixels thick, inside (x0, y0)-(x1, y1).
fn rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, t: i64, c: [u8; 3]) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (x0.clamp(-1, w), x1.clamp(-1, w));
    let (y0, y1) = (y0.clamp(-1, h), y1.clamp(-1, h));
    for y in y0..=y1 {
        for x in x0..=x1 {
            if x - x0 < t || x1 - x < t || y - y0 < t || y1 - y < t {
                put(img, x, y, c);
            }
        }
    }
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, image::Rgb(c));
        }
    }
}

/// A line `t` pixels thick (Bresenham, a square pen).
fn line(img: &mut RgbImage, a: [f32; 2], b: [f32; 2], t: i64, c: [u8; 3]) {
    let (mut x, mut y) = (a[0] as i64, a[1] as i64);
    let (x1, y1) = (b[0] as i64, b[1] as i64);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    // Bounded: at most dx + dy + 1 steps.
    for _ in 0..=(dx - dy).min(100_000) {
        fill(img, x - t / 2, y - t / 2, x - t / 2 + t, y - t / 2 + t, c);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Text at (x, y) (top-left), each glyph `scale` x 8 pixels.
fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: u32, c: [u8; 3]) {
    let k = i64::from(scale);
    for (i, ch) in s.chars().enumerate() {
        let code = if ch.is_ascii() {
            ch as usize
        } else {
            '?' as usize
        };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let gx = x + i as i64 * 8 * k;
        if gx >= i64::from(img.width()) {
            break;
        }
        for (row, &bits) in glyph.iter().enumerate() {
            for col in 0..8i64 {
                if (bits >> col) & 1 != 0 {
                    let (px, py) = (gx + col * k, y + row as i64 * k);
                    fill(img, px, py, px + k, py + k, c);
                }
            }
        }
    }
}

/// A label on a filled background just above (x, y), or inside when at the top edge.
fn label(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: u32, c: [u8; 3]) {
    let k = i64::from(scale);
    let (w, h) = (s.chars().count() as i64 * 8 * k + 4, 8 * k + 4);
    let top = if y - h >= 0 { y - h } else { y };
    // Kept inside the frame on the right.
    let x = x.min(i64::from(img.width()) - w).max(0);
    fill(img, x, top, x + w, top + h, c);
    text(img, x + 2, top + 2, s, scale, [0, 0, 0]);
}

/// The verdict and the failed rules over a darkened strip at the top; long lines wrap.
fn banner(img: &mut RgbImage, d: &Drawing, scale: u32) {
    const MAX_LINES: usize = 8;
    let k = i64::from(scale);
    let line_h = 8 * k + 4;
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let fits = usize::try_from(iw / (8 * k))
        .unwrap_or(0)
        .saturating_sub(1)
        .max(1);
    let lines: Vec<String> = d
        .lines
        .iter()
        .flat_map(|l| {
            let chars: Vec<char> = l.chars().collect();
            chars
                .chunks(fits)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .take(MAX_LINES)
        .collect();
    let h = (1 + lines.len() as i64) * line_h + 4;
    for y in 0..h.min(ih) {
        for x in 0..iw {
            let p = img.get_pixel_mut(x as u32, y as u32);
            for ch in p.0.iter_mut() {
                *ch /= 3;
            }
        }
    }
    let title_color = match d.verdict {
        Verdict::Ok => [72, 249, 10],
        _ => [255, 56, 56],
    };
    let title: String = d.title.chars().take(fits).collect();
    text(img, 4, 4, &title, scale, title_color);
    for (i, l) in lines.iter().enumerate() {
        let y = 4 + (i as i64 + 1) * line_h;
        text(img, 4, y, l, scale, [255, 255, 255]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameLayout, PixelFormat};

    #[test]
    fn jet_runs_blue_to_red() {
        assert_eq!(jet(0.0), [0, 0, 127]);
        assert_eq!(jet(1.0), [127, 0, 0]);
        assert_eq!(jet(f32::NAN), jet(1.0));
    }

    #[test]
    fn boxes_and_banner_change_the_frame_and_crops_stay_inside() {
        let layout = FrameLayout::packed(64, 48, PixelFormat::Grey);
        let c = Capture {
            pixels: vec![100; 64 * 48],
            layout: Some(layout),
            ..Capture::default()
        };
        let d = Drawing {
            verdict: Verdict::Ng,
            title: "NG".into(),
            boxes: vec![Mark {
                rect: [30.0, 30.0, 10.0, 10.0],
                label: "x".into(),
                color: 0,
            }],
            ..Drawing::default()
        };
        let (plain, img) = render(Some(&c), &d);
        let plain = plain.unwrap();
        assert_eq!(plain.get_pixel(30, 35).0, [100, 100, 100]);
        assert_eq!(img.get_pixel(30, 35).0, color(0));
        assert_eq!(
            img.get_pixel(50, 5).0,
            [33, 33, 33],
            "banner darkens the top"
        );
        let cut = crop(&plain, [60.0, 40.0, 10.0, 10.0]);
        assert!(cut.width() >= 1 && cut.width() <= 64 - 50);
        // pixels that do not fit their layout: a blank canvas with the banner
        let bad = Capture {
            pixels: vec![0; 10],
            layout: Some(layout),
            ..Capture::default()
        };
        let (plain, img) = render(Some(&bad), &d);
        assert!(plain.is_none());
        assert_eq!(img.dimensions(), BLANK_SIZE);
    }
}
