#!/usr/bin/env python3
"""Sample data for the catalogue rows inspected by PatchCore (good-only training).

    .cache/venv/bin/python tools/catalogue/anomaly.py --out data/catalogue [--rows 02 13 ...]

For each row it writes data/catalogue/NN-slug/:
    train/good/NNN.png        good parts for `lineside fit` (the scenario's [fit] train)
    validation/<class>/NNN.png labelled, test-like parts with their own seeds: the fit sets
                              the threshold from them (F1-optimal), never a test image
    test/NNN.png + truth.json the frames `lineside run` replays, half good, half with one
                              defect, and the expected verdict (and defect class) of each
    dataset.json              what was drawn, with seeds and library versions

Textures and generic defects (scratch, stain, hole, crack, missing_print) come from
tools/datasets/make_anomaly_sets.py; the rows' own parts (solder joints, leads, seams,
edge banding, wood, fasteners, checks) and defects (bridge, bent lead, skipped stitch, gap,
knot, ...) are drawn here. 256x256 RGB, every image its own seed (row, split, index).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets"))
import make_anomaly_sets as mas  # noqa: E402  (shared textures, defects and PNG writer)

SIZE = mas.SIZE
noise, paint, to_rgb = mas.noise, mas.paint, mas.to_rgb


# ---------------------------------------------------------------- parts (float RGB 0..1)


def solder(rng):
    """A row of reflowed solder joints on pads, green solder mask around them."""
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = np.array([0.12, 0.40, 0.18], np.float32)
    img += 0.02 * noise(rng, 1.0)[..., None] + 0.02 * noise(rng, 25.0)[..., None]
    joints = []
    for row in (70, 186):
        for k in range(5):
            cx = 30 + k * 49 + rng.normal(0, 0.8)
            cy = row + rng.normal(0, 0.8)
            joints.append((cx, cy))
            pad = np.zeros((SIZE, SIZE), np.float32)
            cv2.rectangle(pad, (int(cx - 14), int(cy - 20)), (int(cx + 14), int(cy + 20)), 1.0, -1)
            img = paint(img, mas.blur(pad, 0.7), np.array([0.80, 0.62, 0.30], np.float32), 1.0)
            blob = np.zeros((SIZE, SIZE), np.float32)
            cv2.ellipse(blob, (int(cx), int(cy)), (11, 16), 0, 0, 360, 1.0, -1)
            shade = 0.62 + 0.25 * np.clip(1 - ((np.mgrid[0:SIZE, 0:SIZE][1] - cx + 4) ** 2 + (np.mgrid[0:SIZE, 0:SIZE][0] - cy + 5) ** 2) / 200.0, 0, 1)
            img = img * (1 - mas.blur(blob, 1.0)[..., None]) + (shade[..., None] * np.array([0.92, 0.93, 0.95], np.float32)) * mas.blur(blob, 1.0)[..., None]
    solder.joints = joints
    return img


def bridge(img, rng):
    """Solder bridging two neighbouring joints."""
    joints = solder.joints
    i = int(rng.integers(0, 4)) + 5 * int(rng.integers(0, 2))
    (x0, y0), (x1, y1) = joints[i], joints[i + 1]
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.line(m, (int(x0), int(y0)), (int(x1), int(y1)), 1.0, int(rng.integers(7, 11)))
    return paint(img, m, np.array([0.85, 0.86, 0.88], np.float32), 1.0), m > 0


def insufficient(img, rng):
    """A joint with too little solder: the bare pad shows."""
    cx, cy = solder.joints[int(rng.integers(0, 10))]
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.ellipse(m, (int(cx), int(cy)), (12, 17), 0, 0, 360, 1.0, -1)
    return paint(img, m, np.array([0.80, 0.62, 0.30], np.float32), 1.0), m > 0


def solder_ball(img, rng):
    """A stray ball of solder on the mask between the rows."""
    c = (int(rng.integers(30, 226)), int(rng.integers(110, 146)))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(m, c, int(rng.integers(5, 8)), 1.0, -1)
    return paint(img, mas.blur(m, 0.8), np.array([0.9, 0.9, 0.92], np.float32), 1.0), m > 0


def leads(rng):
    """Three leaded parts: dark bodies with two tinned leads each."""
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = np.array([0.78, 0.80, 0.82], np.float32)
    img += 0.015 * noise(rng, 1.0)[..., None] + 0.02 * noise(rng, 30.0)[..., None]
    leads.lines = []
    for k in range(3):
        x = 50 + k * 78 + rng.normal(0, 1.0)
        y = 60 + rng.normal(0, 1.0)
        body = np.zeros((SIZE, SIZE), np.float32)
        cv2.rectangle(body, (int(x - 22), int(y)), (int(x + 22), int(y + 60)), 1.0, -1)
        img = paint(img, mas.blur(body, 0.8), np.array([0.15, 0.15, 0.17], np.float32), 1.0)
        for dx in (-12, 12):
            lead = np.zeros((SIZE, SIZE), np.float32)
            p0, p1 = (int(x + dx), int(y + 60)), (int(x + dx), 236)
            cv2.line(lead, p0, p1, 1.0, 4)
            leads.lines.append((p0, p1))
            img = paint(img, mas.blur(lead, 0.7), np.array([0.55, 0.56, 0.58], np.float32), 1.0)
    return img


def bent_lead(img, rng):
    """One lead bent sideways halfway down."""
    (x0, y0), (_, y1) = leads.lines[int(rng.integers(0, 6))]
    bg = np.array([0.78, 0.80, 0.82], np.float32)
    straight = np.zeros((SIZE, SIZE), np.float32)
    ym = (y0 + y1) // 2
    cv2.line(straight, (x0, ym), (x0, y1), 1.0, 6)
    out = paint(img, straight, bg, 1.0)
    bent = np.zeros((SIZE, SIZE), np.float32)
    dx = int(rng.choice([-1, 1]) * rng.integers(12, 20))
    cv2.line(bent, (x0, ym), (x0 + dx, y1 - 8), 1.0, 4)
    out = paint(out, mas.blur(bent, 0.7), np.array([0.55, 0.56, 0.58], np.float32), 1.0)
    return out, (straight + bent) > 0


def electrode(rng):
    """Coated electrode foil: even dark coating with fine granules."""
    g = 0.24 + 0.025 * noise(rng, 1.0) + 0.012 * noise(rng, 40.0)
    return to_rgb(g, (0.95, 0.97, 1.0))


def particle(img, rng):
    """A bright metal particle in the coating."""
    c = tuple(int(v) for v in mas.rand_point(rng))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(m, c, int(rng.integers(3, 6)), 1.0, -1)
    return paint(img, mas.blur(m, 0.6), np.array([0.92, 0.92, 0.95], np.float32), 1.0), m > 0


def yarn_check(rng):
    """Yarn-dyed shirting: a woven check of two coloured stripe sets."""
    tex = mas.fabric(rng)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    off = rng.uniform(0, 64, 2)
    sx = ((xx + off[0]) % 64) < 16
    sy = ((yy + off[1]) % 64) < 16
    stripe = np.array([0.85, 0.25, 0.2], np.float32)
    a = (0.45 * sx + 0.45 * sy).astype(np.float32)
    return paint(tex, a, stripe, 1.0)


def seam(rng):
    """Two fabric panels joined by a straight lock-stitch seam across the middle."""
    img = mas.fabric(rng)
    y = SIZE // 2 + rng.normal(0, 1.0)
    fold = np.zeros((SIZE, SIZE), np.float32)
    cv2.line(fold, (0, int(y + 10)), (SIZE, int(y + 10)), 1.0, 2)
    img = paint(img, mas.blur(fold, 1.0), np.array([0.05, 0.05, 0.1], np.float32), 0.6)
    phase = rng.uniform(0, 12)
    seam.stitches = []
    for k in range(-1, SIZE // 12 + 1):
        x0 = k * 12 + phase
        st = np.zeros((SIZE, SIZE), np.float32)
        cv2.line(st, (int(x0), int(y)), (int(x0 + 8), int(y)), 1.0, 2)
        seam.stitches.append((x0, y))
        img = paint(img, mas.blur(st, 0.6), np.array([0.95, 0.92, 0.80], np.float32), 1.0)
    seam.y = y
    return img


def skipped_stitch(img, rng):
    """Two to four stitches missing: the thread floats over the gap, pulled tight."""
    k = int(rng.integers(4, len(seam.stitches) - 6))
    n = int(rng.integers(2, 5))
    x0, y = seam.stitches[k]
    x1 = seam.stitches[k + n][0]
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(m, (int(x0) - 1, int(y) - 3), (int(x1) + 9, int(y) + 3), 1.0, -1)
    fill = np.percentile(img.reshape(-1, 3), 40, axis=0)
    out = paint(img, m, fill.astype(np.float32), 1.0)
    thread = np.zeros((SIZE, SIZE), np.float32)
    cv2.line(thread, (int(x0), int(y) - 5), (int(x1) + 8, int(y) - 5), 1.0, 1)
    out = paint(out, thread, np.array([0.95, 0.92, 0.80], np.float32), 1.0)
    return out, (m + thread) > 0


def edge_banding(rng):
    """Panel seen edge-on: melamine face above, the glued edge band below."""
    img = np.empty((SIZE, SIZE, 3), np.float32)
    face = np.array([0.90, 0.88, 0.84], np.float32)
    band = np.array([0.55, 0.38, 0.22], np.float32)
    y = int(96 + rng.normal(0, 1.0))
    img[:y] = face
    img[y:] = band
    grain = cv2.blur(rng.standard_normal((SIZE, SIZE)).astype(np.float32), (31, 1))
    img[y:] += 0.04 * (grain / (grain.std() + 1e-6))[y:, :, None]
    img += 0.012 * noise(rng, 1.0)[..., None]
    glue = np.zeros((SIZE, SIZE), np.float32)
    cv2.line(glue, (0, y), (SIZE, y), 1.0, 1)
    edge_banding.y = y
    return paint(img, glue, np.array([0.35, 0.28, 0.2], np.float32), 0.5)


def gap(img, rng):
    """The band lifts from the panel: a dark open gap along the joint."""
    y = edge_banding.y
    x = int(rng.integers(20, 170))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(m, (x, y - 1), (x + int(rng.integers(40, 80)), y + int(rng.integers(3, 6))), 1.0, -1)
    return paint(img, m, np.array([0.06, 0.05, 0.04], np.float32), 1.0), m > 0


def glue_line(img, rng):
    """Squeezed-out glue: a light, uneven line below the joint."""
    y = edge_banding.y + int(rng.integers(4, 9))
    x = int(rng.integers(10, 120))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.line(m, (x, y), (x + int(rng.integers(60, 120)), y + int(rng.integers(-2, 3))), 1.0, int(rng.integers(3, 5)))
    return paint(img, m, np.array([0.95, 0.93, 0.82], np.float32), 1.0), m > 0


def wood(rng):
    """Sliced wood veneer: growth rings warped by low-frequency noise."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    warp = 25 * noise(rng, 40.0) + 3 * noise(rng, 6.0)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (yy + warp + 0.05 * xx * rng.normal(0, 1)) / rng.uniform(14, 18))
    g = 0.55 + 0.12 * rings ** 3 + 0.02 * noise(rng, 1.0)
    return to_rgb(g, (1.0, 0.72, 0.45))


def knot(img, rng):
    """A dead knot: a dark ellipse with a darker rim."""
    c = tuple(int(v) for v in mas.rand_point(rng))
    axes = (int(rng.integers(8, 14)), int(rng.integers(6, 10)))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.ellipse(m, c, axes, float(rng.uniform(-20, 20)), 0, 360, 1.0, -1)
    out = paint(img, mas.blur(m, 1.0), np.array([0.30, 0.17, 0.08], np.float32), 1.0)
    return out, m > 0


def fastener(rng):
    """A hex screw head seen from above, at any angle, on a dark tray."""
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = 0.18
    img += 0.015 * noise(rng, 1.0)[..., None]
    c = np.array([128, 128]) + rng.normal(0, 2.0, 2)
    ang = rng.uniform(0, np.pi / 3)
    pts = np.array([c + 90 * np.array([np.cos(ang + k * np.pi / 3), np.sin(ang + k * np.pi / 3)]) for k in range(6)], np.int32)
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.fillPoly(m, [pts], 1.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    shade = 0.62 + 0.12 * ((xx - c[0]) + (yy - c[1])) / 180
    head = shade[..., None] * np.array([0.95, 0.96, 1.0], np.float32) + 0.015 * noise(rng, 2.0)[..., None]
    img = img * (1 - mas.blur(m, 0.8)[..., None]) + head * mas.blur(m, 0.8)[..., None]
    slot = np.zeros((SIZE, SIZE), np.float32)
    d = 40 * np.array([np.cos(ang), np.sin(ang)])
    e = 40 * np.array([-np.sin(ang), np.cos(ang)])
    cv2.line(slot, tuple((c - d).astype(int)), tuple((c + d).astype(int)), 1.0, 7)
    cv2.line(slot, tuple((c - e).astype(int)), tuple((c + e).astype(int)), 1.0, 7)
    return paint(img, mas.blur(slot, 0.8), np.array([0.08, 0.08, 0.09], np.float32), 1.0)


def dent(img, rng):
    """A dent in the head: a dark crescent with a bright rim."""
    c = tuple(int(v) for v in (np.array([128, 128]) + rng.uniform(-50, 50, 2)))
    r = int(rng.integers(7, 11))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(m, c, r, 1.0, -1)
    out = paint(img, m, np.array([0.25, 0.25, 0.27], np.float32), 1.0)
    rim = np.zeros((SIZE, SIZE), np.float32)
    cv2.ellipse(rim, c, (r + 2, r + 2), 0, 200, 340, 1.0, 2)
    return paint(out, rim, np.array([0.95, 0.95, 0.97], np.float32), 1.0), (m + rim) > 0


G = mas.DEFECTS
# row -> (slug, part renderer, {defect class: drawer})
ROWS = {
    "02": ("smt-solder-joint", solder, {"bridge": bridge, "insufficient": insufficient, "solder_ball": solder_ball}),
    "05": ("component-leads", leads, {"bent_lead": bent_lead, "damaged_case": G["scratch"], "cut_insulation": G["crack"]}),
    "09": ("electrode-coating", electrode, {"metal_particle": particle, "uneven_coating": G["stain"], "peel_off": G["missing_print"]}),
    "13": ("woven-fabric", mas.fabric, {"hole": G["hole"], "stain": G["stain"], "broken_yarn": G["scratch"], "missing_weave": G["missing_print"]}),
    "14": ("yarn-dyed-fabric", yarn_check, {"stain": G["stain"], "hole": G["hole"], "pattern_break": G["missing_print"]}),
    "15": ("garment-seam", seam, {"skipped_stitch": skipped_stitch, "hole": G["hole"], "stain": G["stain"]}),
    "20": ("leather-upper", mas.leather, {"cut": G["scratch"], "glue": G["stain"], "poke": G["hole"], "fold": G["crack"]}),
    "21": ("edge-banding", edge_banding, {"gap": gap, "glue_line": glue_line, "chipped_edge": G["hole"]}),
    "22": ("wood-veneer", wood, {"dead_knot": knot, "crack": G["crack"], "resin": G["stain"]}),
    "23": ("aluminum-profile", mas.metal, {"scratch": G["scratch"], "dirt": G["stain"], "bare_spot": G["hole"]}),
    "25": ("fasteners", fastener, {"dent": dent, "scratched_head": G["scratch"], "rust": G["stain"]}),
    "28": ("paper-web", mas.paper, {"hole": G["hole"], "dirt_spot": G["stain"], "fold": G["crack"], "scratch": G["scratch"]}),
}
SPLITS = {"train": 1, "val_good": 2, "val_defect": 3, "test_good": 4, "test_defect": 5}
COUNTS = {"train": 30, "val_good": 8, "val_per_defect": 2, "test_good": 12, "test_per_defect": 4}


def rng_for(row, split, index, extra=0):
    return np.random.default_rng([int(row), SPLITS[split], index, extra])


def draw(row, split, index, defect=None, extra=0):
    _, part, defects = ROWS[row]
    rng = rng_for(row, split, index, extra)
    img = part(rng)
    if defect is None:
        return img
    bad, mask = defects[defect](img, rng)
    if not mask.any():
        raise RuntimeError(f"row {row} {defect} {index}: the defect changed no pixel")
    return bad


def make_row(row, out):
    slug, _, defects = ROWS[row]
    root = os.path.join(out, f"{row}-{slug}")
    digest = hashlib.sha256()

    def save(rel, img):
        digest.update(mas.save_png(os.path.join(root, rel), img).encode())

    for i in range(COUNTS["train"]):
        save(f"train/good/{i:03d}.png", draw(row, "train", i))
    for i in range(COUNTS["val_good"]):
        save(f"validation/good/{i:03d}.png", draw(row, "val_good", i))
    truth = {}
    for i in range(COUNTS["test_good"]):
        name = f"good_{i:03d}.png"
        save(f"test/{name}", draw(row, "test_good", i))
        truth[name] = {"verdict": "OK"}
    for d_index, d in enumerate(defects):
        for i in range(COUNTS["val_per_defect"]):
            save(f"validation/{d}/{i:03d}.png", draw(row, "val_defect", i, d, d_index + 1))
        for i in range(COUNTS["test_per_defect"]):
            name = f"{d}_{i:03d}.png"
            save(f"test/{name}", draw(row, "test_defect", i, d, d_index + 1))
            truth[name] = {"verdict": "NG", "defect": d}
    with open(os.path.join(root, "test", "truth.json"), "w") as f:
        json.dump({"note": f"rendered by tools/catalogue/anomaly.py, row {row}", "images": truth}, f, indent=1)
    meta = {
        "row": row, "slug": slug, "size": [SIZE, SIZE], "defects": list(defects), "counts": COUNTS,
        "seeds": "numpy default_rng([row, split (1 train, 2 val good, 3 val defect, 4 test good, 5 test defect), index, defect index + 1])",
        "generator": "tools/catalogue/anomaly.py",
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": Image.__version__},
        "sha256_of_file_hashes": digest.hexdigest(),
    }
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return root


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/catalogue")
    ap.add_argument("--rows", nargs="*", default=list(ROWS))
    a = ap.parse_args()
    cv2.setNumThreads(1)
    for row in a.rows:
        if row not in ROWS:
            sys.exit(f"unknown row {row}; this renderer draws rows {', '.join(ROWS)}")
        print(f"row {row}: {make_row(row, a.out)}")


if __name__ == "__main__":
    main()
