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
///
/// Ultralytics rounds with Python's `round()`, which rounds halves to even (384x303 at
/// 320: 252.5 -> 252 rows), so this uses `round_ties_even`, never `round`.
pub fn letterbox(r: Rect, mw: u32, mh: u32) -> Rect {
    let gain = (mw as f64 / r.width as f64).min(mh as f64 / r.height as f64);
    let nw = ((r.width as f64 * gain).round_ties_even() as u32).clamp(1, mw);
    let nh = ((r.height as f64 * gain).round_ties_even() as u32).clamp(1, mh);
    let dw = (mw - nw) as f64 / 2.0;
    let dh = (mh - nh) as f64 / 2.0;
    Rect {
        x: (dw - 0.1).round_ties_even().max(0.0) as u32,
        y: (dh - 0.1).round_ties_even().max(0.0) as u32,
        width: nw,
        height: nh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's `round()` as Ultralytics' letterbox uses it, for the comparison below.
    fn ultralytics(w: u32, h: u32, mw: u32, mh: u32) -> (u32, u32, u32, u32) {
        let r = (mw as f64 / w as f64).min(mh as f64 / h as f64);
        let (nw, nh) = (
            (w as f64 * r).round_ties_even() as u32,
            (h as f64 * r).round_ties_even() as u32,
        );
        let (dw, dh) = ((mw - nw) as f64 / 2.0, (mh - nh) as f64 / 2.0);
        let (left, top) = ((dw - 0.1).round_ties_even(), (dh - 0.1).round_ties_even());
        (left as u32, top as u32, nw, nh)
    }

    #[test]
    fn item_9_letterbox_rounds_half_to_even() {
        // Issue 10 item 9: 384 wide, 303 rows at 320: 303 * 320/384 = 252.5 -> 252 (Python).
        let d = letterbox(full(384, 303), 320, 320);
        assert_eq!((d.width, d.height), (320, 252));
        assert_eq!(d.y, 34);
        // And its transpose, and a half that rounds up to even: 5 rows * 0.5 = 2.5 -> 2,
        // 7 * 0.5 = 3.5 -> 4.
        let d = letterbox(full(303, 384), 320, 320);
        assert_eq!((d.width, d.height), (252, 320));
        assert_eq!(letterbox(full(20, 5), 10, 10).height, 2);
        assert_eq!(letterbox(full(20, 7), 10, 10).height, 4);
        // Every frame size up to 700 on each side at two input sizes agrees with Python.
        for (mw, mh) in [(320, 320), (640, 384)] {
            for w in 1..=700 {
                for h in (1..=700).step_by(7) {
                    let want = ultralytics(w, h, mw, mh);
                    if want.2 == 0 || want.3 == 0 {
                        continue; // Ultralytics would resize to nothing; lineside keeps 1 px
                    }
                    let d = letterbox(full(w, h), mw, mh);
                    assert_eq!((d.x, d.y, d.width, d.height), want, "{w}x{h} -> {mw}x{mh}");
                }
            }
        }
    }
}
