//! Cutting a text line out of the frame: rapidocr's `get_rotate_crop_image`.

use crate::geometry::{self, ImageRef, Quad};

/// A text line cut out of the frame, upright.
pub(super) struct Crop {
    pub w: usize,
    pub h: usize,
    /// Packed RGB.
    pub pixels: Vec<u8>,
}

impl Crop {
    pub fn ratio(&self) -> f32 {
        self.w as f32 / self.h as f32
    }
}

/// A perspective warp of the quad onto an upright rectangle (OpenCV INTER_CUBIC,
/// BORDER_REPLICATE), turned 90° counter-clockwise when it is at least 1.5 times taller
/// than wide. `rgb` is the packed `fw`x`fh` frame (at least 1x1).
pub(super) fn crop(rgb: &[u8], fw: usize, fh: usize, q: &Quad) -> Crop {
    let w = (geometry::dist(q[0], q[1]).max(geometry::dist(q[2], q[3])) as usize).max(1);
    let h = (geometry::dist(q[0], q[3]).max(geometry::dist(q[1], q[2])) as usize).max(1);
    let dst = [
        [0.0, 0.0],
        [w as f64, 0.0],
        [w as f64, h as f64],
        [0.0, h as f64],
    ];
    let src = q.map(|p| [f64::from(p[0]), f64::from(p[1])]);
    // The map from crop pixels to frame pixels; a degenerate quad samples as is.
    let m = geometry::perspective(&dst, &src).unwrap_or(geometry::IDENTITY);
    let frame = ImageRef {
        pixels: rgb,
        width: fw,
        height: fh,
        channels: 3,
    };
    let pixels = geometry::warp_perspective(frame, &m, w, h);
    if h as f32 / w as f32 >= 1.5 {
        // np.rot90: out[i][j] = in[j][w - 1 - i], shape (w, h).
        let mut rot = vec![0u8; w * h * 3];
        for i in 0..w {
            for j in 0..h {
                let s = (j * w + (w - 1 - i)) * 3;
                let d = (i * h + j) * 3;
                rot[d..d + 3].copy_from_slice(&pixels[s..s + 3]);
            }
        }
        return Crop {
            w: h,
            h: w,
            pixels: rot,
        };
    }
    Crop { w, h, pixels }
}
