#!/usr/bin/env python3
"""Reference instance masks for the Rust `segment` head, computed with Ultralytics' own code.

For each image, the path `SegmentationPredictor` takes for a fixed-size ONNX seg export with
predict defaults and `retina_masks=False`:
  ultralytics LetterBox((S, S), auto=False, stride=32): scale to fit, centred, pad 114, cv2.INTER_LINEAR
  → BGR→RGB, HWC→CHW, float32 /255 → onnxruntime on the ONNX file → output0 [1, 4+nc+32, N], output1 [1, 32, S/4, S/4]
  → ultralytics.utils.nms.non_max_suppression(output0, conf 0.25, IoU 0.7, max_det 300, nc=nc)
    rows: x1 y1 x2 y2 (input pixels) | conf | class | 32 mask coefficients
  → ultralytics.utils.ops.process_mask(protos, coeffs, boxes in input pixels, (S, S), upsample=True)
    (uint8 masks at input resolution), detections with an empty mask dropped
  → ultralytics.utils.ops.scale_boxes((S, S), boxes, frame shape) for frame-pixel boxes.
The script asserts that `YOLO(model).predict(source=image, imgsz=S)` gives the same boxes, classes,
scores and masks as this hand-assembled path.

ultralytics needs torch, which the test environment (.cache/venv) does not have, so this runs in
the throwaway torch environment and its output is committed as a JSON fixture:

  /work/.venvs/torch/bin/python tools/reference/yolo_seg_ref.py \
      models/yolo-kit-seg/yolo_kit_seg.onnx tests/fixtures/yolo-seg/reference.json tests/fixtures/yolo-seg/kit_*.png

Masks are stored at INPUT resolution (S x S, letterboxed space) as run-length encoding over the
row-major flat index y*S + x of the pixels that are 1: `mask_rle = [start0, len0, start1, len1, ...]`,
plus `mask_pixels` (their count). The fixture records the model's sha256.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import ultralytics  # noqa: E402
from ultralytics import YOLO  # noqa: E402
from ultralytics.data.augment import LetterBox  # noqa: E402
from ultralytics.utils import ops  # noqa: E402
from ultralytics.utils.nms import non_max_suppression  # noqa: E402

CONF, IOU, MAX_DET = 0.25, 0.7, 300


def rle(mask: np.ndarray) -> list[int]:
    flat = np.concatenate([[0], mask.reshape(-1).astype(np.int8), [0]])
    d = np.diff(flat)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    out = []
    for s, e in zip(starts, ends):
        out += [int(s), int(e - s)]
    return out


def _fma(a, b, c):
    """float32 fused multiply-add (exact product and sum in float64, one rounding)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def _bilinear_idx(n_in: int, n_out: int):
    """torch bilinear, align_corners=False, output size given: src = max((d + 0.5) * in/out - 0.5, 0)."""
    scale = np.float32(n_in / n_out)
    src = np.maximum(scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    l1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, i1, (np.float32(1) - l1).astype(np.float32), l1


def plain_mask(proto: np.ndarray, coeff: np.ndarray, box, h: int, w: int) -> np.ndarray:
    """The mask path without torch, as a port would write it (what the Rust head reproduces):
    sequential float32 FMA dot product over the 32 prototypes, separable bilinear with FMA in the
    order torch's CPU kernel uses, threshold the logits at 0, then crop to the box in input pixels."""
    c, mh, mw = proto.shape
    acc = np.zeros((mh, mw), np.float32)
    for k in range(c):
        acc = _fma(np.full_like(acc, coeff[k]), proto[k], acc)
    y0, y1, wy0, wy1 = _bilinear_idx(mh, h)
    x0, x1, wx0, wx1 = _bilinear_idx(mw, w)
    rows = _fma(acc[:, x0], wx0[None, :], (acc[:, x1] * wx1[None, :]).astype(np.float32))  # (mh, w)
    up = _fma(rows[y0, :], wy0[:, None], (rows[y1, :] * wy1[:, None]).astype(np.float32))  # (h, w)
    m = (up > 0).astype(np.uint8)
    cols = np.arange(w, dtype=np.float32)
    rws = np.arange(h, dtype=np.float32)
    x1b, y1b, x2b, y2b = (np.float32(v) for v in box)
    m *= ((cols >= x1b) & (cols < x2b))[None, :].astype(np.uint8)
    m *= ((rws >= y1b) & (rws < y2b))[:, None].astype(np.uint8)
    return m


def main() -> int:
    model_path, out_path, *images = sys.argv[1:]
    torch.set_num_threads(2)
    meta = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    names = ast.literal_eval(meta["names"])
    nc = len(names)
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, _, h, w = inp.shape
    out_names = [o.name for o in sess.get_outputs()]
    assert out_names == ["output0", "output1"], out_names
    yolo = YOLO(model_path, task="segment")
    cases = []
    for path in sorted(set(images)):
        im0 = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, as ultralytics' loaders read it
        im = LetterBox((h, w), auto=False, stride=32, padding_value=114, interpolation=cv2.INTER_LINEAR)(image=im0)
        x = np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        out0, out1 = sess.run(None, {inp.name: x})
        det = non_max_suppression(torch.from_numpy(out0), conf_thres=CONF, iou_thres=IOU, classes=None,
                                  agnostic=False, max_det=MAX_DET, nc=nc)[0]
        proto = torch.from_numpy(out1)[0]
        if det.shape[0]:
            masks = ops.process_mask(proto, det[:, 6:], det[:, :4], (h, w), upsample=True)  # uint8 [n, h, w]
            keep = masks.amax((-2, -1)) > 0  # SegmentationPredictor.construct_result drops empty masks
            det, masks = det[keep], masks[keep]
        else:
            masks = torch.zeros((0, h, w), dtype=torch.uint8)
        boxes_in = det[:, :4].clone()
        boxes_fr = ops.scale_boxes((h, w), det[:, :4].clone(), im0.shape)

        # ultralytics' own predictor on the same file must agree exactly
        r = yolo.predict(source=path, imgsz=w, conf=CONF, iou=IOU, max_det=MAX_DET, retina_masks=False,
                         verbose=False)[0]
        assert len(r.boxes) == len(det), (path, len(r.boxes), len(det))
        if len(det):
            assert torch.equal(r.boxes.cls.cpu(), det[:, 5]), path
            assert torch.allclose(r.boxes.conf.cpu(), det[:, 4], rtol=0, atol=1e-6), path
            assert torch.allclose(r.boxes.xyxy.cpu(), boxes_fr, rtol=0, atol=1e-4), path
            assert tuple(r.masks.data.shape) == (len(det), h, w), r.masks.data.shape
            assert torch.equal(r.masks.data.cpu().to(torch.uint8), masks), path

        dets = []
        for k in range(len(det)):
            m = masks[k].numpy()
            alt = plain_mask(out1[0], det[k, 6:].numpy(), det[k, :4].tolist(), h, w)
            mismatch = int((alt != m).sum())
            dets.append({
                "class": int(det[k, 5]), "name": names[int(det[k, 5])], "score": float(det[k, 4]),
                "xyxy_input": [float(v) for v in boxes_in[k]], "xyxy_frame": [float(v) for v in boxes_fr[k]],
                "mask_pixels": int(m.sum()), "mask_rle": rle(m),
                # pixels where plain_mask() (sequential FMA dot, no MKL) disagrees: near-zero logits
                "plain_path_mismatch_pixels": mismatch,
            })
        cases.append({"image": os.path.relpath(path, Path(out_path).parent), "width": int(im0.shape[1]),
                      "height": int(im0.shape[0]), "detections": dets})
        print(path, len(dets), "detections",
              [(d["name"], round(d["score"], 3), d["mask_pixels"], d["plain_path_mismatch_pixels"]) for d in dets])
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    doc = {"model_sha256": digest, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
           "onnxruntime": ort.__version__, "input": [1, 3, h, w], "names": names, "conf": CONF, "iou": IOU,
           "max_det": MAX_DET, "retina_masks": False,
           "mask_encoding": "row-major RLE [start, length, ...] over y*width+x at input resolution",
           "cases": cases}
    Path(out_path).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
