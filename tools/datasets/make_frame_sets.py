#!/usr/bin/env python3
"""Frame-size (5 MP) anomaly data sets in the MVTec AD layout, reproducibly: the line
camera's view of the same materials as make_anomaly_sets.py, for tiled inspection.

    python tools/datasets/make_frame_sets.py [--out data/frames] [--sets fabric,metal]
        [--train 20] [--test-good 50] [--per-defect 4] [--size 2592x1944]

For each set it writes

    <out>/<set>/train/good/NNN.jpg                  good frames for `lineside fit`
    <out>/<set>/test/good/NNN.jpg                   good frames never used for fitting
    <out>/<set>/test/<defect>/NNN.jpg               frames with one planted defect
    <out>/<set>/ground_truth/<defect>/NNN_mask.png  the pixels the defect changed (0 / 255)
    <out>/<set>/dataset.json                        counts, seeds, defect areas, versions

Frames are rendered continuously at the full size by the same procedural textures as the
256x256 crops (fabric: 8 px thread period; metal: brushed grain, light falling off across
the frame), so a 256 px tile of a frame looks like a crop. JPEG, quality 95, no chroma
subsampling: what a line camera delivers, and 100x smaller than PNG for these noisy
textures.

Defects have a known size, the folder says which (`spot_1mm2`: a 1 mm² spot at the
scenarios' 0.1 mm per pixel = 100 pixels): dark or bright elliptic spots of 1, 3 and 10 mm²
and straight-ish scratches 3 px wide of 2 and 6 mm², at a random place and angle.
"""

import argparse
import hashlib
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_anomaly_sets as crops  # noqa: E402  (the textures, one definition)

MM_PER_PX = 0.1
SETS = {"fabric": crops.fabric, "metal": crops.metal}
# folder name: (shape, area in mm²)
DEFECTS = {
    "spot_1mm2": ("spot", 1.0),
    "spot_3mm2": ("spot", 3.0),
    "spot_10mm2": ("spot", 10.0),
    "scratch_2mm2": ("scratch", 2.0),
    "scratch_6mm2": ("scratch", 6.0),
}
SPLIT_CODE = {"train": 1, "test_good": 2, "test_defect": 3}


def rng_for(set_name, split, index, extra=0):
    # 100 + index: never the seeds of the crop sets.
    set_id = 100 + sorted(SETS).index(set_name)
    return np.random.default_rng([set_id, SPLIT_CODE[split], index, extra])


def spot(img, rng, area_px):
    h, w = img.shape[:2]
    ratio = rng.uniform(0.6, 1.0)
    a = np.sqrt(area_px / (np.pi * ratio))
    c = (int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40)))
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, c, (max(1, round(a)), max(1, round(a * ratio))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    colour = np.full(3, 0.05 if rng.random() < 0.5 else 0.97, np.float32)
    return crops.paint(img, m.astype(np.float32), colour, 0.85), m > 0


def scratch(img, rng, area_px, width=3):
    h, w = img.shape[:2]
    length = area_px / width
    p = np.array([rng.integers(60, w - 60), rng.integers(60, h - 60)], np.float64)
    ang = rng.uniform(0, 2 * np.pi)
    pts, left = [p.copy()], length
    while left > 0:
        ang += rng.normal(0, 0.3)
        step = min(left, rng.uniform(15, 30))
        p = np.clip(p + step * np.array([np.cos(ang), np.sin(ang)]), 4, [w - 5, h - 5])
        pts.append(p.copy())
        left -= step
    m = np.zeros((h, w), np.uint8)
    cv2.polylines(m, [np.array(pts, np.int32)], False, 1, width)
    colour = np.full(3, 0.97 if rng.random() < 0.5 else 0.05, np.float32)
    return crops.paint(img, m.astype(np.float32), colour, 0.85), m > 0


def save_jpeg(path, arr01):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray((np.clip(arr01, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    im.save(path, quality=95, subsampling=0)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_set(name, out, shape, n_train, n_test_good, n_per_defect):
    root = os.path.join(out, name)
    texture = SETS[name]
    digest = hashlib.sha256()
    for i in range(n_train):
        img = texture(rng_for(name, "train", i), shape)
        digest.update(save_jpeg(os.path.join(root, "train/good", f"{i:03d}.jpg"), img).encode())
    for i in range(n_test_good):
        img = texture(rng_for(name, "test_good", i), shape)
        digest.update(save_jpeg(os.path.join(root, "test/good", f"{i:03d}.jpg"), img).encode())
    areas = {}
    for d_index, (d, (kind, mm2)) in enumerate(DEFECTS.items()):
        areas[d] = []
        for i in range(n_per_defect):
            rng = rng_for(name, "test_defect", i, extra=d_index + 1)
            img = texture(rng, shape)
            area_px = mm2 / (MM_PER_PX * MM_PER_PX)
            bad, mask = (spot if kind == "spot" else scratch)(img, rng, area_px)
            if not mask.any():
                raise RuntimeError(f"{name}/{d}/{i}: empty mask")
            areas[d].append(round(float(mask.sum()) * MM_PER_PX * MM_PER_PX, 2))
            digest.update(save_jpeg(os.path.join(root, "test", d, f"{i:03d}.jpg"), bad).encode())
            digest.update(crops.save_png(os.path.join(root, "ground_truth", d, f"{i:03d}_mask.png"), mask).encode())
    meta = {
        "name": name,
        "layout": "MVTec AD",
        "size": [shape[1], shape[0]],
        "texture": name,
        "mm_per_px": MM_PER_PX,
        "defects": list(DEFECTS),
        "defect_area_mm2": areas,
        "counts": {"train/good": n_train, "test/good": n_test_good, "per_defect": n_per_defect},
        "seeds": "numpy default_rng([100 + sorted-set-index, split(1 train, 2 test good, 3 test defect), image index, defect index+1])",
        "generator": "tools/datasets/make_frame_sets.py",
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": Image.__version__},
        "sha256_of_file_hashes": digest.hexdigest(),
    }
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/frames")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--train", type=int, default=20)
    ap.add_argument("--test-good", type=int, default=50)
    ap.add_argument("--per-defect", type=int, default=4)
    ap.add_argument("--size", default="2592x1944", help="WIDTHxHEIGHT")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    cv2.setNumThreads(1)
    for name in a.sets.split(","):
        if name not in SETS:
            sys.exit(f"unknown set {name}; known: {', '.join(SETS)}")
        meta = make_set(name, a.out, (h, w), a.train, a.test_good, a.per_defect)
        print(f"{name}: {meta['counts']} {w}x{h} defects {meta['defects']} -> {os.path.join(a.out, name)} ({meta['sha256_of_file_hashes'][:12]})")


if __name__ == "__main__":
    main()
