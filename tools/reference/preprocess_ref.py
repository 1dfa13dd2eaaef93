"""Reference preprocessing with OpenCV (colour conversion) and Pillow/OpenCV (resize).

lineside's tests write raw frames plus a JSON list of cases; this script computes what
OpenCV/Pillow make of each and writes the 8-bit RGB result as a raw file, so the Rust
side can compare its own output within a tolerance.

usage: preprocess_ref.py CASES.json
Each case: {"raw": path, "width", "height", "fourcc", "stride", "roi": [x,y,w,h] | null,
            "fit": "stretch"|"center_crop"|"letterbox", "crop_fraction", "out_w", "out_h",
            "interpolation": "bilinear"|"linear"|"linear_exact"|"nearest", "pad": 114, "out": path}
"""
import json
import sys

import cv2
import numpy as np
from PIL import Image


def to_rgb(raw: bytes, w: int, h: int, fourcc: str, stride: int) -> np.ndarray:
    buf = np.frombuffer(raw, dtype=np.uint8)
    if fourcc in ("YUYV", "UYVY"):
        img = buf[: stride * h].reshape(h, stride)[:, : w * 2].reshape(h, w, 2)
        code = cv2.COLOR_YUV2RGB_YUYV if fourcc == "YUYV" else cv2.COLOR_YUV2RGB_UYVY
        return cv2.cvtColor(np.ascontiguousarray(img), code)
    if fourcc == "NV12":
        y = buf[: stride * h].reshape(h, stride)[:, :w]
        uv = buf[stride * h : stride * h + stride * ((h + 1) // 2)].reshape((h + 1) // 2, stride)[:, :w]
        return cv2.cvtColor(np.ascontiguousarray(np.vstack([y, uv])), cv2.COLOR_YUV2RGB_NV12)
    if fourcc == "GREY":
        g = buf[: stride * h].reshape(h, stride)[:, :w]
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
    if fourcc == "Y16":
        # Little-endian 16-bit luma; the 8-bit value is the high byte (v >> 8).
        g16 = buf[: stride * h].reshape(h, stride)[:, : w * 2].copy().view("<u2")
        g = (g16 >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
    rows = buf[: stride * h].reshape(h, stride)[:, : w * 3].reshape(h, w, 3)
    if fourcc == "RGB24":
        return np.ascontiguousarray(rows)
    if fourcc == "BGR24":
        return np.ascontiguousarray(rows[:, :, ::-1])
    raise ValueError(fourcc)


def center_crop(x, y, w, h, mw, mh, frac):
    aspect = mw / mh
    cw, ch = (h * aspect, h) if w / h > aspect else (w, w / aspect)
    cw, ch = round(cw * frac), round(ch * frac)
    cw, ch = min(max(cw, 1), w), min(max(ch, 1), h)
    # Rust rounds half away from zero; Python's round() is banker's rounding.
    half = lambda v: int(np.floor(v + 0.5))
    return x + half((w - cw) / 2), y + half((h - ch) / 2), cw, ch


def resize(rgb, w, h, interpolation):
    if interpolation == "bilinear":
        return np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
    # lineside's `linear` is OpenCV's INTER_LINEAR (its vectorised fixed-point path) bit
    # for bit; `linear_exact` is INTER_LINEAR_EXACT within one level.
    flag = {
        "linear": cv2.INTER_LINEAR,
        "linear_exact": cv2.INTER_LINEAR_EXACT,
        "nearest": cv2.INTER_NEAREST,
    }[interpolation]
    return cv2.resize(rgb, (w, h), interpolation=flag)


def run_case(c):
    with open(c["raw"], "rb") as f:
        raw = f.read()
    rgb = to_rgb(raw, c["width"], c["height"], c["fourcc"], c["stride"])
    x, y, w, h = c["roi"] or [0, 0, c["width"], c["height"]]
    mw, mh = c["out_w"], c["out_h"]
    if c["fit"] == "center_crop":
        x, y, w, h = center_crop(x, y, w, h, mw, mh, c["crop_fraction"])
    region = np.ascontiguousarray(rgb[y : y + h, x : x + w])
    if c["fit"] == "letterbox":
        # Ultralytics LetterBox: resize keeping ratio, pad with 114 around the centre.
        r = min(mw / w, mh / h)
        nw, nh = int(round(w * r)), int(round(h * r))
        dw, dh = (mw - nw) / 2, (mh - nh) / 2
        top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
        out = np.full((mh, mw, 3), c["pad"], dtype=np.uint8)
        out[top : top + nh, left : left + nw] = resize(region, nw, nh, c["interpolation"])
    else:
        out = resize(region, mw, mh, c["interpolation"])
    with open(c["out"], "wb") as f:
        f.write(np.ascontiguousarray(out, dtype=np.uint8).tobytes())


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for case in json.load(f):
            run_case(case)
