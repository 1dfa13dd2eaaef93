//! Where the model input comes from in the frame and where it lands in the input:
//! the whole region, a centred crop, or Ultralytics' letterbox.

use super::Rect;

pub(super) fn full(w: u32, h: u32) -> Rect {
    Rect {
        x: 0,
        y: 0,
        width: w,
        height: h,
    }
}

/// The centred sub-rectangle of `r` with the aspect ratio `mw:mh`, scaled by `fraction`.
pub fn center_crop(r: Rect, mw: u32, mh: u32, fraction: f32) -> Rect {
    let aspect = mw as f64 / mh as f64;
    let (rw, rh) = (r.width as f64, r.height as f64);
    let (mut cw, mut ch) = if rw / rh > aspect {
        (rh * aspect, rh)
    } else {
        (rw, rw / aspect)
    };
    cw *= f64::from(fraction);
    ch *= f64::from(fraction);
    let cw = (cw.round() as u32).clamp(1, r.width);
    let ch = (ch.round() as u32).clamp(1, r.height);
    Rect {
        x: r.x + ((r.width - cw) as f64 / 2.0).round() as u32,
        y: r.y + ((r.height - ch) as f64 / 2.0).round() as u32,
        width: cw,
        height: ch,
    }
}

/// Where Ultralytics' letterbox puts a `r`-sized region inside an `mw`x`mh` input.
pub fn letterbox(r: Rect, mw: u32, mh: u32) -> Rect {
    let gain = (mw as f64 / r.width as f64).min(mh as f64 / r.height as f64);
    let nw = ((r.width as f64 * gain).round() as u32).clamp(1, mw);
    let nh = ((r.height as f64 * gain).round() as u32).clamp(1, mh);
    let dw = (mw - nw) as f64 / 2.0;
    let dh = (mh - nh) as f64 / 2.0;
    Rect {
        x: (dw - 0.1).round().max(0.0) as u32,
        y: (dh - 0.1).round().max(0.0) as u32,
        width: nw,
        height: nh,
    }
}
