//! A generated pattern in any pixel format: a camera stand-in for demos and soak tests.

use std::time::Instant;

use super::spec::Pattern;
use super::{Next, Probe, Source, SourceKind, SourceKindEntry};
use crate::frame::{BufferPool, Frame, FrameLayout, FrameMeta, FrameOrigin, PixelFormat};

pub(super) const KIND: SourceKindEntry = SourceKindEntry {
    kind: SourceKind::Synthetic,
    name: "synthetic",
    open: |plan| {
        Ok(Box::new(Synthetic::new(
            plan.width,
            plan.height,
            plan.format,
            plan.pattern,
            plan.frames,
        )))
    },
    probe: |plan| {
        Ok(Probe {
            frame_size: Some((plan.width, plan.height)),
            refused: Vec::new(),
        })
    },
};

pub struct Synthetic {
    layout: FrameLayout,
    pattern: Pattern,
    frames: u64,
    produced: u64,
}

impl Synthetic {
    pub fn new(
        width: u32,
        height: u32,
        format: PixelFormat,
        pattern: Pattern,
        frames: u64,
    ) -> Self {
        Synthetic {
            layout: FrameLayout::packed(width, height, format),
            pattern,
            frames,
            produced: 0,
        }
    }
}

/// The RGB value of the pattern at (x, y) in frame `t`.
fn pattern_rgb(p: Pattern, x: u32, y: u32, t: u64) -> [u8; 3] {
    match p {
        Pattern::Gradient => {
            let s = (x as u64 + t * 4) as u8;
            [s, y as u8, s.wrapping_add(y as u8) / 2]
        }
        Pattern::Checker => {
            let on = ((x + t as u32) / 32 + y / 32).is_multiple_of(2);
            if on {
                [230, 230, 230]
            } else {
                [20, 20, 20]
            }
        }
        Pattern::Noise => {
            // A cheap hash: deterministic per (x, y, t), no RNG state.
            let mut h = (u64::from(x) << 32 | u64::from(y)) ^ t.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            [h as u8, (h >> 8) as u8, (h >> 16) as u8]
        }
    }
}

/// BT.601 limited-range encoding (the inverse of what preprocessing decodes).
fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    [y.round() as u8, u.round() as u8, v.round() as u8]
}

/// Writes an RGB picture given by `rgb_at` into `out` in `layout`'s format.
pub fn encode(layout: &FrameLayout, out: &mut [u8], rgb_at: impl Fn(u32, u32) -> [u8; 3]) {
    let (w, h, s) = (layout.width, layout.height, layout.stride);
    for y in 0..h {
        let row = &mut out[y as usize * s..];
        for x in 0..w {
            let px = rgb_at(x, y);
            let xi = x as usize;
            match layout.format {
                PixelFormat::Rgb24 => row[xi * 3..xi * 3 + 3].copy_from_slice(&px),
                PixelFormat::Bgr24 => {
                    row[xi * 3..xi * 3 + 3].copy_from_slice(&[px[2], px[1], px[0]])
                }
                PixelFormat::Grey => {
                    row[xi] =
                        ((u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114)
                            / 1000) as u8
                }
                PixelFormat::Y16 => {
                    let g =
                        (u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114)
                            / 1000;
                    let v = (g * 257) as u16;
                    row[xi * 2..xi * 2 + 2].copy_from_slice(&v.to_le_bytes());
                }
                PixelFormat::Yuyv | PixelFormat::Uyvy => {
                    let [yy, u, v] = rgb_to_yuv(px);
                    let base = (xi & !1) * 2;
                    let (yo, co) = if layout.format == PixelFormat::Yuyv {
                        (0, 1)
                    } else {
                        (1, 0)
                    };
                    row[base + (xi & 1) * 2 + yo] = yy;
                    if xi & 1 == 0 {
                        row[base + co] = u;
                        row[base + co + 2] = v;
                    }
                }
                PixelFormat::Nv12 => row[xi] = rgb_to_yuv(px)[0],
            }
        }
    }
    if layout.format == PixelFormat::Nv12 {
        // Chroma of the top-left pixel of each 2x2 block.
        let uv_plane = &mut out[s * h as usize..];
        for y in (0..h).step_by(2) {
            let row = &mut uv_plane[(y as usize / 2) * s..];
            for x in (0..w).step_by(2) {
                let [_, u, v] = rgb_to_yuv(rgb_at(x, y));
                row[x as usize] = u;
                row[x as usize + 1] = v;
            }
        }
    }
}

impl Source for Synthetic {
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next {
        if self.produced >= self.frames {
            return Next::End;
        }
        let Some(mut buffer) = pool.take() else {
            return Next::End;
        };
        let t = self.produced;
        self.produced += 1;
        let p = self.pattern;
        encode(
            &self.layout,
            buffer.fill(self.layout.frame_len()),
            |x, y| pattern_rgb(p, x, y, t),
        );
        Next::Frame(Frame {
            meta: FrameMeta {
                seq,
                captured: Instant::now(),
                origin: FrameOrigin::Synthetic,
            },
            layout: self.layout,
            buffer: buffer.into(),
        })
    }

    fn item_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn max_frame_bytes(&self) -> usize {
        self.layout.frame_len()
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.frames)
    }

    fn describe(&self) -> String {
        format!(
            "synthetic:{}x{} {}",
            self.layout.width, self.layout.height, self.layout.format
        )
    }
}
