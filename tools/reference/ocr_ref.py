"""rapidocr-onnxruntime 1.4.4 (PP-OCRv4 det + rec, no angle classifier) on image files.

usage: ocr_ref.py OUT.json IMAGE...   writes, per image, the det input size rapidocr chose
and the text lines (box as 4 points in image pixels, text, confidence) in reading order.
"""
import json
import sys

import numpy as np
from rapidocr_onnxruntime import RapidOCR
from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess


def det_size(h, w, limit=736):
    # rapidocr's DetPreProcess.resize with limit_type "min": the size the det model sees.
    ratio = limit / min(h, w) if min(h, w) < limit else 1.0
    return int(round(int(w * ratio) / 32) * 32), int(round(int(h * ratio) / 32) * 32)


def main():
    out_path, images = sys.argv[1], sys.argv[2:]
    engine = RapidOCR()
    results = []
    for path in images:
        img = engine.load_img(path)
        h, w = img.shape[:2]
        assert max(h, w) <= 2000 and min(h, w) >= 30 and w / h <= 8 and h > 30, (
            "the reference assumes rapidocr does not pre-resize or pad this image"
        )
        res, _ = engine(path, use_cls=False)
        lines = [
            {"box": np.asarray(b, dtype=float).tolist(), "text": t, "score": float(s)}
            for b, t, s in (res or [])
        ]
        pre = DetPreProcess(736, "min")
        assert pre.resize(img).shape[:2][::-1] == det_size(h, w)
        results.append({"image": path, "width": w, "height": h, "det_size": det_size(h, w), "lines": lines})
    with open(out_path, "w") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
