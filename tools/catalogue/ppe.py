#!/usr/bin/env python3
"""Sample data for catalogue row 32, ppe-compliance: a worker at a zone gate, taught by example.

    .cache/venv/bin/python tools/catalogue/ppe.py --out data/catalogue

A camera at the entrance of a work zone sees one person at a time, head and torso.
Classes (one folder each, for `lineside fit`): `compliant` (helmet and hi-vis vest),
`no_helmet`, `no_vest`. `unknown/` holds frames of none of them (a pallet or a cart in the
gate) to measure rejection of unknowns. `test/` holds frames never used for fitting, with
truth.json (compliant = OK, anything else = NG). Writes data/catalogue/32-ppe-compliance/.

Figures are drawn, not photographed: position, size, lean, skin tone, clothes, helmet and
vest colours and the floor vary per image; every image has its own seed (split, class, index).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image

SIZE = 224
ROW = "32-ppe-compliance"
CLASSES = ["compliant", "no_helmet", "no_vest"]
SPLIT = {"classes": 1, "test": 2, "unknown": 3}
COUNTS = {"classes": 40, "test": 10, "unknown": 8}


def floor(rng):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    g = 0.50 + 0.08 * rng.uniform(-1, 1) + 0.10 * (yy / SIZE) + 0.02 * rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    img = np.repeat(g[..., None], 3, axis=2) * np.array([0.95, 0.96, 1.0], np.float32)
    # Yellow-black zone marking across the floor.
    y = int(rng.uniform(175, 200))
    for x in range(-20, SIZE + 20, 24):
        pts = np.array([[x, y], [x + 12, y], [x + 22, y + 10], [x + 10, y + 10]], np.int32)
        cv2.fillPoly(img, [pts], (0.9, 0.8, 0.1))
    return img


def person(img, rng, helmet, vest):
    cx = rng.uniform(100, 124)
    s = rng.uniform(1.95, 2.15)  # the gate camera frames head and torso: hat and vest fill the view
    lean = rng.uniform(-0.04, 0.04)
    foot = int(215 + 70 * s)  # hips near the bottom edge, legs out of view
    skin = np.array(rng.choice([[0.92, 0.75, 0.62], [0.75, 0.55, 0.40], [0.55, 0.38, 0.26]]), np.float32) * rng.uniform(0.95, 1.05)
    shirt = np.array(rng.choice([[0.20, 0.30, 0.55], [0.35, 0.35, 0.38], [0.15, 0.15, 0.18], [0.55, 0.20, 0.20]]), np.float32)
    trousers = np.array([0.18, 0.20, 0.28], np.float32) * rng.uniform(0.8, 1.2)
    hip_y = foot - 70 * s
    shoulder_y = hip_y - 60 * s
    head_y = shoulder_y - 18 * s

    def x_at(y):
        return cx + lean * (foot - y)

    for dx in (-9, 9):  # legs
        cv2.line(img, (int(x_at(hip_y) + dx * s), int(hip_y)), (int(cx + dx * s * 1.3), foot), trousers.tolist(), int(11 * s))
    torso = np.array([[x_at(shoulder_y) - 20 * s, shoulder_y], [x_at(shoulder_y) + 20 * s, shoulder_y],
                      [x_at(hip_y) + 17 * s, hip_y], [x_at(hip_y) - 17 * s, hip_y]], np.int32)
    cv2.fillPoly(img, [torso], shirt.tolist())
    for side in (-1, 1):  # arms
        cv2.line(img, (int(x_at(shoulder_y) + side * 20 * s), int(shoulder_y + 4)),
                 (int(x_at(hip_y) + side * 26 * s), int(hip_y - 5)), shirt.tolist(), int(9 * s))
    if vest:
        colour = np.array(rng.choice([[1.0, 0.45, 0.05], [0.85, 0.95, 0.10]]), np.float32)
        inner = np.array([[x_at(shoulder_y) - 18 * s, shoulder_y + 2], [x_at(shoulder_y) + 18 * s, shoulder_y + 2],
                          [x_at(hip_y) + 15 * s, hip_y - 6], [x_at(hip_y) - 15 * s, hip_y - 6]], np.int32)
        cv2.fillPoly(img, [inner], colour.tolist())
        for f in (0.45, 0.75):  # reflective bands
            y = shoulder_y + f * (hip_y - shoulder_y)
            cv2.line(img, (int(x_at(y) - 17 * s), int(y)), (int(x_at(y) + 17 * s), int(y)), (0.92, 0.92, 0.92), max(2, int(4 * s)))
    cv2.circle(img, (int(x_at(head_y)), int(head_y)), int(13 * s), skin.tolist(), -1)
    if helmet:
        colour = np.array(rng.choice([[0.95, 0.85, 0.10], [0.95, 0.95, 0.95], [0.9, 0.3, 0.1], [0.2, 0.4, 0.85]]), np.float32)
        cv2.ellipse(img, (int(x_at(head_y)), int(head_y - 3 * s)), (int(16 * s), int(14 * s)), 0, 180, 360, colour.tolist(), -1)
        cv2.line(img, (int(x_at(head_y) - 19 * s), int(head_y - 2 * s)), (int(x_at(head_y) + 19 * s), int(head_y - 2 * s)), colour.tolist(), max(2, int(3 * s)))
    else:
        hair = np.array(rng.choice([[0.1, 0.08, 0.06], [0.35, 0.22, 0.1], [0.6, 0.6, 0.6]]), np.float32)
        cv2.ellipse(img, (int(x_at(head_y)), int(head_y - 4 * s)), (int(13 * s), int(10 * s)), 0, 180, 360, hair.tolist(), -1)
    return img


def not_a_person(img, rng):
    """A pallet with boxes or a hand cart standing in the gate."""
    x = int(rng.uniform(50, 110))
    w = int(rng.uniform(60, 100))
    cv2.rectangle(img, (x, 190), (x + w, 205), (0.55, 0.40, 0.22), -1)
    top = int(rng.uniform(90, 150))
    cv2.rectangle(img, (x + 4, top), (x + w - 4, 190), np.array([0.70, 0.55, 0.35], np.float32).tolist(), -1)
    cv2.line(img, (x + 4, (top + 190) // 2), (x + w - 4, (top + 190) // 2), (0.45, 0.33, 0.2), 2)
    if rng.random() < 0.5:
        cv2.line(img, (x + w, 205), (x + w + 10, top - 20), (0.2, 0.2, 0.25), 4)
    return img


def draw(split, cls, index):
    rng = np.random.default_rng([32, SPLIT[split], CLASSES.index(cls) if cls in CLASSES else 9, index])
    img = floor(rng)
    if cls == "unknown":
        img = not_a_person(img, rng)
    else:
        img = person(img, rng, helmet=cls != "no_helmet", vest=cls != "no_vest")
    img = cv2.GaussianBlur(img, (3, 3), 0.6) + 0.01 * rng.standard_normal(img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def save(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img, "RGB").save(path, compress_level=6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/catalogue")
    ap.add_argument("--rows", nargs="*", default=["32"])
    a = ap.parse_args()
    if a.rows != ["32"]:
        sys.exit("this renderer draws row 32 only")
    root = os.path.join(a.out, ROW)
    for cls in CLASSES:
        for i in range(COUNTS["classes"]):
            save(os.path.join(root, "classes", cls, f"{i:03d}.png"), draw("classes", cls, i))
    for i in range(COUNTS["unknown"]):
        save(os.path.join(root, "unknown", f"{i:03d}.png"), draw("unknown", "unknown", i))
    truth = {}
    for cls in CLASSES:
        for i in range(COUNTS["test"]):
            name = f"{cls}_{i:03d}.png"
            save(os.path.join(root, "test", name), draw("test", cls, i))
            truth[name] = {"verdict": "OK" if cls == "compliant" else "NG", "class": cls}
    with open(os.path.join(root, "test", "truth.json"), "w") as f:
        json.dump({"note": "rendered by tools/catalogue/ppe.py", "images": truth}, f, indent=1)
    print(f"row 32: {root}")


if __name__ == "__main__":
    main()
