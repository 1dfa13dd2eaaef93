#!/usr/bin/env python3
"""Reference detections for the YOLOv5-layout test in tests/detect_reference.rs, computed with
YOLOv5's own code (PyPI `yolov5` 7.0.x, the packaging of ultralytics/yolov5 v7.0).

For each image, what `detect.py` does with a fixed-size ONNX export (DetectMultiBackend, `pt` False
so LoadImages letterboxes with auto=False):
  cv2.imread (BGR) → utils.augmentations.letterbox(im0, 256, stride=32, auto=False) (scaleup=True,
  pad 114, cv2.INTER_LINEAR; the only resampler YOLOv5 has) → HWC→CHW, BGR→RGB → float32 /255
  → onnxruntime → utils.general.non_max_suppression with detect.py's defaults (conf 0.25, IoU 0.45,
  classes None, agnostic False, multi_label False, max_det 1000) → utils.general.scale_boxes back to
  the original image. detect.py then rounds the boxes to whole pixels for drawing and --save-txt;
  the fixture keeps them unrounded (as tests/fixtures/yolo/reference.json does).

YOLOv5's NMS needs torch, which the test environment (.cache/venv) does not have, so this runs in
the throwaway torch environment and its output is committed as a JSON fixture:

  /work/.venvs/torch/bin/python tools/reference/yolov5_ref.py \
      models/yolov5-parts/yolov5n_parts.onnx tests/fixtures/yolov5/reference.json \
      tests/fixtures/yolo/render_0.png tests/fixtures/yolo/render_1.png \
      tests/fixtures/yolo/render_2.png tests/fixtures/yolo/coins.png

Same structure as tests/fixtures/yolo/reference.json (cases[].{image, width, height, linear[]});
image paths are relative to tests/fixtures/yolo/, where the images are. Each detection also
carries `input_xyxy`, the box in model-input pixels before scale_boxes. The fixture records the
model's sha256; the Rust test refuses a fixture made for another file.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.dont_write_bytecode = True  # no __pycache__ beside the imported tool scripts
sys.path.insert(0, str(ROOT / "tools" / "models"))
from train_yolov5_parts import offline_yolov5  # noqa: E402  YOLOv5 imported with every download path closed

offline_yolov5()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import yolov5  # noqa: E402
from yolov5.utils.augmentations import letterbox  # noqa: E402
from yolov5.utils.general import non_max_suppression, scale_boxes  # noqa: E402

CONF, IOU, MAX_DET = 0.25, 0.45, 1000  # detect.py's run() defaults
IMAGES_DIR = ROOT / "tests" / "fixtures" / "yolo"


def main() -> int:
    model_path, out_path, *images = sys.argv[1:]
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, _, h, w = inp.shape
    assert h == w, "detect.py letterboxes to a square --imgsz"
    stride = int(sess.get_modelmeta().custom_metadata_map["stride"])
    cases = []
    for path in sorted(set(images), key=lambda p: Path(p).name):
        im0 = cv2.imread(path)  # BGR, as LoadImages reads it
        case = {"image": os.path.relpath(Path(path).resolve(), IMAGES_DIR.resolve()),
                "width": int(im0.shape[1]), "height": int(im0.shape[0])}
        im = letterbox(im0, h, stride=stride, auto=False)[0]  # LoadImages.__next__
        im = np.ascontiguousarray(im.transpose((2, 0, 1))[::-1])  # HWC to CHW, BGR to RGB
        x = torch.from_numpy(im).float()[None]  # detect.py: im.float(); im /= 255
        x /= 255
        raw = torch.from_numpy(sess.run(None, {inp.name: x.numpy()})[0])  # DetectMultiBackend (onnx)
        det = non_max_suppression(raw, CONF, IOU, None, False, multi_label=False, max_det=MAX_DET)[0]
        boxes = scale_boxes(x.shape[2:], det[:, :4].clone(), im0.shape)
        case["linear"] = [
            {"xyxy": [float(v) for v in b], "score": float(d[4]), "class": int(d[5]),
             "input_xyxy": [float(v) for v in d[:4]]}
            for b, d in zip(boxes.tolist(), det.tolist())
        ]
        # How many boxes each step of YOLOv5's NMS saw, for the report.
        r = raw[0]
        obj_ok = r[:, 4] > CONF
        score = (r[:, 5:] * r[:, 4:5]).max(1).values
        case["counts"] = {"objectness_above_conf": int(obj_ok.sum()),
                          "obj_x_cls_above_conf": int((obj_ok & (score > CONF)).sum()),
                          "kept": len(case["linear"])}
        cases.append(case)
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    doc = {"model_sha256": digest, "yolov5": yolov5.__version__, "torch": torch.__version__,
           "onnxruntime": ort.__version__, "conf": CONF, "iou": IOU, "max_det": MAX_DET,
           "classes": None, "agnostic": False, "multi_label": False,
           "letterbox": {"auto": False, "scaleup": True, "pad": 114, "interpolation": "cv2.INTER_LINEAR"},
           "cases": cases}
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(doc, indent=1) + "\n")
    for c in cases:
        print(c["image"], len(c["linear"]), "boxes", c["counts"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
