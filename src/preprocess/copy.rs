//! The 1:1 path: when the source region is exactly the size of what it fills (a tile as
//! large as the model input), every interpolation reads one pixel with weight one, so
//! the output is the converted pixel through the normalisation table. Converting the
//! row and looking it up is all that is left; the resampling passes are skipped.
//! `equivalence_tests` holds this to the generic passes bit for bit.

use super::{convert_row, ColorOrder, Layout, PreprocessSpec, Rect};
use crate::frame::FrameLayout;

/// What the copy reads and the row it converts into.
pub(super) struct OneToOne<'a> {
    pub spec: &'a PreprocessSpec,
    pub lut: &'a [[f32; 256]],
    /// Source region (frame pixels) and where it lands in the model input, same size.
    pub src: Rect,
    pub dst: Rect,
    pub row: &'a mut [u8],
}

pub(super) fn run(c: OneToOne, bytes: &[u8], layout: &FrameLayout, out: &mut [f32]) {
    let ch = c.spec.color.channels();
    let w = c.dst.width as usize;
    let (w_in, h_in) = (c.spec.width, c.spec.height);
    let swap = c.spec.color == ColorOrder::Bgr;
    let row = &mut c.row[..w * ch];
    for dy in 0..c.dst.height as usize {
        convert_row(
            bytes,
            layout,
            c.src.y as usize + dy,
            c.src.x as usize,
            ch,
            row,
        );
        let ty = c.dst.y as usize + dy;
        for k in 0..ch {
            // Channel `k` of the converted row, with its table, lands in channel `oc`
            // (as the resampling passes place it).
            let oc = if swap { 2 - k } else { k };
            let lut = &c.lut[k];
            let pixels = row.iter().skip(k).step_by(ch);
            match c.spec.layout {
                Layout::Nchw => {
                    let base = (oc * h_in + ty) * w_in + c.dst.x as usize;
                    for (o, &v) in out[base..base + w].iter_mut().zip(pixels) {
                        *o = lut[usize::from(v)];
                    }
                }
                Layout::Nhwc => {
                    let base = (ty * w_in + c.dst.x as usize) * ch + oc;
                    for (o, &v) in out[base..].iter_mut().step_by(ch).zip(pixels) {
                        *o = lut[usize::from(v)];
                    }
                }
            }
        }
    }
}
