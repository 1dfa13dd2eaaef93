#!/usr/bin/env python3
"""Reference regions of a semantic-segmentation ONNX model (per-pixel class logits), for the
lineside `segment` head's parity test. Runs in the test environment (.cache/venv: onnxruntime,
numpy, opencv; no torch):

  .cache/venv/bin/python tools/reference/seg_ref.py MODEL.onnx OUT.json FRAME.png [FRAME.png ...]

Per frame:
  1. cv2.imread (BGR, 8 bit) -> BGR->RGB -> cv2.resize to the model's W x H with INTER_LINEAR
     (plain stretch, no letterbox) -> float32 / 255 -> NCHW [1, 3, H, W].
  2. onnxruntime (CPUExecutionProvider) -> logits [1, C, H, W] (raw, the model has no softmax).
  3. Softmax over C in float64; class map = argmax over C of the logits (ties: lowest class index,
     numpy's argmax).
  4. For every class c != 0: cv2.connectedComponentsWithStats((class map == c) as uint8,
     connectivity=8). Each component is one region:
       class      c, and `name` from the model's `names` metadata
       box        [x, y, w, h] in model pixels (the component's bounding box, inclusive pixels,
                  so x + w is one past the right-most column)
       box_frame  the same box scaled to the frame: [x*sx, y*sy, w*sx, h*sy], sx = frame W / model W,
                  sy = frame H / model H (plain stretch)
       area       pixel count at model resolution
       score      mean softmax probability of class c over the component's pixels
       first      [x, y] of the component's first pixel in row-major scan order (top-most row, then
                  left-most pixel in that row)
     Order (deterministic, independent of OpenCV's label numbering): by class ascending, then by
     the first pixel's row-major index y * W + x ascending.
  5. `verdict`: "NG" if any region has area >= --min-area (default 5, the rule the glass-seg card
     documents), else "OK". All regions are listed whatever their area.

The output records the model's sha256 so a test can refuse a fixture made for another file.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

DEFAULT_MIN_AREA = 5


def preprocess(path: str, w: int, h: int) -> tuple[np.ndarray, tuple[int, int]]:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"seg_ref.py: cannot read {path}")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    x = np.ascontiguousarray(small.astype(np.float32).transpose(2, 0, 1)[None] / np.float32(255.0))
    return x, (bgr.shape[1], bgr.shape[0])


def softmax(logits: np.ndarray) -> np.ndarray:
    """logits [C, H, W] -> probabilities [C, H, W], float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def regions(logits: np.ndarray, names: list[str] | None = None, frame_wh: tuple[int, int] | None = None):
    """logits [C, H, W] -> list of region dicts in the documented order."""
    c_n, h, w = logits.shape
    prob = softmax(logits)
    cls = np.argmax(logits, axis=0)
    sx = frame_wh[0] / w if frame_wh else 1.0
    sy = frame_wh[1] / h if frame_wh else 1.0
    out = []
    for c in range(1, c_n):
        mask = (cls == c).astype(np.uint8)
        if not mask.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        flat = labels.ravel()
        # first occurrence of every label in row-major order
        ids, first = np.unique(flat, return_index=True)
        pc = prob[c].ravel()
        sums = np.bincount(flat, weights=pc, minlength=n)
        found = []
        for k, f in zip(ids.tolist(), first.tolist()):
            if k == 0:
                continue
            x, y, bw, bh, area = (int(v) for v in stats[k])
            found.append((f, {
                "class": c,
                "name": names[c] if names and c < len(names) else str(c),
                "box": [x, y, bw, bh],
                "box_frame": [x * sx, y * sy, bw * sx, bh * sy],
                "area": area,
                "score": float(sums[k] / area),
                "first": [f % w, f // w],
            }))
        found.sort(key=lambda t: t[0])
        out.extend(r for _, r in found)
    return out


def model_names(sess: ort.InferenceSession) -> list[str] | None:
    meta = sess.get_modelmeta().custom_metadata_map
    if "names" not in meta:
        return None
    d = ast.literal_eval(meta["names"])
    return [d[i] for i in sorted(d)] if isinstance(d, dict) else list(d)


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("frames", nargs="+")
    ap.add_argument("--min-area", type=int, default=DEFAULT_MIN_AREA,
                    help="verdict NG if any region has at least this many pixels at model resolution")
    a = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, _, h, w = inp.shape
    names = model_names(sess)
    cases = []
    for path in a.frames:
        x, frame_wh = preprocess(path, w, h)
        logits = sess.run(None, {inp.name: x})[0][0]
        regs = regions(logits, names, frame_wh)
        hist = np.bincount(np.argmax(logits, axis=0).ravel(), minlength=logits.shape[0])
        cases.append({
            "image": os.path.relpath(path, Path(a.out).resolve().parent),
            "width": frame_wh[0], "height": frame_wh[1],
            "class_pixels": [int(v) for v in hist],
            "verdict": "NG" if any(r["area"] >= a.min_area for r in regs) else "OK",
            "regions": regs,
        })
    doc = {
        "model_sha256": sha256(a.model),
        "input": [inp.name, [1, 3, h, w]],
        "output": sess.get_outputs()[0].name,
        "names": names,
        "preprocess": "cv2.imread BGR->RGB, cv2.resize INTER_LINEAR stretch to model size, float32/255, NCHW",
        "order": "class ascending, then the component's first pixel in row-major order (y*W+x) ascending",
        "connectivity": 8,
        "min_area": a.min_area,
        "onnxruntime": ort.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
        "cases": cases,
    }
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    for c in cases:
        print(c["image"], c["verdict"], [(r["name"], r["box"], r["area"], round(r["score"], 4)) for r in c["regions"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
