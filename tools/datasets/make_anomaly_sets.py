#!/usr/bin/env python3
"""Sample anomaly-detection data sets in the MVTec AD folder layout, reproducibly.

    python tools/datasets/make_anomaly_sets.py [--out data/anomaly] [--sets brick,fabric] [--train 100]

For each set it writes

    <out>/<set>/train/good/NNN.png              good parts for `lineside fit`
    <out>/<set>/test/good/NNN.png               good parts never used for fitting
    <out>/<set>/test/<defect>/NNN.png           parts with one synthetic defect
    <out>/<set>/ground_truth/<defect>/NNN_mask.png   exact masks (0 / 255)
    <out>/<set>/validation/good/NNN.png, validation/<defect>/NNN.png,
        validation/ground_truth/<defect>/NNN_mask.png
                                                threshold calibration for `lineside fit`
                                                ([fit] validation): drawn like the test
                                                images (same region of the photo) but
                                                with their own seeds, never test images
    <out>/<set>/dataset.json                    what was generated, with seeds and versions

All images are 256x256 RGB PNG. Every image has its own seed (set, split, index), so one
image can be regenerated alone and runs are byte-identical on the same library versions
(numpy, OpenCV and Pillow pinned in tools/requirements-reference.txt).

Textures:
- brick, gravel, grass: real photographs from scikit-image's sample data (CC0, see
  textures/LICENSE.md), copied into tools/datasets/textures/. Training crops come from the
  top half of the photo, test crops from the bottom half, so no test pixel was ever seen
  in training; each crop is slightly rotated (±8°) and scaled (a ~200 px window to 256).
- fabric (woven), metal (brushed), pcb (traces and pads), paper, leather: procedural, a
  fresh random sample per image (fabric and metal render at any size: make_frame_sets.py
  draws 2592x1944 frames of them with the same weave and grain).

Defects (each with an exact mask: the pixels the defect changed): scratch, stain, hole,
crack, missing_print (a patch of the pattern is missing: flat fill / removed copper).
"""

import argparse
import hashlib
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image

SIZE = 256
HERE = os.path.dirname(os.path.abspath(__file__))

SETS = {
    # name: (texture kind, defect types)
    "brick": ("photo", ["scratch", "stain", "hole", "crack"]),
    "gravel": ("photo", ["scratch", "stain", "hole"]),
    "grass": ("photo", ["stain", "hole", "missing_print"]),
    "fabric": ("fabric", ["scratch", "stain", "hole", "missing_print"]),
    "metal": ("metal", ["scratch", "stain", "hole", "crack"]),
    "pcb": ("pcb", ["missing_print", "scratch", "stain", "hole"]),
    "paper": ("paper", ["stain", "hole", "crack", "scratch"]),
    "leather": ("leather", ["scratch", "stain", "hole", "crack"]),
}
PHOTO_TINT = {"brick": (1.0, 0.72, 0.6), "gravel": (0.95, 0.95, 0.9), "grass": (0.7, 1.0, 0.55)}
SPLIT_CODE = {"train": 1, "test_good": 2, "test_defect": 3, "val_good": 4, "val_defect": 5}


def rng_for(set_name, split, index, extra=0):
    set_id = sorted(SETS).index(set_name)
    return np.random.default_rng([set_id, SPLIT_CODE[split], index, extra])


def blur(a, sigma):
    return cv2.GaussianBlur(a, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def noise(rng, sigma, shape=(SIZE, SIZE)):
    n = blur(rng.standard_normal(shape).astype(np.float32), sigma)
    return n / (n.std() + 1e-6)


def to_rgb(gray01, tint):
    g = np.clip(gray01, 0, 1)[..., None] * np.array(tint, np.float32)[None, None, :]
    return g


# ---------------------------------------------------------------- textures (float RGB 0..1)

_PHOTOS = {}


def photo(name, rng, split):
    if name not in _PHOTOS:
        im = np.asarray(Image.open(os.path.join(HERE, "textures", f"{name}.png")).convert("L"))
        _PHOTOS[name] = im.astype(np.float32) / 255.0
    src = _PHOTOS[name]
    # Train crops from the top half, test crops from the bottom half: disjoint pixels.
    # Each crop is a ~200 px window, rotated a little and scaled to 256 px, as a part on a
    # line never sits exactly the same way twice; without this, hold-out crops would be
    # near-copies of training crops and the calibrated threshold would be far too tight.
    y0 = 0 if split == "train" else 256
    side = 192 * rng.uniform(0.9, 1.05)
    ang = rng.uniform(-8, 8)
    reach = side * (abs(np.cos(np.deg2rad(ang))) + abs(np.sin(np.deg2rad(ang)))) / 2
    cx = rng.uniform(reach, src.shape[1] - reach)
    cy = y0 + rng.uniform(reach, 256 - reach)
    m = cv2.getRotationMatrix2D((cx, cy), ang, SIZE / side)
    m[0, 2] += SIZE / 2 - cx
    m[1, 2] += SIZE / 2 - cy
    crop = cv2.warpAffine(src, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain = 1.0 + 0.04 * rng.standard_normal()
    return to_rgb(crop * gain, PHOTO_TINT[name])


def fabric(rng, shape=(SIZE, SIZE)):
    p = 8.0  # thread period in pixels
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    ang = np.deg2rad(rng.normal(0, 1.0))
    u = xx * np.cos(ang) + yy * np.sin(ang) + rng.uniform(0, p)
    v = -xx * np.sin(ang) + yy * np.cos(ang) + rng.uniform(0, p)
    warp = 0.5 + 0.5 * np.cos(2 * np.pi * u / p)
    weft = 0.5 + 0.5 * np.cos(2 * np.pi * v / p)
    over = (np.floor(u / p) + np.floor(v / p)) % 2
    tex = np.where(over > 0, 0.35 + 0.45 * warp, 0.35 + 0.45 * weft)
    tex = tex + 0.04 * noise(rng, 1.0, shape) + 0.03 * noise(rng, 20.0, shape)
    base = np.array([0.35, 0.45, 0.75], np.float32) * (1 + 0.03 * rng.standard_normal(3))
    return tex[..., None] * base[None, None, :] * 1.5


def metal(rng, shape=(SIZE, SIZE)):
    h, w = shape
    n = rng.standard_normal((h, w * 2)).astype(np.float32)
    n = cv2.blur(n, (61, 1), borderType=cv2.BORDER_REFLECT)[:, w // 2 : w // 2 + w]
    n = n / (n.std() + 1e-6)
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    light = 0.62 + 0.08 * rng.uniform(-1, 1) * yy
    g = light + 0.05 * n + 0.02 * noise(rng, 30.0, shape)
    return to_rgb(g, (0.95, 0.97, 1.0))


def pcb(rng):
    sub = np.array([0.10, 0.38, 0.16], np.float32)
    cu = np.array([0.85, 0.62, 0.25], np.float32)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(int(rng.integers(7, 11))):
        w = int(rng.choice([4, 6, 8]))
        if rng.random() < 0.5:
            y = int(rng.integers(10, SIZE - 10))
            cv2.line(mask, (0, y), (SIZE, y), 1, w)
        else:
            x = int(rng.integers(10, SIZE - 10))
            cv2.line(mask, (x, 0), (x, SIZE), 1, w)
    for _ in range(int(rng.integers(6, 12))):
        c = (int(rng.integers(12, SIZE - 12)), int(rng.integers(12, SIZE - 12)))
        cv2.circle(mask, c, int(rng.integers(5, 9)), 1, -1)
    m = blur(mask.astype(np.float32), 0.7)[..., None]
    img = sub[None, None, :] * (1 - m) + cu[None, None, :] * m
    img = img + 0.025 * noise(rng, 1.0)[..., None] + 0.02 * noise(rng, 25.0)[..., None]
    return img


def paper(rng):
    fibres = cv2.blur(rng.standard_normal((SIZE, SIZE)).astype(np.float32), (9, 1))
    fibres += cv2.blur(rng.standard_normal((SIZE, SIZE)).astype(np.float32), (1, 9))
    g = 0.86 + 0.025 * fibres / (fibres.std() + 1e-6) + 0.02 * noise(rng, 12.0)
    return to_rgb(g, (1.0, 0.98, 0.93))


def leather(rng):
    cells = noise(rng, 3.0)
    ridges = 1.0 - np.exp(-(cells**2) / 0.08)  # dark creases along the zero crossings
    g = 0.30 + 0.18 * ridges + 0.04 * noise(rng, 1.0) + 0.03 * noise(rng, 30.0)
    return to_rgb(g, (1.0, 0.66, 0.42))


def texture(set_name, rng, split):
    kind = SETS[set_name][0]
    if kind == "photo":
        return photo(set_name, rng, split)
    return {"fabric": fabric, "metal": metal, "pcb": pcb, "paper": paper, "leather": leather}[kind](rng)


# ---------------------------------------------------------------- defects


def rand_point(rng, margin=40):
    return np.array([rng.integers(margin, SIZE - margin), rng.integers(margin, SIZE - margin)], np.int32)


def scratch(img, rng):
    m = np.zeros((SIZE, SIZE), np.uint8)
    p = rand_point(rng)
    pts = [p]
    ang = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 4))):
        ang += rng.normal(0, 0.35)
        step = rng.uniform(20, 45)
        p = np.clip(p + step * np.array([np.cos(ang), np.sin(ang)]), 4, SIZE - 5).astype(np.int32)
        pts.append(p)
    cv2.polylines(m, [np.array(pts)], False, 1, int(rng.integers(3, 5)))
    bright = rng.random() < 0.5
    colour = np.full(3, 0.97 if bright else 0.05, np.float32)
    return paint(img, m.astype(np.float32), colour, 0.85), m > 0


def stain(img, rng):
    c = rand_point(rng)
    r = rng.uniform(14, 28)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    d = np.sqrt(((xx - c[0]) / r) ** 2 + ((yy - c[1]) / (r * rng.uniform(0.6, 1.0))) ** 2)
    d = d + 0.25 * noise(rng, 4.0)
    alpha = np.clip((1.0 - d) * 4.0, 0, 1) * 0.75
    colour = np.array([0.35, 0.22, 0.08], np.float32) * rng.uniform(0.6, 1.1)
    return paint(img, alpha, colour, 1.0), alpha > 0.15


def hole(img, rng):
    c = tuple(int(v) for v in rand_point(rng))
    axes = (int(rng.integers(7, 14)), int(rng.integers(7, 14)))
    rim = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(rim, c, (axes[0] + 3, axes[1] + 3), 0, 0, 360, 1, -1)
    core = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(core, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    out = paint(img, rim.astype(np.float32) * 0.5, np.array([0.85, 0.82, 0.78], np.float32), 1.0)
    out = paint(out, core.astype(np.float32), np.array([0.02, 0.02, 0.02], np.float32), 1.0)
    return out, rim > 0


def crack(img, rng):
    m = np.zeros((SIZE, SIZE), np.uint8)

    def walk(p, ang, n):
        pts = [p.copy()]
        for _ in range(n):
            ang += rng.normal(0, 0.5)
            p = np.clip(p + 5 * np.array([np.cos(ang), np.sin(ang)]), 2, SIZE - 3)
            pts.append(p.copy())
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, 2)
        return pts

    pts = walk(rand_point(rng).astype(np.float64), rng.uniform(0, 2 * np.pi), int(rng.integers(12, 20)))
    for _ in range(int(rng.integers(1, 3))):
        q = pts[int(rng.integers(2, len(pts) - 2))]
        walk(q, rng.uniform(0, 2 * np.pi), int(rng.integers(4, 8)))
    return paint(img, m.astype(np.float32), np.array([0.04, 0.03, 0.03], np.float32), 0.9), m > 0


def missing_print(img, rng):
    x, y = rand_point(rng, 50)
    w, h = int(rng.integers(24, 44)), int(rng.integers(24, 44))
    m = np.zeros((SIZE, SIZE), np.float32)
    m[y : y + h, x : x + w] = 1.0
    region = img[y : y + h, x : x + w]
    fill = np.median(img.reshape(-1, 3), axis=0)
    if region.size:
        # the darkest common colour of the pattern (substrate / background), so the pattern vanishes
        fill = np.percentile(img.reshape(-1, 3), 15, axis=0)
    out = img.copy()
    flat = fill[None, None, :] + 0.01 * noise(rng, 2.0)[y : y + h, x : x + w, None]
    out[y : y + h, x : x + w] = flat
    changed = np.abs(out - img).max(axis=2) > 0.03
    return out, changed & (m > 0)


DEFECTS = {"scratch": scratch, "stain": stain, "hole": hole, "crack": crack, "missing_print": missing_print}


def paint(img, alpha, colour, strength):
    a = np.clip(alpha * strength, 0, 1)[..., None]
    return img * (1 - a) + colour[None, None, :] * a


# ---------------------------------------------------------------- writing


def save_png(path, arr01_or_mask):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    a = arr01_or_mask
    if a.dtype == bool:
        im = Image.fromarray((a * 255).astype(np.uint8), "L")
    else:
        im = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    im.save(path, optimize=False, compress_level=6)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_set(name, out, n_train, n_test_good, n_per_defect, n_val_good=10, n_val_per_defect=3):
    root = os.path.join(out, name)
    digest = hashlib.sha256()
    for i in range(n_train):
        rng = rng_for(name, "train", i)
        digest.update(save_png(os.path.join(root, "train/good", f"{i:03d}.png"), texture(name, rng, "train")).encode())
    for i in range(n_test_good):
        rng = rng_for(name, "test_good", i)
        digest.update(save_png(os.path.join(root, "test/good", f"{i:03d}.png"), texture(name, rng, "test")).encode())
    defects = SETS[name][1]
    for d_index, d in enumerate(defects):
        for i in range(n_per_defect):
            rng = rng_for(name, "test_defect", i, extra=d_index + 1)
            img = texture(name, rng, "test")
            bad, mask = DEFECTS[d](img, rng)
            if not mask.any():
                raise RuntimeError(f"{name}/{d}/{i}: empty mask")
            digest.update(save_png(os.path.join(root, "test", d, f"{i:03d}.png"), bad).encode())
            digest.update(save_png(os.path.join(root, "ground_truth", d, f"{i:03d}_mask.png"), mask).encode())
    # Validation: separate seeds (split codes 4 and 5), test-like crops; the fit's threshold
    # calibration reads them, eval never does.
    for i in range(n_val_good):
        rng = rng_for(name, "val_good", i)
        digest.update(save_png(os.path.join(root, "validation/good", f"{i:03d}.png"), texture(name, rng, "test")).encode())
    for d_index, d in enumerate(defects):
        for i in range(n_val_per_defect):
            rng = rng_for(name, "val_defect", i, extra=d_index + 1)
            img = texture(name, rng, "test")
            bad, mask = DEFECTS[d](img, rng)
            if not mask.any():
                raise RuntimeError(f"{name}/validation/{d}/{i}: empty mask")
            digest.update(save_png(os.path.join(root, "validation", d, f"{i:03d}.png"), bad).encode())
            digest.update(save_png(os.path.join(root, "validation/ground_truth", d, f"{i:03d}_mask.png"), mask).encode())
    meta = {
        "name": name,
        "layout": "MVTec AD",
        "size": [SIZE, SIZE],
        "texture": SETS[name][0],
        "defects": defects,
        "counts": {"train/good": n_train, "test/good": n_test_good, "per_defect": n_per_defect,
                   "validation/good": n_val_good, "validation/per_defect": n_val_per_defect},
        "seeds": "numpy default_rng([sorted-set-index, split(1 train, 2 test good, 3 test defect, 4 validation good, 5 validation defect), image index, defect index+1])",
        "generator": "tools/datasets/make_anomaly_sets.py",
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": Image.__version__},
        "sha256_of_file_hashes": digest.hexdigest(),
    }
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/anomaly")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--test-good", type=int, default=20)
    ap.add_argument("--per-defect", type=int, default=6)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    for name in a.sets.split(","):
        if name not in SETS:
            sys.exit(f"unknown set {name}; known: {', '.join(SETS)}")
        meta = make_set(name, a.out, a.train, a.test_good, a.per_defect)
        print(f"{name}: {meta['counts']} defects {meta['defects']} -> {os.path.join(a.out, name)} ({meta['sha256_of_file_hashes'][:12]})")


if __name__ == "__main__":
    main()
