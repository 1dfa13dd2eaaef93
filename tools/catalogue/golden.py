#!/usr/bin/env python3
"""Renders the golden-reference catalogue rows (head kind "golden"):

  01 pcb-bare-board     bare board vs golden board: open, short, missing copper, spurious copper
  11 label-proof        printed label vs proof: missing character, wrong character, ink spot
  12 printed-fabric     printed cloth: misprint, stain, hole
  18 mold-protection    open mould before closing: part left in cavity, slide out of place
  27 printed-packaging  carton face: ink spot, missing print, colour shift

    .cache/venv/bin/python tools/catalogue/golden.py --out data/catalogue [--rows 01 11 ...]

Each row writes data/catalogue/NN-slug/:
  reference.png   the good part at the nominal pose (what the head compares with)
  regions.png     region map (grey values named in the scenario's [[head.region]])
  mask.png        tolerance mask (0 = ignored, 255 = full sensitivity)
  good/           4 more good parts (shifted, rotated, noisy): their spread is normal variation
  test/           32 frames (14 good, 18 NG cycling through the row's defect classes) and
                  test/truth.json: {"images": {name: {"verdict", "planted": [{"defect",
                  "region", "box": [x, y, w, h]}]}}} (boxes in frame pixels)

How a frame is made: the part is drawn on a canvas at twice the frame resolution (defects
are drawn there too), moved by a random similarity (shift up to 20 px, rotation up to 2
degrees, scale within 0.5%), area-downsampled to the frame, then given a +-2% lighting
gain and sensor noise (sigma 2 grey levels). The reference goes through the same path at
the identity pose without noise, so frames and reference differ only by pose, noise and
the planted defect. Fixed seeds: the output is the same on every run.
"""
from __future__ import annotations

import argparse
import json
import math
import os

import cv2
import numpy as np

W, H = 384, 288  # frame size
S = 2  # drawing supersampling
GOOD_TEST, NG_TEST, GOOD_REFS = 14, 18, 4
MAX_SHIFT, MAX_ANGLE, MAX_SCALE = 20.0, 2.0, 0.005


# ---------------------------------------------------------------- drawing helpers
def canvas(colour):
    c = np.empty((H * S, W * S, 3), np.uint8)
    c[:] = colour
    return c


def rect(img, x0, y0, x1, y1, colour):
    """Filled rectangle in frame coordinates (drawn at canvas scale)."""
    cv2.rectangle(img, (int(x0 * S), int(y0 * S)), (int(x1 * S) - 1, int(y1 * S) - 1), colour, -1)


def circle(img, cx, cy, r, colour):
    cv2.circle(img, (int(cx * S), int(cy * S)), int(r * S), colour, -1, cv2.LINE_AA)


def line(img, p, q, width, colour):
    cv2.line(img, (int(p[0] * S), int(p[1] * S)), (int(q[0] * S), int(q[1] * S)), colour,
             max(1, int(width * S)), cv2.LINE_AA)


def text(img, s, x, y, size, colour, thick=2):
    cv2.putText(img, s, (int(x * S), int(y * S)), cv2.FONT_HERSHEY_SIMPLEX, size * S / 2, colour,
                thick * S // 2 + 1, cv2.LINE_AA)


def text_box(s, x, y, size, thick=2):
    (tw, th), base = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, size * S / 2, thick * S // 2 + 1)
    return x, y - th / S, x + tw / S, y + base / S


def blob(img, rng, cx, cy, r, colour, soft=False):
    """An irregular blob of radius ~r (frame px)."""
    pts = []
    for k in range(12):
        a = 2 * math.pi * k / 12
        rr = r * rng.uniform(0.7, 1.15)
        pts.append(((cx + rr * math.cos(a)) * S, (cy + rr * math.sin(a)) * S))
    pts = np.array(pts, np.int32)
    if soft:
        layer = np.zeros(img.shape[:2], np.float32)
        cv2.fillPoly(layer, [pts], 1.0, cv2.LINE_AA)
        layer = cv2.GaussianBlur(layer, (0, 0), r * S / 4)
        a = (layer * 0.85)[..., None]
        img[:] = (img * (1 - a) + np.array(colour, np.float32) * a).astype(np.uint8)
    else:
        cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    return cx - r * 1.15, cy - r * 1.15, cx + r * 1.15, cy + r * 1.15


# ---------------------------------------------------------------- pose and camera
def pose_matrix(dx, dy, deg, scale):
    """Canvas->canvas affine: rotate/scale about the centre, then shift (frame px)."""
    c = ((W * S - 1) / 2, (H * S - 1) / 2)
    m = cv2.getRotationMatrix2D(c, -deg, scale)  # OpenCV's positive angle is clockwise on screen
    m[0, 2] += dx * S
    m[1, 2] += dy * S
    return m


def shoot(img, m, rng, noise=True):
    warped = cv2.warpAffine(img, m, (W * S, H * S), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    frame = cv2.resize(warped, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32)
    if noise:
        frame = frame * rng.uniform(0.98, 1.02) + rng.normal(0, 2.0, frame.shape)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def random_pose(rng, i):
    # Every fourth frame sits at the limits (20 px, 2 degrees), the rest anywhere within.
    if i % 4 == 0:
        a = rng.uniform(0, 2 * math.pi)
        return (MAX_SHIFT * math.cos(a), MAX_SHIFT * math.sin(a),
                MAX_ANGLE * rng.choice([-1, 1]), 1 + rng.uniform(-MAX_SCALE, MAX_SCALE))
    r = MAX_SHIFT * math.sqrt(rng.uniform())
    a = rng.uniform(0, 2 * math.pi)
    return (r * math.cos(a), r * math.sin(a), rng.uniform(-MAX_ANGLE, MAX_ANGLE),
            1 + rng.uniform(-MAX_SCALE, MAX_SCALE))


def box_through(m, box):
    """Frame-pixel box (x0, y0, x1, y1) on the canvas -> [x, y, w, h] in the frame."""
    x0, y0, x1, y1 = box
    pts = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) * S
    t = pts @ m[:, :2].T + m[:, 2]
    t /= S
    lo, hi = t.min(0), t.max(0)
    return [round(float(lo[0]), 1), round(float(lo[1]), 1),
            round(float(hi[0] - lo[0]), 1), round(float(hi[1] - lo[1]), 1)]


def to_frame_map(m_canvas):
    """A map drawn on the canvas (nearest values) at frame resolution."""
    return cv2.resize(m_canvas, (W, H), interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------- row 01: bare PCB
BOARD = (24, 24, W - 24, H - 24)
SUBSTRATE = (40, 90, 45)[::-1]  # BGR of a green solder-mask-free laminate
COPPER = (215, 165, 95)[::-1]


def pcb(rng):
    rng = np.random.default_rng(101)
    img = canvas((35, 35, 35))
    rect(img, *BOARD, SUBSTRATE)
    traces, pads = [], []
    # Horizontal bus traces with pads at the ends, and a few doglegs.
    for k in range(9):
        y = 44 + k * 22
        x0, x1 = 48 + rng.integers(0, 40), W - 48 - rng.integers(0, 40)
        xm = rng.integers(x0 + 60, x1 - 60)
        if k % 3 == 1:
            pts = [(x0, y), (xm, y), (xm + 8, y + 8), (x1, y + 8)]
        else:
            pts = [(x0, y), (x1, y)]
        traces.append((pts, 5))
        pads += [(x0, y, 6), (pts[-1][0], pts[-1][1], 6)]
    for k in range(4):
        x = 90 + k * 70
        traces.append(([(x, 36), (x, 50)], 4))
    for pts, wd in traces:
        for p, q in zip(pts, pts[1:]):
            line(img, p, q, wd, COPPER)
    for x, y, r in pads:
        circle(img, x, y, r, COPPER)
        circle(img, x, y, 2, (20, 20, 20))
    reg = np.zeros((H * S, W * S), np.uint8)
    rect(reg, *BOARD, 2)
    copper = np.all(np.abs(img.astype(int) - COPPER) < 40, axis=2)
    reg[cv2.dilate(copper.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = 1
    reg[0:0] = 0
    return dict(img=img, regions={0: "background", 1: "copper", 2: "substrate"}, reg=reg,
                traces=traces, pads=pads)


def pcb_defect(part, rng, kind):
    img = part["img"].copy()
    tr = [t for t in part["traces"] if len(t[0]) == 2 and t[0][0][1] == t[0][1][1]]
    pts, wd = tr[rng.integers(len(tr))]
    (xa, y), (xb, _) = pts
    x = rng.uniform(xa + 30, xb - 30)
    if kind == "open":
        g = rng.uniform(5, 8)
        box = (x, y - wd, x + g, y + wd)
        rect(img, *box, SUBSTRATE)
        return img, box, "copper"
    if kind == "missing_copper":
        # A pad gone (a copper area missing).
        px, py, r = part["pads"][rng.integers(len(part["pads"]))]
        circle(img, px, py, r + 1, SUBSTRATE)
        # Keep the trace stub that ran into it.
        return img, (px - r - 1, py - r - 1, px + r + 1, py + r + 1), "copper"
    if kind == "short":
        # A copper bridge down to the next trace (22 px away) or up.
        d = 22 if y + 22 < BOARD[3] - 10 else -22
        y0, y1 = (y + wd / 2, y + d - wd / 2) if d > 0 else (y + d + wd / 2, y - wd / 2)
        box = (x, y0, x + 5, y1)
        rect(img, *box, COPPER)
        return img, box, "substrate"
    # spurious copper: a splash on bare laminate between traces
    yy = y + 11 if y + 11 < BOARD[3] - 8 else y - 11
    box = blob(img, rng, x, yy, rng.uniform(3.2, 4.2), COPPER)
    return img, box, "substrate"


# ---------------------------------------------------------------- row 11: label vs proof
LABEL = (40, 30, W - 40, H - 30)
PROOF_LINES = [("ACME PARTS CO.", 0.95, 3), ("PART NO 4711-B", 0.8, 2), ("QTY 250 PCS", 0.8, 2),
               ("MADE IN DONGGUAN", 0.7, 2)]


def label(rng):
    img = canvas((110, 110, 110))
    rect(img, *LABEL, (245, 245, 240))
    rect(img, LABEL[0] + 8, LABEL[1] + 8, LABEL[2] - 8, LABEL[1] + 14, (40, 40, 200))  # red band
    chars = []
    y = LABEL[1] + 48
    for s, size, th in PROOF_LINES:
        x = LABEL[0] + 18
        text(img, s, x, y, size, (20, 20, 20), th)
        # Character boxes for the missing/wrong-character defects.
        for i, ch in enumerate(s):
            if ch == " ":
                continue
            a = text_box(s[:i], x, y, size, th)
            b = text_box(s[: i + 1], x, y, size, th)
            chars.append((ch, a[2], b[1], b[2], b[3], size, th, y))
        y += 36
    # A barcode (fixed bars) at the bottom right, a variable lot field at the bottom left.
    brng = np.random.default_rng(11)
    bx = LABEL[2] - 130
    for k in range(40):
        if brng.uniform() < 0.55:
            rect(img, bx + 3 * k, LABEL[3] - 50, bx + 3 * k + 2, LABEL[3] - 14, (20, 20, 20))
    reg = np.zeros((H * S, W * S), np.uint8)
    rect(reg, *LABEL, 2)
    ink = np.all(img < 120, axis=2) | (img[..., 2] > 150) & (img[..., 0] < 100)
    reg[(cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & (reg == 2)] = 1
    mask = np.full((H * S, W * S), 255, np.uint8)
    lot = (LABEL[0] + 14, LABEL[3] - 40, LABEL[0] + 170, LABEL[3] - 10)
    rect(mask, *lot, 0)  # the printed lot number changes label to label
    return dict(img=img, regions={0: "background", 1: "print", 2: "label"}, reg=reg, mask=mask,
                chars=chars, lot=lot)


def label_variable(img, rng):
    """The lot number every label carries (different each time, masked out)."""
    text(img, f"LOT {rng.integers(10000, 99999)}", LABEL[0] + 18, LABEL[3] - 18, 0.7, (20, 20, 20), 2)


def label_defect(part, rng, kind):
    img = part["img"].copy()
    ch, x0, y0, x1, y1, size, th, base = part["chars"][rng.integers(len(part["chars"]))]
    while ch in ".-" or x1 - x0 < 7:
        ch, x0, y0, x1, y1, size, th, base = part["chars"][rng.integers(len(part["chars"]))]
    if kind == "missing_character":
        rect(img, x0 - 1, y0 - 2, x1 + 1, y1 + 1, (245, 245, 240))
        return img, (x0, y0, x1, y1), "print"
    if kind == "wrong_character":
        rect(img, x0 - 1, y0 - 2, x1 + 1, y1 + 1, (245, 245, 240))
        other = {"O": "Q", "0": "8", "1": "7", "B": "8", "8": "B"}.get(ch, "X" if ch != "X" else "K")
        text(img, other, x0, base, size, (20, 20, 20), th)
        return img, (x0, y0, x1, y1), "print"
    # ink spot on the blank label
    x = rng.uniform(LABEL[0] + 190, LABEL[2] - 20)
    y = rng.uniform(LABEL[1] + 150, LABEL[1] + 170)
    return img, blob(img, rng, x, y, rng.uniform(2.8, 3.8), (30, 30, 30)), "label"


# ---------------------------------------------------------------- row 12: printed fabric
CLOTH = (236, 228, 214)[::-1]
INKS = [(200, 60, 80), (40, 110, 170), (230, 170, 40), (70, 140, 70)]


def fabric(rng):
    rng = np.random.default_rng(112)
    img = canvas(CLOTH)
    # A faint weave: +-4 grey levels of a fine cross pattern.
    yy, xx = np.mgrid[0 : H * S, 0 : W * S]
    weave = 4 * np.sin(xx * 2 * math.pi / 9) * np.sin(yy * 2 * math.pi / 9)
    img[:] = np.clip(img.astype(np.float32) + weave[..., None], 0, 255).astype(np.uint8)
    motifs = []
    # Scattered motifs (not a strict repeat, so registration has one answer).
    for k in range(26):
        for _ in range(50):
            x, y = rng.uniform(30, W - 30), rng.uniform(30, H - 30)
            if all((x - m[0]) ** 2 + (y - m[1]) ** 2 > 38 ** 2 for m in motifs):
                break
        ink = INKS[k % len(INKS)][::-1]
        r = rng.uniform(8, 13)
        for p in range(5):
            a = 2 * math.pi * p / 5 + k
            circle(img, x + r * 0.8 * math.cos(a), y + r * 0.8 * math.sin(a), r * 0.45, ink)
        circle(img, x, y, r * 0.3, (40, 40, 40))
        motifs.append((x, y, r, ink))
    reg = np.full((H * S, W * S), 2, np.uint8)
    printed = np.any(np.abs(img.astype(int) - CLOTH) > 30, axis=2)
    reg[cv2.dilate(printed.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = 1
    return dict(img=img, regions={1: "print", 2: "ground"}, reg=reg, motifs=motifs)


def fabric_defect(part, rng, kind):
    img = part["img"].copy()
    x, y, r, ink = part["motifs"][rng.integers(len(part["motifs"]))]
    if kind == "misprint":
        # One colour layer of a motif printed off register (blocked screen: petals missing).
        box = (x - r * 1.4, y - r * 1.4, x + r * 1.4, y + r * 1.4)
        circle(img, x, y, r * 1.35, CLOTH)
        circle(img, x, y, r * 0.3, (40, 40, 40))
        return img, box, "print"
    if kind == "stain":
        x, y = free_spot(part, rng)
        return img, blob(img, rng, x, y, rng.uniform(5, 7), (120, 150, 160), soft=True), "ground"
    x, y = free_spot(part, rng)
    return img, blob(img, rng, x, y, rng.uniform(2.8, 3.6), (30, 30, 30)), "ground"


def free_spot(part, rng):
    for _ in range(200):
        x, y = rng.uniform(40, W - 40), rng.uniform(40, H - 40)
        if all((x - m[0]) ** 2 + (y - m[1]) ** 2 > (m[2] + 14) ** 2 for m in part["motifs"]):
            return x, y
    return 40.0, 40.0


# ---------------------------------------------------------------- row 18: mould protection
STEEL = (150, 150, 155)
CAVITIES = [(70, 60, 170, 130), (214, 60, 314, 130), (70, 160, 170, 230), (214, 160, 314, 230)]
SLIDES = [(20, 100, 50, 190), (334, 100, 364, 190)]


def mould(rng):
    img = canvas(STEEL)
    # Machined surface: faint horizontal tool marks.
    marks = np.random.default_rng(118).normal(0, 3, (H * S, 1))
    img[:] = np.clip(img.astype(np.float32) + cv2.GaussianBlur(marks, (1, 9), 0)[..., None], 0, 255).astype(np.uint8)
    for (x0, y0, x1, y1) in CAVITIES:
        rect(img, x0, y0, x1, y1, (70, 70, 75))
        rect(img, x0 + 10, y0 + 10, x1 - 10, y1 - 10, (95, 95, 100))
        for ex in (x0 + 25, x1 - 25):
            circle(img, ex, (y0 + y1) / 2, 5, (180, 180, 185))  # ejector pins
    for (x0, y0, x1, y1) in SLIDES:
        rect(img, x0, y0, x1, y1, (115, 120, 125))
        rect(img, x0 + 6, y0 + 6, x1 - 6, y1 - 6, (135, 140, 145))
    line(img, (192, 20), (192, 268), 3, (60, 60, 60))  # runner
    reg = np.full((H * S, W * S), 3, np.uint8)
    for c in CAVITIES:
        rect(reg, c[0] - 3, c[1] - 3, c[2] + 3, c[3] + 3, 1)
    for s in SLIDES:
        rect(reg, s[0] - 12, s[1] - 12, s[2] + 12, s[3] + 12, 2)
    return dict(img=img, regions={1: "cavity", 2: "slide", 3: "parting_surface"}, reg=reg)


def mould_defect(part, rng, kind):
    img = part["img"].copy()
    if kind == "part_left":
        x0, y0, x1, y1 = CAVITIES[rng.integers(len(CAVITIES))]
        # A moulded part (white ABS) stuck in the cavity; sometimes only a broken piece.
        if rng.uniform() < 0.5:
            box = (x0 + 12, y0 + 12, x1 - 12, y1 - 12)
            rect(img, *box, (225, 225, 215))
            rect(img, box[0] + 10, box[1] + 10, box[2] - 10, box[3] - 10, (205, 205, 195))
        else:
            cx, cy = rng.uniform(x0 + 20, x1 - 20), rng.uniform(y0 + 20, y1 - 20)
            box = blob(img, rng, cx, cy, rng.uniform(5, 8), (225, 225, 215))
        return img, box, "cavity"
    # slide out of place: drawn 8-12 px away from home
    i = rng.integers(len(SLIDES))
    x0, y0, x1, y1 = SLIDES[i]
    d = rng.uniform(8, 12) * (1 if i == 0 else -1)
    rect(img, x0 - 8, y0 - 8, x1 + 8, y1 + 8, STEEL)
    rect(img, x0 + d, y0, x1 + d, y1, (115, 120, 125))
    rect(img, x0 + d + 6, y0 + 6, x1 + d - 6, y1 - 6, (135, 140, 145))
    return img, (min(x0, x0 + d), y0, max(x1, x1 + d), y1), "slide"


# ---------------------------------------------------------------- row 27: printed packaging
CARTON = (40, 26, W - 40, H - 26)
PANEL = (CARTON[0] + 12, CARTON[1] + 12, CARTON[0] + 150, CARTON[3] - 12)
PANEL_INK = (232, 196, 40)[::-1]  # yellow brand panel
PAPER = (248, 246, 240)[::-1]


def packaging(rng):
    img = canvas((60, 60, 65))
    rect(img, *CARTON, PAPER)
    rect(img, *PANEL, PANEL_INK)
    circle(img, PANEL[0] + 69, PANEL[1] + 70, 40, (200, 40, 40)[::-1])  # logo
    text(img, "CRISP", PANEL[0] + 28, PANEL[1] + 78, 1.0, PAPER, 3)
    lines = []
    y = CARTON[1] + 40
    for s in ["ORIGINAL", "RICE CRACKERS", "NET WT 150 g", "BEST WITH TEA"]:
        text(img, s, PANEL[2] + 16, y, 0.75, (60, 40, 30)[::-1], 2)
        lines.append((s, text_box(s, PANEL[2] + 16, y, 0.75)))
        y += 34
    # Nutrition table lines.
    for k in range(5):
        line(img, (PANEL[2] + 16, CARTON[3] - 70 + k * 11), (CARTON[2] - 16, CARTON[3] - 70 + k * 11),
             1.5, (90, 90, 90))
    reg = np.zeros((H * S, W * S), np.uint8)
    rect(reg, *CARTON, 3)
    rect(reg, PANEL[0] - 2, PANEL[1] - 2, PANEL[2] + 2, PANEL[3] + 2, 1)
    ink = np.any(np.abs(img.astype(int) - PAPER) > 40, axis=2) & (reg == 3)
    reg[(cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & (reg == 3)] = 2
    return dict(img=img, regions={0: "background", 1: "graphics", 2: "text", 3: "unprinted"},
                reg=reg, lines=lines)


def packaging_defect(part, rng, kind):
    img = part["img"].copy()
    if kind == "ink_spot":
        x = rng.uniform(PANEL[2] + 20, CARTON[2] - 20)
        y = rng.uniform(CARTON[1] + 150, CARTON[1] + 160)
        return img, blob(img, rng, x, y, rng.uniform(2.8, 3.8), (40, 30, 120)[::-1]), "unprinted"
    if kind == "missing_print":
        s, (x0, y0, x1, y1) = part["lines"][rng.integers(len(part["lines"]))]
        # A worn plate: the second half of a line did not print.
        xm = (x0 + x1) / 2
        box = (xm, y0 - 2, x1 + 2, y1 + 2)
        rect(img, *box, PAPER)
        return img, box, "text"
    # colour shift: the yellow panel printed with too much magenta/black
    sel = np.all(img == np.array(PANEL_INK, np.uint8), axis=2)
    shifted = np.array((200, 150, 40)[::-1], np.uint8)
    img[sel] = shifted
    return img, (PANEL[0], PANEL[1], PANEL[2], PANEL[3]), "graphics"


ROWS = {
    "01": ("pcb-bare-board", pcb, pcb_defect, ["open", "short", "missing_copper", "spurious_copper"], None),
    "11": ("label-proof", label, label_defect, ["missing_character", "wrong_character", "ink_spot"],
           label_variable),
    "12": ("printed-fabric", fabric, fabric_defect, ["misprint", "stain", "hole"], None),
    "18": ("mold-protection", mould, mould_defect, ["part_left", "slide_out_of_place"], None),
    "27": ("printed-packaging", packaging, packaging_defect, ["ink_spot", "missing_print", "colour_shift"],
           None),
}


def render_row(out, nn):
    slug, make, defect, kinds, variable = ROWS[nn]
    rng = np.random.default_rng(int(nn) * 1000 + 7)
    part = make(rng)
    d = os.path.join(out, f"{nn}-{slug}")
    for sub in ("good", "test"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        for f in os.listdir(os.path.join(d, sub)):
            os.remove(os.path.join(d, sub, f))

    def dressed(img):
        img = img.copy()
        if variable:
            variable(img, rng)
        return img

    ident = pose_matrix(0, 0, 0, 1)
    cv2.imwrite(os.path.join(d, "reference.png"), shoot(dressed(part["img"]), ident, rng, noise=False))
    cv2.imwrite(os.path.join(d, "regions.png"), to_frame_map(part["reg"]))
    mask = part.get("mask")
    cv2.imwrite(os.path.join(d, "mask.png"),
                to_frame_map(mask) if mask is not None else np.full((H, W), 255, np.uint8))
    for i in range(GOOD_REFS):
        m = pose_matrix(*random_pose(rng, i + 1))
        cv2.imwrite(os.path.join(d, "good", f"good_{i}.png"), shoot(dressed(part["img"]), m, rng))
    truth = {}
    order = ["OK"] * GOOD_TEST + ["NG"] * NG_TEST
    rng.shuffle(order)
    ng = 0
    for i, verdict in enumerate(order):
        pose = random_pose(rng, i)
        m = pose_matrix(*pose)
        name = f"{nn}_{i:02d}.png"
        entry = {"verdict": verdict, "pose": [round(p, 3) for p in pose]}
        if verdict == "OK":
            img = part["img"]
        else:
            kind = kinds[ng % len(kinds)]
            ng += 1
            img, box, region = defect(part, rng, kind)
            entry["planted"] = [{"defect": kind, "region": region, "box": box_through(m, box)}]
        cv2.imwrite(os.path.join(d, "test", name), shoot(dressed(img), m, rng))
        truth[name] = entry
    with open(os.path.join(d, "test", "truth.json"), "w") as f:
        json.dump({"images": truth, "regions": part["regions"]}, f, indent=1)
    print(f"{d}: reference, regions, mask, {GOOD_REFS} good references, {len(order)} test frames "
          f"({order.count('NG')} NG: {', '.join(kinds)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/catalogue")
    ap.add_argument("--rows", nargs="*", default=sorted(ROWS))
    a = ap.parse_args()
    for nn in a.rows:
        if nn not in ROWS:
            raise SystemExit(f"row {nn}: this script renders rows {', '.join(sorted(ROWS))}")
        render_row(a.out, nn)


if __name__ == "__main__":
    main()
