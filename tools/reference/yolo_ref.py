#!/usr/bin/env python3
"""Reference detections for tests/detect_reference.rs, computed with Ultralytics' own code.

For each image and two resamplers: ultralytics' LetterBox (as its predictor builds it for a
fixed-size ONNX export: auto=False, pad 114) with cv2.INTER_LINEAR (what `model.predict` uses,
and what lineside's `interpolation = "linear"` reproduces bit for bit) and with
cv2.INTER_LINEAR_EXACT (lineside's `"linear_exact"`) → BGR→RGB, /255 → onnxruntime on the ONNX file →
ultralytics.utils.nms.non_max_suppression (predict defaults: conf 0.25, IoU 0.7, max_det 300)
→ ultralytics.utils.ops.scale_boxes back to the original image.

ultralytics' NMS needs torch, which the test environment (.cache/venv) does not have, so this
runs in the throwaway torch environment and its output is committed as a JSON fixture:

  /work/.venvs/torch/bin/python tools/reference/yolo_ref.py \
      models/yolo-parts/yolo_parts.onnx tests/fixtures/yolo/reference.json tests/fixtures/yolo/*.png

The fixture records the model's sha256; the Rust test refuses a fixture made for another file.
Also writes tests/fixtures/yolo/coins.png (scikit-image `coins`, public domain) if missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import ultralytics  # noqa: E402
from ultralytics.data.augment import LetterBox  # noqa: E402
from ultralytics.utils import ops  # noqa: E402
from ultralytics.utils.nms import non_max_suppression  # noqa: E402


def main() -> int:
    model_path, out_path, *images = sys.argv[1:]
    coins = Path(out_path).parent / "coins.png"
    if not coins.exists():
        from skimage import data

        g = data.coins()
        cv2.imwrite(str(coins), cv2.cvtColor(g, cv2.COLOR_GRAY2BGR))
        if str(coins) not in images:
            images.append(str(coins))
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, _, h, w = inp.shape
    cases = []
    for path in sorted(set(images)):
        im0 = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, as ultralytics' loaders read it
        case = {"image": os.path.relpath(path, Path(out_path).parent),
                "width": int(im0.shape[1]), "height": int(im0.shape[0])}
        for key, interp in (("linear", cv2.INTER_LINEAR), ("linear_exact", cv2.INTER_LINEAR_EXACT)):
            im = LetterBox((h, w), auto=False, stride=32, interpolation=interp)(image=im0)
            x = np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
            raw = sess.run(None, {inp.name: x})[0]
            det = non_max_suppression(torch.from_numpy(raw), conf_thres=0.25, iou_thres=0.7, max_det=300)[0]
            boxes = ops.scale_boxes((h, w), det[:, :4].clone(), im0.shape)
            case[key] = [
                {"xyxy": [float(v) for v in b], "score": float(d[4]), "class": int(d[5])}
                for b, d in zip(boxes.tolist(), det.tolist())
            ]
        cases.append(case)
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    doc = {"model_sha256": digest, "ultralytics": ultralytics.__version__, "torch": torch.__version__,
           "conf": 0.25, "iou": 0.7, "max_det": 300, "cases": cases}
    Path(out_path).write_text(json.dumps(doc, indent=1) + "\n")
    for c in cases:
        print(c["image"], len(c["linear"]), len(c["linear_exact"]), "boxes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
