#!/usr/bin/env python3
"""Sample data for the measurement rows of the catalogue (calipers, `[head] kind = "measure"`).

    .cache/venv/bin/python tools/catalogue/measure.py --out data/catalogue [--rows 4 8 16 19]

Rows:
  04-connector-pins  top view of an 8-pin header: pin pitch, bent (tilted) pin, missing pin,
                     row offset;
  08-battery-xray    X-ray of a cell's edge, three anode/cathode pairs: anode overhang too
                     short (fold), negative (cathode past the anode) or too long;
  16-plush-toy       a plush face: eye spacing and height, a misplaced or missing eye;
  19-shoe-sole       top view of a sole on a belt: length and width out of tolerance; also
                     `calibration/target.png`, a 200 mm bar for `lineside calibrate`.

Each row writes data/catalogue/NN-slug/test/ with 30 frames (15 OK, 15 NG, five of each
defect class; eight of each for the sole's two) and truth.json (verdict, defect class, and the true sizes in px/mm).

Parts are drawn 8x oversampled with fractional coordinates and reduced by area averaging,
so edges are antialiased at sub-pixel positions as a camera sees them; then sensor noise.
OK parts vary within a fraction of their tolerance, NG parts are outside it by a clearly
visible margin (sizes below). Every frame has its own seed (row, index): deterministic.
"""
from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np
from PIL import Image

SS = 8  # oversampling
SHIFT = 4  # cv2 fixed-point bits for sub-pixel polygon vertices
N_OK, N_PER_DEFECT = 15, 5


class Canvas:
    """An oversampled grey (or colour) picture drawn in final-pixel coordinates."""

    def __init__(self, w, h, value, channels=1):
        self.w, self.h = w, h
        shape = (h * SS, w * SS) if channels == 1 else (h * SS, w * SS, channels)
        self.img = np.empty(shape, np.float32)
        self.img[...] = value

    def _pts(self, pts):
        # Pixel (i, j) covers [i, i+1) x [j, j+1); the oversampled pixel centres sit at
        # (k + 0.5) / SS, so a vertex at x maps to x * SS - 0.5 oversampled pixels.
        p = (np.asarray(pts, np.float64) * SS - 0.5) * (1 << SHIFT)
        return [np.round(p).astype(np.int32)]

    def poly(self, pts, value):
        cv2.fillPoly(self.img, self._pts(pts), value, lineType=cv2.LINE_8, shift=SHIFT)

    def rect(self, x0, y0, x1, y1, value):
        self.poly([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], value)

    def ellipse(self, cx, cy, ax, ay, value, n=180):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        self.poly(np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1), value)

    def finish(self, rng, noise, texture=None):
        img = cv2.resize(self.img, (self.w, self.h), interpolation=cv2.INTER_AREA)
        if texture is not None:
            img = img + texture
        img = img + rng.normal(0, noise, img.shape)
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        return img


def smooth_texture(rng, w, h, amp, sigma):
    t = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    return (t / (t.std() + 1e-6) * amp).astype(np.float32)


def plan(n_ok, defects):
    """[(verdict, defect)] in a fixed interleaved order: about as many NG as OK."""
    per = max(N_PER_DEFECT, -(-n_ok // len(defects)))
    items = [("OK", None)] * n_ok + [("NG", d) for d in defects for _ in range(per)]
    order = np.random.default_rng(12345).permutation(len(items))
    return [items[i] for i in order]


# --- row 4: connector pins ----------------------------------------------------------------

PIN = dict(w=400, h=160, mm_per_px=0.025, pitch=40.0, pin_w=14.0, x0=60.0, n=8)


def connector(rng, defect):
    p = PIN
    c = Canvas(p["w"], p["h"], 45.0 + rng.uniform(-5, 5))
    c.rect(0, 118, p["w"], p["h"], 70.0)  # housing edge, below the probe
    x0 = p["x0"] + rng.uniform(-1.0, 1.0)
    if defect == "offset":
        x0 += rng.choice([-1, 1]) * rng.uniform(6, 10)
    lefts = [x0 + k * p["pitch"] + rng.uniform(-0.3, 0.3) for k in range(p["n"])]
    bent = int(rng.integers(0, p["n"])) if defect == "bent" else -1
    missing = int(rng.integers(1, p["n"])) if defect == "missing" else -1
    bright = 200.0 + rng.uniform(-10, 10)
    tips = []
    for k, x in enumerate(lefts):
        if k == missing:
            continue
        lean = rng.choice([-1, 1]) * rng.uniform(6, 9) if k == bent else rng.uniform(-0.3, 0.3)
        # Tip at y = 15, base at y = 125: a bent pin leans, its tip moves sideways.
        c.poly([[x + lean, 15], [x + lean + p["pin_w"], 15], [x + p["pin_w"], 125], [x, 125]], bright)
        tips.append(x + lean * (125 - 30) / 110)  # left edge where the probe crosses (y = 30)
    return c.finish(rng, 3.0), {"left_edges_px": [round(t, 3) for t in tips]}


# --- row 8: battery X-ray --------------------------------------------------------------------

CELL = dict(w=320, h=240, mm_per_px=0.05, overhang=20.0, anode_end=230.0)
# Layer centre lines, top to bottom: cathode, anode, cathode, anode, cathode, anode.
LAYERS = [(40.0, "c"), (54.0, "a"), (100.0, "c"), (114.0, "a"), (160.0, "c"), (174.0, "a")]


def battery(rng, defect):
    p = CELL
    c = Canvas(p["w"], p["h"], 215.0)
    c.rect(0, 20, 290, 200, 165.0)  # separator, longer than both electrodes
    pair_bad = int(rng.integers(0, 3))
    overhangs = []
    for pair in range(3):
        a_end = p["anode_end"] + rng.uniform(-1.5, 1.5)
        over = p["overhang"] + rng.uniform(-2.0, 2.0)
        if pair == pair_bad and defect == "short":
            over = rng.uniform(2, 7)  # a folded anode tip
        elif pair == pair_bad and defect == "negative":
            over = -rng.uniform(4, 10)  # cathode past the anode
        elif pair == pair_bad and defect == "long":
            over = rng.uniform(34, 40)  # cathode cut short
        c_end = a_end - over
        overhangs.append(round(over * p["mm_per_px"], 4))
        for y, kind in LAYERS[2 * pair: 2 * pair + 2]:
            end = a_end if kind == "a" else c_end
            c.rect(0, y - 4, end, y + 4, 80.0 if kind == "a" else 55.0)
    tex = smooth_texture(rng, p["w"], p["h"], 3.0, 3.0)
    return c.finish(rng, 5.0, tex), {"overhang_mm": overhangs}


# --- row 16: plush toy ----------------------------------------------------------------------

FACE = dict(w=320, h=240, mm_per_px=0.2, left=(120.0, 100.0), right=(200.0, 100.0), r=12.0)


def plush(rng, defect):
    p = FACE
    fur = np.array([200.0, 180.0, 150.0]) + rng.uniform(-8, 8)
    c = Canvas(p["w"], p["h"], fur, channels=3)
    c.ellipse(160, 125, 125, 105, (fur * 0.93).tolist())  # the head, a little darker
    dx, dy = rng.uniform(-1.5, 1.5, 2)
    eyes = []
    for side, (ex, ey) in (("left", p["left"]), ("right", p["right"])):
        ex, ey = ex + dx + rng.uniform(-1, 1), ey + dy + rng.uniform(-1, 1)
        eyes.append([side, ex, ey])
    which = int(rng.integers(0, 2))
    if defect == "misplaced_x":
        eyes[which][1] += (1 if which else -1) * rng.choice([-1, 1]) * rng.uniform(8, 12)
    elif defect == "misplaced_y":
        eyes[which][2] += rng.choice([-1, 1]) * rng.uniform(8, 12)
    drawn = []
    for k, (side, ex, ey) in enumerate(eyes):
        if defect == "missing" and k == which:
            continue
        r = p["r"] + rng.uniform(-0.4, 0.4)
        c.ellipse(ex, ey, r, r, [30.0, 25.0, 25.0])
        c.ellipse(ex + 5, ey - 7, 2.2, 2.2, [235.0, 235.0, 235.0])  # highlight, off the probes
        drawn.append({"eye": side, "centre_px": [round(ex, 3), round(ey, 3)], "r_px": round(r, 3)})
    tex = smooth_texture(rng, p["w"], p["h"], 4.0, 1.5)[..., None]
    return c.finish(rng, 2.5, tex), {"eyes": drawn}


# --- row 19: shoe sole ----------------------------------------------------------------------

SOLE = dict(w=640, h=320, mm_per_px=0.5, heel=(140.0, 80.0, 65.0), fore=(420.0, 170.0, 100.0), y=160.0)


def sole_outline(dx, dy, length_scale, width_scale):
    hx, ha, hb = SOLE["heel"]
    fx, fa, fb = SOLE["fore"]
    heel_left = hx - ha
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    parts = []
    for cx, a, b in ((hx, ha, hb * width_scale), (fx, fa, fb * width_scale)):
        x = heel_left + (cx - heel_left) * length_scale
        parts.append(np.stack([x + a * length_scale * np.cos(t) + dx, SOLE["y"] + b * np.sin(t) + dy], 1))
    return parts


def shoe(rng, defect):
    p = SOLE
    c = Canvas(p["w"], p["h"], 200.0 + rng.uniform(-6, 6))
    length = 530.0 + rng.uniform(-1.0, 1.0)  # px, heel to toe
    width = 200.0 + rng.uniform(-0.6, 0.6)  # px at the forefoot
    if defect == "length":
        length += rng.choice([-1, 1]) * rng.uniform(7, 12)
    elif defect == "width":
        width += rng.choice([-1, 1]) * rng.uniform(6, 10)
    dx, dy = rng.uniform(-3, 3, 2)
    heel, fore = sole_outline(dx, dy, length / 530.0, width / 200.0)
    rubber = 60.0 + rng.uniform(-5, 5)
    c.poly(heel, rubber)
    c.poly(fore, rubber)
    hx = p["heel"][0] - p["heel"][1]
    waist_x0 = hx + (p["heel"][0] - hx) * length / 530.0 + dx
    waist_x1 = hx + (p["fore"][0] - hx) * length / 530.0 + dx
    c.poly([[waist_x0, p["y"] - 55 + dy], [waist_x1, p["y"] - 80 + dy], [waist_x1, p["y"] + 80 + dy],
            [waist_x0, p["y"] + 55 + dy]], rubber)
    # Tread: faint grooves inside the outline.
    for gx in np.arange(waist_x0 - 40, waist_x1 + 120, 22):
        c.rect(gx, p["y"] - 40 + dy, gx + 4, p["y"] + 40 + dy, rubber + 8)
    tex = smooth_texture(rng, p["w"], p["h"], 2.0, 2.0)
    return c.finish(rng, 3.0, tex), {"length_mm": round(length * p["mm_per_px"], 3),
                                     "width_mm": round(width * p["mm_per_px"], 3)}


def shoe_target(rng):
    """A 200 mm calibration bar on the belt, across the length probe."""
    p = SOLE
    c = Canvas(p["w"], p["h"], 200.0)
    x0 = 120.0
    c.rect(x0, p["y"] - 15, x0 + 200.0 / p["mm_per_px"], p["y"] + 15, 40.0)
    return c.finish(rng, 2.0)


ROWS = {
    4: ("04-connector-pins", connector, ["bent", "missing", "offset"]),
    8: ("08-battery-xray", battery, ["short", "negative", "long"]),
    16: ("16-plush-toy", plush, ["misplaced_x", "misplaced_y", "missing"]),
    19: ("19-shoe-sole", shoe, ["length", "width"]),
}


def render_row(out, number):
    slug, draw, defects = ROWS[number]
    test = os.path.join(out, slug, "test")
    os.makedirs(test, exist_ok=True)
    truth = {}
    for i, (verdict, defect) in enumerate(plan(N_OK, defects)):
        rng = np.random.default_rng([number, i])
        img, facts = draw(rng, defect)
        name = f"{slug[3:]}_{i:02d}.png"
        Image.fromarray(img).save(os.path.join(test, name), optimize=False, compress_level=6)
        truth[name] = {"verdict": verdict, "defect": defect or "none", **facts}
    with open(os.path.join(test, "truth.json"), "w") as f:
        json.dump({"images": truth}, f, indent=1)
    if number == 19:
        cal = os.path.join(out, slug, "calibration")
        os.makedirs(cal, exist_ok=True)
        Image.fromarray(shoe_target(np.random.default_rng([number, 999]))).save(os.path.join(cal, "target.png"))
    ok = sum(t["verdict"] == "OK" for t in truth.values())
    print(f"{slug}: {len(truth)} frames ({ok} OK, {len(truth) - ok} NG) -> {test}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/catalogue")
    ap.add_argument("--rows", type=int, nargs="*", default=sorted(ROWS))
    a = ap.parse_args()
    for r in a.rows:
        if r not in ROWS:
            ap.error(f"row {r} is not a measurement row; rows: {sorted(ROWS)}")
        render_row(a.out, r)


if __name__ == "__main__":
    main()
