"""Independent reference for `lineside eval`: reads its --json report, gives the same truth
boxes and detections to pycocotools' COCOeval (bbox, all areas, maxDets 100) and computes
OCR character accuracy with a plain edit distance; prints the per-class figures as JSON.

    python tools/reference/coco_ref.py report.json
"""
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def detection(report):
    images, anns, dets = [], [], []
    classes = set()
    for i, r in enumerate(report["results"], start=1):
        images.append({"id": i, "file_name": r["file"]})
        for o in r["objects"]:
            x, y, w, h = o["bbox"]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": o["class"] + 1,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            classes.add(o["class"])
        for d in r["detections"]:
            dets.append({"image_id": i, "category_id": d["class"] + 1,
                         "bbox": d["bbox"], "score": d["score"]})
            classes.add(d["class"])
    gt = COCO()
    gt.dataset = {"info": {}, "images": images, "annotations": anns,
                  "categories": [{"id": c + 1, "name": str(c)} for c in sorted(classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    out = {}
    p = ev.eval["precision"]  # [T, R, K, A, M]
    for k, cat in enumerate(ev.params.catIds):
        pk = p[:, :, k, 0, -1]
        if (pk > -1).sum() == 0:
            continue
        out[cat - 1] = {"ap50": float(np.mean(pk[0][pk[0] > -1])),
                        "ap50_95": float(np.mean(pk[pk > -1]))}
    return out


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1] * (len(b) + 1)
        for j, cb in enumerate(b):
            cur[j + 1] = min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1)
        prev = cur
    return prev[-1]


def main():
    report = json.load(open(sys.argv[1]))
    out = {}
    if report.get("detection"):
        out["detection"] = {str(k): v for k, v in detection(report).items()}
    if report.get("text"):
        truth = json.load(open(report["data"] + "/truth.json"))["images"]
        chars = errors = 0
        for r in report["results"]:
            want = "\n".join("".join(l.split()) for l in truth[r["file"]]["texts"])
            got = "\n".join("".join(l.split()) for l in r["texts"])
            chars += len(want.replace("\n", ""))
            errors += edit_distance(got, want)
        out["text"] = {"chars": chars, "char_errors": errors}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
