//! One source pixel at a time, for the paths that read only the columns their taps need
//! (OpenCV `INTER_LINEAR` and `INTER_NEAREST` shrink a 1280-wide row to a few hundred
//! reads). Same arithmetic as [`convert_row`](super::convert_row), so results are equal.

use super::color::{rgb_to_grey, yuv_to_rgb};
use crate::frame::{FrameLayout, PixelFormat};

/// One source row (and, for NV12, its chroma row) of a frame whose layout was checked.
pub(super) struct SourceRow<'a> {
    format: PixelFormat,
    row: &'a [u8],
    uv: &'a [u8],
}

impl<'a> SourceRow<'a> {
    pub fn new(bytes: &'a [u8], layout: &FrameLayout, y: usize) -> Self {
        let row = &bytes[y * layout.stride..];
        let uv = if layout.format == PixelFormat::Nv12 {
            &bytes[layout.stride * layout.height as usize + (y / 2) * layout.stride..]
        } else {
            &[]
        };
        SourceRow {
            format: layout.format,
            row,
            uv,
        }
    }

    /// Pixel `x` as 8-bit RGB.
    #[inline(always)]
    pub fn rgb(&self, x: usize) -> [u8; 3] {
        let row = self.row;
        match self.format {
            PixelFormat::Rgb24 => [row[x * 3], row[x * 3 + 1], row[x * 3 + 2]],
            PixelFormat::Bgr24 => [row[x * 3 + 2], row[x * 3 + 1], row[x * 3]],
            PixelFormat::Grey => [row[x]; 3],
            PixelFormat::Y16 => [row[x * 2 + 1]; 3],
            PixelFormat::Yuyv => {
                let p = (x & !1) * 2;
                yuv_to_rgb(row[p + (x & 1) * 2], row[p + 1], row[p + 3])
            }
            PixelFormat::Uyvy => {
                let p = (x & !1) * 2;
                yuv_to_rgb(row[p + 1 + (x & 1) * 2], row[p], row[p + 2])
            }
            PixelFormat::Nv12 => {
                let c = x & !1;
                yuv_to_rgb(row[x], self.uv[c], self.uv[c + 1])
            }
        }
    }

    /// Pixel `x` as 8-bit grey (luma for YUV, OpenCV's weights for RGB).
    #[inline(always)]
    pub fn grey(&self, x: usize) -> u8 {
        let row = self.row;
        match self.format {
            PixelFormat::Rgb24 => rgb_to_grey(row[x * 3], row[x * 3 + 1], row[x * 3 + 2]),
            PixelFormat::Bgr24 => rgb_to_grey(row[x * 3 + 2], row[x * 3 + 1], row[x * 3]),
            PixelFormat::Grey | PixelFormat::Nv12 => row[x],
            PixelFormat::Y16 => row[x * 2 + 1],
            PixelFormat::Yuyv => row[x * 2],
            PixelFormat::Uyvy => row[x * 2 + 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::convert_row;
    use super::*;

    /// Every format, both channel counts, odd and even columns: a pixel read alone equals
    /// the same pixel out of a whole converted row.
    #[test]
    fn single_pixels_equal_whole_row_conversion() {
        let (w, h) = (10u32, 4u32);
        for format in PixelFormat::ALL {
            let layout = FrameLayout {
                stride: format.min_stride(w) + 6,
                ..FrameLayout::packed(w, h, format)
            };
            let bytes: Vec<u8> = (0..layout.frame_len())
                .map(|i| (i * 37 + i / 7) as u8)
                .collect();
            for y in 0..h as usize {
                let src = SourceRow::new(&bytes, &layout, y);
                let mut rgb = vec![0u8; w as usize * 3];
                convert_row(&bytes, &layout, y, 0, 3, &mut rgb);
                let mut grey = vec![0u8; w as usize];
                convert_row(&bytes, &layout, y, 0, 1, &mut grey);
                for x in 0..w as usize {
                    assert_eq!(src.rgb(x), rgb[x * 3..x * 3 + 3], "{format} rgb {x},{y}");
                    assert_eq!(src.grey(x), grey[x], "{format} grey {x},{y}");
                }
            }
        }
    }
}
