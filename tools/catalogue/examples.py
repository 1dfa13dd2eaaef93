#!/usr/bin/env python3
"""Sample data for the catalogue rows inspected by teach-by-example classification.

    .cache/venv/bin/python tools/catalogue/examples.py --out data/catalogue [--rows 06 07 ...]

Rows: 06 magnetic-tile, 07 commutator-surface, 17 molded-part, 24 steel-surface,
30 bottle-cap-seal, 31 grain-sorting. For each row it writes data/catalogue/NN-slug/:
    classes/<class>/NNN.png   labelled examples, one folder per class ([fit] classes)
    unknown/NNN.png           parts of none of the classes ([fit] unknown: only reported)
    test/NNN.png + truth.json the frames `lineside run` replays (half good, the rest each
                              defect class in turn) with the expected verdict and class
    dataset.json              counts, seeds and library versions

224x224 RGB. Every image has its own seed (row, set, class, index), so the examples, the
unknown parts and the test frames never share one; the parts vary in position, rotation,
lighting and noise so that held-out examples look like new parts, not copies.
numpy, opencv and pillow only (.cache/venv).
"""
from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np
from PIL import Image

SIZE = 224
N_CLASS = 30      # examples per class (the fit holds a share out)
N_UNKNOWN = 8
N_TEST_GOOD = 15
N_TEST_DEFECT = 15
SETS = {"classes": 1, "unknown": 2, "test": 3}


def rng_for(row: int, set_name: str, cls: int, index: int) -> np.random.Generator:
    return np.random.default_rng([row, SETS[set_name], cls, index])


def blur(a, sigma):
    return cv2.GaussianBlur(a, (0, 0), sigma) if sigma > 0 else a


def noise(rng, sigma, shape=(SIZE, SIZE)):
    """Smooth noise in about [-1, 1] with features of `sigma` pixels."""
    n = blur(rng.standard_normal(shape).astype(np.float32), sigma)
    return n / (n.std() + 1e-6)


def paint(img, alpha, colour, strength=1.0):
    a = np.clip(alpha * strength, 0, 1)[..., None]
    return img * (1 - a) + np.asarray(colour, np.float32) * a


def shade(rng, amount):
    """A gentle lighting gradient across the frame."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    gx, gy = rng.uniform(-1, 1, 2)
    return 1 + amount * (gx * (xx - 0.5) + gy * (yy - 0.5))


def warp(img, rng, deg, shift, border):
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), rng.uniform(-deg, deg), 1.0)
    m[:, 2] += rng.uniform(-shift, shift, 2)
    return cv2.warpAffine(img, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def polyline(rng, start, steps, step_len, wiggle):
    pts = [np.array(start, np.float32)]
    ang = rng.uniform(0, 2 * np.pi)
    for _ in range(steps):
        ang += rng.normal(0, wiggle)
        pts.append(pts[-1] + step_len * np.array([np.cos(ang), np.sin(ang)], np.float32))
    return np.array(pts, np.int32)


def finish(img, rng, sigma_noise=0.015):
    img = img + sigma_noise * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


# ------------------------------------------------------------------ 06 magnetic tile
# A dark grey ferrite tile on a light conveyor, with the defects of the magnetic-tile
# surface data set: blowholes, cracks, breaks, fray (chipped edge), uneven (patchy
# grinding).

def tile_mask(rng):
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(m, (32, 44), (192, 180), 1.0, -1)
    return m


def tile(rng, cls):
    bg = np.array([0.72, 0.72, 0.70], np.float32)
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = bg
    m = tile_mask(rng)
    g = 0.30 + 0.03 * noise(rng, 1.0) + 0.02 * noise(rng, 12.0)
    # fine grinding marks
    g += 0.015 * np.sin(np.mgrid[0:SIZE, 0:SIZE][0] * rng.uniform(0.8, 1.2))
    surf = np.repeat(g[..., None], 3, 2)
    if cls == "uneven":
        surf *= (1 + 0.6 * noise(rng, 18.0).clip(-1, 1))[..., None]
    img = img * (1 - m[..., None]) + surf * m[..., None]
    if cls == "blowhole":
        for _ in range(int(rng.integers(2, 4))):
            c = (int(rng.uniform(50, 175)), int(rng.uniform(60, 165)))
            r = int(rng.uniform(6, 10))
            h = np.zeros((SIZE, SIZE), np.float32)
            cv2.circle(h, c, r, 1.0, -1)
            img = paint(img, blur(h, 0.8), (0.04, 0.04, 0.04))
            rim = np.zeros((SIZE, SIZE), np.float32)
            cv2.circle(rim, c, r + 1, 1.0, 1)
            img = paint(img, rim, (0.55, 0.55, 0.55), 0.6)
    if cls == "crack":
        pts = polyline(rng, (rng.uniform(70, 150), rng.uniform(80, 140)), 12, 9, 0.35)
        c = np.zeros((SIZE, SIZE), np.float32)
        cv2.polylines(c, [pts], False, 1.0, 3)
        img = paint(img, c, (0.02, 0.02, 0.02))
    if cls == "break":
        # a corner broken off: the conveyor shows through
        cx = [32, 192][int(rng.integers(0, 2))]
        cy = [44, 180][int(rng.integers(0, 2))]
        pts = np.array([[cx, cy],
                        [cx + (1 if cx == 32 else -1) * rng.uniform(35, 55), cy],
                        [cx, cy + (1 if cy == 44 else -1) * rng.uniform(35, 55)]], np.int32)
        b = np.zeros((SIZE, SIZE), np.float32)
        cv2.fillPoly(b, [pts], 1.0)
        img = paint(img, b, bg)
    if cls == "fray":
        # a chipped edge: many small bites along one side
        side = int(rng.integers(0, 4))
        f = np.zeros((SIZE, SIZE), np.float32)
        for t in np.linspace(0.1, 0.9, 12):
            r = int(rng.uniform(5, 9))
            x, y = [(32 + t * 160, 44), (32 + t * 160, 180), (32, 44 + t * 136), (192, 44 + t * 136)][side]
            cv2.circle(f, (int(x), int(y)), r, 1.0, -1)
        img = paint(img, f, bg)
    img *= shade(rng, 0.25)[..., None]
    img = warp(img, rng, 4, 6, tuple(float(v) for v in bg))
    return finish(img, rng)


def tile_unknown(rng):
    """A part of another kind on the same conveyor: a round, bright ring magnet."""
    bg = np.array([0.72, 0.72, 0.70], np.float32)
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = bg
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(m, (112, 112), int(rng.uniform(70, 90)), 1.0, -1)
    cv2.circle(m, (112, 112), int(rng.uniform(25, 40)), 0.0, -1)
    col = np.array([0.80, 0.55, 0.25], np.float32) * rng.uniform(0.8, 1.1)
    img = paint(img, blur(m, 1.0), col)
    img = warp(img, rng, 20, 10, tuple(float(v) for v in bg))
    return finish(img, rng)


# ------------------------------------------------------------------ 07 commutator
# The copper bars of a micro-motor commutator seen from the side, mica gaps between them.

def commutator(rng, cls):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.zeros((SIZE, SIZE, 3), np.float32) + 0.08
    x0, x1 = 24, 200
    period = rng.uniform(21, 23)
    phase = rng.uniform(0, period)
    bar = ((xx - phase) % period) > 3.0
    cyl = np.clip(1 - ((xx - 112) / 100) ** 2, 0, 1) ** 0.5          # cylinder shading
    copper = np.array([0.85, 0.50, 0.28], np.float32)
    body = (yy > 40) & (yy < 184) & (xx > x0) & (xx < x1)
    tone = (0.35 + 0.65 * cyl) * (1 + 0.04 * noise(rng, 2.0))
    surf = copper[None, None, :] * tone[..., None]
    surf[~bar] = 0.10
    m = body.astype(np.float32)
    img = img * (1 - m[..., None]) + surf * m[..., None]
    if cls == "crack":
        x = rng.uniform(50, 170)
        pts = np.array([[x + rng.normal(0, 2), y] for y in np.linspace(rng.uniform(50, 80), rng.uniform(130, 175), 9)], np.int32)
        pts[:, 0] += rng.integers(-3, 4, len(pts))
        c = np.zeros((SIZE, SIZE), np.float32)
        cv2.polylines(c, [pts], False, 1.0, 2)
        img = paint(img, c, (0.03, 0.02, 0.02))
    if cls == "burn":
        b = np.zeros((SIZE, SIZE), np.float32)
        cv2.ellipse(b, (int(rng.uniform(60, 165)), int(rng.uniform(80, 145))),
                    (int(rng.uniform(14, 22)), int(rng.uniform(18, 30))), rng.uniform(0, 180), 0, 360, 1.0, -1)
        img = paint(img, blur(b, 4.0), (0.10, 0.05, 0.03), 0.95)
    if cls == "chip":
        c = np.zeros((SIZE, SIZE), np.float32)
        x = rng.uniform(50, 170)
        y = [40, 184][int(rng.integers(0, 2))]
        cv2.ellipse(c, (int(x), y), (int(rng.uniform(16, 22)), int(rng.uniform(20, 26))), 0, 0, 360, 1.0, -1)
        img = paint(img, c * body, (0.08, 0.08, 0.08))
    img *= shade(rng, 0.3)[..., None]
    img = warp(img, rng, 2, 5, (0.08, 0.08, 0.08))
    return finish(img, rng)


def commutator_unknown(rng):
    """A steel shaft end instead of a commutator: bright, grey, no bars."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.zeros((SIZE, SIZE, 3), np.float32) + 0.08
    cyl = np.clip(1 - ((xx - 112) / 60) ** 2, 0, 1) ** 0.5
    m = ((yy > 30) & (yy < 194) & (abs(xx - 112) < 60)).astype(np.float32)
    steel = (0.3 + 0.6 * cyl)[..., None] * np.array([0.78, 0.80, 0.84], np.float32)
    img = img * (1 - m[..., None]) + steel * m[..., None]
    img = warp(img, rng, 3, 6, (0.08, 0.08, 0.08))
    return finish(img, rng)


# ------------------------------------------------------------------ 17 molded part
# An injection-moulded clip (rounded plate with a hole and a tab) on a dark tray.

def molded_mask():
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(m, (50, 60), (174, 164), 1.0, -1)
    cv2.rectangle(m, (92, 40), (132, 60), 1.0, -1)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    cv2.circle(m, (112, 120), 18, 0.0, -1)
    return m


def molded(rng, cls, colour=None):
    bg = (0.12, 0.12, 0.14)
    img = np.zeros((SIZE, SIZE, 3), np.float32) + np.array(bg, np.float32)
    m = molded_mask()
    col = np.array(colour if colour is not None else (0.15, 0.35, 0.80), np.float32)
    col = col * rng.uniform(0.92, 1.05)
    if cls == "short_shot":
        # the melt did not fill the far end: a corner region is missing
        cut = np.zeros((SIZE, SIZE), np.float32)
        x = [50, 174][int(rng.integers(0, 2))]
        cv2.circle(cut, (x, 164), int(rng.uniform(38, 52)), 1.0, -1)
        m = m * (1 - cut)
    if cls == "flash":
        # a thin fin of excess plastic along the parting line
        f = np.zeros((SIZE, SIZE), np.float32)
        side = int(rng.integers(0, 2))
        x = 174 if side else 50
        y0 = int(rng.uniform(70, 100))
        pts = np.array([[x, y0], [x + (1 if side else -1) * rng.uniform(10, 16), y0 + 15],
                        [x + (1 if side else -1) * rng.uniform(8, 14), y0 + 50], [x, y0 + 60]], np.int32)
        cv2.fillPoly(f, [pts], 1.0)
        img = paint(img, f, col * 1.25 + 0.1, 0.75)
    surf = col[None, None, :] * (1 + 0.03 * noise(rng, 3.0))[..., None]
    if cls == "flow_mark":
        yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
        cx, cy = rng.uniform(60, 160), rng.uniform(70, 150)
        r = np.hypot(xx - cx, yy - cy)
        waves = 0.5 + 0.5 * np.sin(r / rng.uniform(3.5, 5.0))
        reach = np.exp(-r / 45.0)
        surf = surf * (1 - 0.55 * (waves * reach)[..., None])
    img = img * (1 - m[..., None]) + surf * m[..., None]
    # edge highlight
    edge = cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    img = paint(img, edge, col * 1.4 + 0.1, 0.5)
    if cls == "bubble":
        for _ in range(int(rng.integers(3, 6))):
            while True:
                c = (int(rng.uniform(58, 166)), int(rng.uniform(66, 158)))
                if m[c[1], c[0]] > 0 and np.hypot(c[0] - 112, c[1] - 120) > 28:
                    break
            r = int(rng.uniform(5, 9))
            b = np.zeros((SIZE, SIZE), np.float32)
            cv2.circle(b, c, r, 1.0, -1)
            img = paint(img, blur(b, 0.8), col * 0.45, 0.9)
            hl = np.zeros((SIZE, SIZE), np.float32)
            cv2.circle(hl, (c[0] - r // 3, c[1] - r // 3), max(1, r // 3), 1.0, -1)
            img = paint(img, blur(hl, 0.8), (0.95, 0.95, 0.95), 0.9)
    img *= shade(rng, 0.2)[..., None]
    img = warp(img, rng, 5, 8, bg)
    return finish(img, rng)


def molded_unknown(rng):
    """The same clip moulded in the wrong colour (another product's material)."""
    return molded(rng, "good", colour=(0.85, 0.20, 0.15))


# ------------------------------------------------------------------ 24 steel surface
# Hot-rolled strip in grey, NEU surface-defect style: crazing, inclusion, patches, pitting,
# rolled-in scale, scratches; and clean strip (good).

def steel(rng, cls):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    g = 0.55 + 0.03 * noise(rng, 1.0) + 0.03 * noise(rng, 20.0)
    # rolling direction: faint horizontal streaks
    g += 0.02 * blur(rng.standard_normal((SIZE, 1)).astype(np.float32), 1.5) * np.ones((1, SIZE), np.float32)
    if cls == "crazing":
        n = np.zeros((SIZE, SIZE), np.float32)
        for _ in range(60):
            pts = polyline(rng, rng.uniform(0, SIZE, 2), 5, 7, 0.8)
            cv2.polylines(n, [pts], False, 1.0, 1)
        g -= 0.30 * blur(n, 0.6)
    if cls == "inclusion":
        for _ in range(int(rng.integers(2, 4))):
            c = (int(rng.uniform(30, 194)), int(rng.uniform(30, 194)))
            n = np.zeros((SIZE, SIZE), np.float32)
            cv2.ellipse(n, c, (int(rng.uniform(18, 35)), int(rng.uniform(3, 5))), rng.uniform(-10, 10), 0, 360, 1.0, -1)
            g -= 0.30 * blur(n, 1.0)
    if cls == "patches":
        p = (noise(rng, 14.0) > 0.9).astype(np.float32)
        g -= 0.25 * blur(p, 4.0)
    if cls == "pitting":
        for _ in range(int(rng.integers(25, 40))):
            c = (int(rng.uniform(10, 214)), int(rng.uniform(10, 214)))
            n = np.zeros((SIZE, SIZE), np.float32)
            cv2.circle(n, c, int(rng.uniform(1, 3)), 1.0, -1)
            g -= 0.35 * blur(n, 0.7)
    if cls == "rolled_in_scale":
        for _ in range(int(rng.integers(10, 18))):
            c = (int(rng.uniform(10, 214)), int(rng.uniform(10, 214)))
            pts = cv2.ellipse2Poly(c, (int(rng.uniform(6, 12)), int(rng.uniform(3, 6))), int(rng.uniform(0, 180)), 0, 360, 40)
            pts = pts + rng.integers(-2, 3, pts.shape)
            n = np.zeros((SIZE, SIZE), np.float32)
            cv2.fillPoly(n, [pts.astype(np.int32)], 1.0)
            g -= 0.22 * blur(n, 0.8)
    if cls == "scratches":
        for _ in range(int(rng.integers(2, 4))):
            x = rng.uniform(20, 200)
            n = np.zeros((SIZE, SIZE), np.float32)
            cv2.line(n, (int(x), int(rng.uniform(0, 60))), (int(x + rng.uniform(-30, 30)), int(rng.uniform(160, 224))), 1.0, 1)
            g += 0.25 * blur(n, 0.6)
    g *= shade(rng, 0.2)
    img = np.repeat(g[..., None], 3, 2)
    return finish(img, rng, 0.02)


def steel_unknown(rng):
    """Painted (coated) strip: blue-grey and smooth, not hot-rolled steel."""
    g = 0.5 + 0.02 * noise(rng, 3.0)
    img = g[..., None] * np.array([0.55, 0.75, 1.05], np.float32)
    img *= shade(rng, 0.2)[..., None]
    return finish(img, rng)


# ------------------------------------------------------------------ 30 bottle cap and seal
# The top of a bottle seen from the side: cap, tamper-evident ring, neck label band.

def bottle(rng, cls, cap_colour=(0.85, 0.12, 0.12)):
    bg = (0.90, 0.90, 0.92)
    img = np.zeros((SIZE, SIZE, 3), np.float32) + np.array(bg, np.float32)
    glass = np.array([0.35, 0.55, 0.40], np.float32)
    neck = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(neck, (80, 60), (144, 224), 1.0, -1)
    img = paint(img, neck, glass, 0.9)
    cap = np.array(cap_colour, np.float32) * rng.uniform(0.9, 1.05)
    lift, tilt = 0.0, 0.0
    if cls == "loose_cap":
        lift, tilt = rng.uniform(12, 18), rng.uniform(6, 10) * rng.choice([-1, 1])
        # the thread shows under the raised cap
        th = np.zeros((SIZE, SIZE), np.float32)
        for y in range(int(94 - lift), 96, 4):
            cv2.line(th, (82, y), (142, y + 2), 1.0, 1)
        img = paint(img, th, (0.85, 0.88, 0.86), 0.9)
    c = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(c, (74, 40), (150, 94), 1.0, -1)
    m = cv2.getRotationMatrix2D((112, 94), tilt, 1.0)
    m[1, 2] -= lift
    c = cv2.warpAffine(c, m, (SIZE, SIZE))
    img = paint(img, c, cap)
    # knurling on the cap
    kn = np.zeros((SIZE, SIZE), np.float32)
    for x in range(78, 150, 5):
        cv2.line(kn, (x, 44), (x, 90), 1.0, 1)
    kn = cv2.warpAffine(kn, m, (SIZE, SIZE)) * c
    img = paint(img, kn, cap * 0.6, 0.8)
    # tamper ring
    ring = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(ring, (76, 98), (148, 108), 1.0, -1)
    if cls == "bad_seal":
        # the ring is torn open at one side; the loose end hangs out beside the neck
        right = rng.uniform() < 0.5
        gx = int(rng.uniform(112, 122)) if right else int(rng.uniform(78, 88))
        cv2.rectangle(ring, (gx, 96), (gx + int(rng.uniform(20, 26)), 110), 0.0, -1)
        drop = np.zeros((SIZE, SIZE), np.float32)
        y = int(rng.uniform(104, 116))
        x0 = int(rng.uniform(146, 150)) if right else int(rng.uniform(44, 48))
        cv2.rectangle(drop, (x0, y), (x0 + 30, y + 14), 1.0, -1)
        img = paint(img, drop, cap * 0.9)
    img = paint(img, ring, cap * 0.9)
    # label band
    lab = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(lab, (78, 140), (146, 190), 1.0, -1)
    stripe = np.zeros((SIZE, SIZE), np.float32)
    cv2.rectangle(stripe, (78, 158), (146, 170), 1.0, -1)
    angle = rng.normal(0, 0.8)
    if cls == "skewed_label":
        angle = rng.uniform(14, 22) * rng.choice([-1, 1])
    m = cv2.getRotationMatrix2D((112, 165), angle, 1.0)
    lab, stripe = cv2.warpAffine(lab, m, (SIZE, SIZE)), cv2.warpAffine(stripe, m, (SIZE, SIZE))
    img = paint(img, lab, (0.97, 0.95, 0.85))
    img = paint(img, stripe, (0.10, 0.25, 0.60))
    img *= shade(rng, 0.15)[..., None]
    img = warp(img, rng, 1.5, 4, bg)
    return finish(img, rng)


def bottle_unknown(rng):
    """A bottle of another product: a white cap."""
    return bottle(rng, "good", cap_colour=(0.93, 0.93, 0.90))


# ------------------------------------------------------------------ 31 grain sorting
# One kernel per frame, as a sorter's camera sees it on the chute: good rice, discoloured
# (yellowed) kernels, moldy kernels, and foreign matter (stones, husks) in its place.

def kernel_mask(rng, ax=(70, 28)):
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.ellipse(m, (112, 112), (int(ax[0] * rng.uniform(0.9, 1.1)), int(ax[1] * rng.uniform(0.9, 1.1))), 0, 0, 360, 1.0, -1)
    return blur(m, 1.5)


def grain(rng, cls):
    bg = (0.15, 0.15, 0.17)
    img = np.zeros((SIZE, SIZE, 3), np.float32) + np.array(bg, np.float32)
    if cls == "foreign_matter":
        if rng.uniform() < 0.5:   # a stone
            pts = cv2.ellipse2Poly((112, 112), (int(rng.uniform(35, 55)), int(rng.uniform(30, 45))), 0, 0, 360, 30)
            pts = pts + rng.integers(-8, 9, pts.shape)
            m = np.zeros((SIZE, SIZE), np.float32)
            cv2.fillPoly(m, [pts.astype(np.int32)], 1.0)
            col = np.array([0.45, 0.43, 0.40], np.float32) * (1 + 0.15 * noise(rng, 2.0))[..., None]
            img = img * (1 - blur(m, 1.0)[..., None]) + col * blur(m, 1.0)[..., None]
        else:                     # a husk: long, thin, brown
            m = kernel_mask(rng, (80, 14))
            img = paint(img, m, (0.55, 0.38, 0.18))
    else:
        m = kernel_mask(rng)
        col = np.array([0.93, 0.91, 0.84], np.float32)
        if cls == "discoloured":
            col = np.array([0.85, 0.68, 0.30], np.float32) * rng.uniform(0.9, 1.05)
        surf = col[None, None, :] * (1 + 0.03 * noise(rng, 3.0))[..., None]
        img = img * (1 - m[..., None]) + surf * m[..., None]
        # the germ end is a little darker
        g = np.zeros((SIZE, SIZE), np.float32)
        cv2.circle(g, (46, 112), 10, 1.0, -1)
        img = paint(img, blur(g, 3) * m, col * 0.8, 0.7)
        if cls == "moldy":
            spots = np.zeros((SIZE, SIZE), np.float32)
            for _ in range(int(rng.integers(3, 6))):
                c = (int(112 + rng.uniform(-50, 50)), int(112 + rng.uniform(-15, 15)))
                cv2.circle(spots, c, int(rng.uniform(8, 13)), 1.0, -1)
            spots = blur(spots, 2.0) * (0.75 + 0.25 * noise(rng, 1.5).clip(-1, 1)) * m
            img = paint(img, spots, (0.20, 0.32, 0.18), 1.0)
    img *= shade(rng, 0.2)[..., None]
    # the chute lines kernels up along the flow, either end first
    if rng.uniform() < 0.5:
        img = img[:, ::-1].copy()
    img = warp(img, rng, 15, 12, bg)
    return finish(img, rng)


def grain_unknown(rng):
    """Another grain in the chute: a dark, round buckwheat-like seed."""
    bg = (0.15, 0.15, 0.17)
    img = np.zeros((SIZE, SIZE, 3), np.float32) + np.array(bg, np.float32)
    pts = np.array([[112, 60], [160, 150], [64, 150]], np.int32) + rng.integers(-6, 7, (3, 2))
    m = np.zeros((SIZE, SIZE), np.float32)
    cv2.fillPoly(m, [pts], 1.0)
    img = paint(img, blur(m, 3.0), (0.30, 0.20, 0.15))
    img = warp(img, rng, 180, 15, bg)
    return finish(img, rng)


ROWS = {
    6: ("magnetic-tile", ["good", "blowhole", "crack", "break", "fray", "uneven"], tile, tile_unknown),
    7: ("commutator-surface", ["good", "crack", "burn", "chip"], commutator, commutator_unknown),
    17: ("molded-part", ["good", "flash", "short_shot", "bubble", "flow_mark"], molded, molded_unknown),
    24: ("steel-surface", ["good", "crazing", "inclusion", "patches", "pitting", "rolled_in_scale", "scratches"], steel, steel_unknown),
    30: ("bottle-cap-seal", ["good", "loose_cap", "bad_seal", "skewed_label"], bottle, bottle_unknown),
    31: ("grain-sorting", ["good", "discoloured", "moldy", "foreign_matter"], grain, grain_unknown),
}


def save(path, img01):
    Image.fromarray((np.clip(img01, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path, optimize=False)


def render_row(row, out, n_class=N_CLASS, n_unknown=N_UNKNOWN, n_test_good=N_TEST_GOOD, n_test_defect=N_TEST_DEFECT):
    slug, classes, draw, unknown = ROWS[row]
    root = os.path.join(out, f"{row:02d}-{slug}")
    counts = {}
    for ci, cls in enumerate(classes):
        d = os.path.join(root, "classes", cls)
        os.makedirs(d, exist_ok=True)
        for i in range(n_class):
            save(os.path.join(d, f"{i:03d}.png"), draw(rng_for(row, "classes", ci, i), cls))
        counts[cls] = n_class
    d = os.path.join(root, "unknown")
    os.makedirs(d, exist_ok=True)
    for i in range(n_unknown):
        save(os.path.join(d, f"{i:03d}.png"), unknown(rng_for(row, "unknown", 0, i)))
    d = os.path.join(root, "test")
    os.makedirs(d, exist_ok=True)
    truth = {}
    defects = classes[1:]
    plan = ["good"] * n_test_good + [defects[i % len(defects)] for i in range(n_test_defect)]
    # interleave so the replay alternates good and defective parts
    order = np.random.default_rng([row, 99]).permutation(len(plan))
    for i, k in enumerate(order):
        cls = plan[k]
        name = f"{i:03d}.png"
        save(os.path.join(d, name), draw(rng_for(row, "test", classes.index(cls), i), cls))
        truth[name] = {"verdict": "OK" if cls == "good" else "NG", "class": cls}
    with open(os.path.join(d, "truth.json"), "w") as f:
        json.dump({"images": truth}, f, indent=1, sort_keys=True)
    meta = {
        "row": f"{row:02d}-{slug}",
        "size": [SIZE, SIZE],
        "classes": counts,
        "unknown": n_unknown,
        "test": {"good": n_test_good, "defect": n_test_defect},
        "seeds": "numpy default_rng([row, set, class, index]); set: classes 1, unknown 2, test 3",
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": Image.__version__,
    }
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return root


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", nargs="*", type=int, default=sorted(ROWS))
    # Smaller sets for the integration tests (tests/examples.rs).
    ap.add_argument("--per-class", type=int, default=N_CLASS, help="examples per class")
    ap.add_argument("--unknown", type=int, default=N_UNKNOWN, help="unknown parts")
    ap.add_argument("--test", type=int, nargs=2, default=[N_TEST_GOOD, N_TEST_DEFECT],
                    metavar=("GOOD", "DEFECT"), help="test frames")
    a = ap.parse_args()
    for r in a.rows:
        if r not in ROWS:
            ap.error(f"row {r:02d} is not a teach-by-example row; rows: {sorted(ROWS)}")
        print(render_row(r, a.out, a.per_class, a.unknown, *a.test))


if __name__ == "__main__":
    main()
