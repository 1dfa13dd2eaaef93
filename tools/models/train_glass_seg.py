#!/usr/bin/env python3
"""Train a tiny U-Net that segments phone cover-glass defects, from scratch on synthetic renders,
and export it to ONNX (catalogue scenario 3, "cover-glass").

Writes, relative to the repository root (or --out-root):
  models/glass-seg/glass_seg.onnx        input `images` float32 [1,3,256,256] RGB /255 NCHW,
                                          output `logits` float32 [1,3,256,256] (raw, no softmax)
  models/glass-seg/README.md             model card: provenance, licence, sha256, I/O, pre/post-processing, quality
  models/glass-seg/metrics.json          per-class IoU, image-level verdict quality, timings, metadata
  scenarios/samples/glass/*.png          8 held-out 512x512 frames (4 good, 2 scratch, 1 dirt, 1 both)
  scenarios/samples/glass/truth.json     expected verdict and per-defect class + box (frame pixels)
  tests/fixtures/glass/*.png             3 of those frames, for the parity test

The data set is rendered into --work (default /tmp/glass-seg), not committed: it is re-created bit for
bit from the fixed seed (the training itself is seeded too, but CPU thread scheduling may make the
weights differ in the last bits between machines).

Frames: 512x512 RGB camera frames of dark cover glass under dark-field / low-angle light (grey-dark
glass, gentle illumination gradient, vignetting, faint broad reflections and smudges, sensor noise,
sometimes the edge of the glass and the darker holder beyond it). Defect frames carry 1..4 defects:
  class 1 `scratch`: thin bright lines/arcs, 1.6..3.2 px wide at 512, 25..260 px long, sometimes faint
                     or broken;
  class 2 `dirt`:    small bright (or dark with a bright rim) particles, 4..15 px, soft edges.
Class 0 `background`. Faint large smudges, broad reflections, the glass edge and isolated hot pixels
are NOT defects (labelled background) so the model does not flag every bright thing.

The model sees frames exactly as lineside feeds them: cv2.resize(frame, (256, 256), INTER_LINEAR)
(plain stretch), RGB, /255, NCHW. Labels at 256 are the 2x2 max of the 512 labels (a 2x INTER_LINEAR
downscale averages exactly those 2x2 blocks), so a 1.6 px scratch stays a connected 1..2 px line.

Run with the throwaway torch environment (nothing is downloaded; torch, onnx, onnxruntime, opencv):

  nice -n 19 /work/.venvs/torch/bin/python tools/models/train_glass_seg.py --minutes 8
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

SEED = 20261203
FRAME = 512
SIZE = 256
NAMES = ["background", "scratch", "dirt"]
# Image-level rule: NG if any scratch/dirt region (8-connected, argmax at 256) has >= MIN_AREA pixels.
# Chosen on the validation renders (not the test renders); see choose_min_area().
MIN_AREA_GRID = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16]

# ------------------------------------------------------------------------------------------------
# Renderer
# ------------------------------------------------------------------------------------------------

_YY, _XX = np.mgrid[0:FRAME, 0:FRAME].astype(np.float32)


def _gauss_blob(cx, cy, sx, sy, ang):
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = _XX - cx, _YY - cy
    u = (c * dx + s * dy) / sx
    v = (-s * dx + c * dy) / sy
    return np.exp(-0.5 * (u * u + v * v))


def glass_background(rng: np.random.Generator):
    """Float32 HxWx3 background and a 'glass' mask (1 on glass, 0 on the holder beyond its edge)."""
    base = rng.uniform(22, 70)
    tint = rng.uniform(-3, 3, size=3).astype(np.float32)
    ang = rng.uniform(0, 2 * math.pi)
    grad = (math.cos(ang) * (_XX - FRAME / 2) + math.sin(ang) * (_YY - FRAME / 2)) / FRAME * rng.uniform(-22, 22)
    v = base + grad
    # vignetting
    vc = rng.uniform(0.35, 0.65, size=2) * FRAME
    r2 = ((_XX - vc[0]) ** 2 + (_YY - vc[1]) ** 2) / (FRAME * FRAME * 0.5)
    v = v * (1.0 - rng.uniform(0.05, 0.3) * r2)
    # faint broad reflections (elongated soft bands) and smudges: NOT defects
    for _ in range(int(rng.integers(0, 3))):
        v = v + rng.uniform(3, 16) * _gauss_blob(rng.uniform(0, FRAME), rng.uniform(0, FRAME),
                                                 rng.uniform(60, 260), rng.uniform(8, 35), rng.uniform(0, math.pi))
    for _ in range(int(rng.integers(0, 4))):
        v = v + rng.uniform(-7, 10) * _gauss_blob(rng.uniform(0, FRAME), rng.uniform(0, FRAME),
                                                  rng.uniform(15, 70), rng.uniform(15, 70), rng.uniform(0, math.pi))
    glass = np.ones((FRAME, FRAME), np.float32)
    if rng.random() < 0.35:  # edge of the glass, with the darker holder beyond it and a soft rim glow
        side = int(rng.integers(0, 4))
        pos = rng.uniform(10, 70)
        tilt = rng.uniform(-0.06, 0.06)
        coord = {0: _XX, 1: _YY, 2: FRAME - 1 - _XX, 3: FRAME - 1 - _YY}[side]
        other = _YY if side in (0, 2) else _XX
        d = coord - (pos + tilt * (other - FRAME / 2))  # >0 on the glass
        glass = np.clip(d / 2.0 + 0.5, 0, 1).astype(np.float32)
        holder = rng.uniform(4, 18)
        rim = rng.uniform(8, 30) * np.exp(-0.5 * (d / rng.uniform(3, 7)) ** 2)
        v = v * glass + holder * (1 - glass) + rim
    img = v[..., None] + tint[None, None, :]
    return img.astype(np.float32), glass


def _polyline_dist(pts: np.ndarray, x0, y0, x1, y1):
    """Distance from every pixel of the window to a polyline; returns (dist, t) with t in 0..1 along it."""
    yy, xx = _YY[y0:y1, x0:x1], _XX[y0:y1, x0:x1]
    best = np.full(yy.shape, 1e9, np.float32)
    tbest = np.zeros(yy.shape, np.float32)
    seg = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
    cum = np.concatenate([[0], np.cumsum(seg)])
    total = max(cum[-1], 1e-6)
    for i in range(len(pts) - 1):
        ax, ay = pts[i]
        bx, by = pts[i + 1]
        vx, vy = bx - ax, by - ay
        l2 = max(vx * vx + vy * vy, 1e-9)
        t = np.clip(((xx - ax) * vx + (yy - ay) * vy) / l2, 0, 1)
        d = np.hypot(xx - (ax + t * vx), yy - (ay + t * vy))
        m = d < best
        best = np.where(m, d, best)
        tbest = np.where(m, (cum[i] + t * seg[i]) / total, tbest)
    return best, tbest


def _placeable(m, x0, y0, glass, label) -> bool:
    """A defect must lie fully on the glass and keep >= 6 px away from every other defect, so that
    labels never disagree with what the frame shows (no particle 'on the holder' labelled background,
    no two defects merging)."""
    h, w = m.shape
    if (glass[y0:y0 + h, x0:x0 + w][m] < 0.99).any():
        return False
    ys, xs = np.nonzero(m)
    ya, yb = max(0, y0 + ys.min() - 6), min(FRAME, y0 + ys.max() + 7)
    xa, xb = max(0, x0 + xs.min() - 6), min(FRAME, x0 + xs.max() + 7)
    return not label[ya:yb, xa:xb].any()


def _box(m, x0, y0):
    ys, xs = np.nonzero(m)
    return [int(x0 + xs.min()), int(y0 + ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def add_scratch(img, label, glass, rng, faint=False):
    """Bright thin line or arc. Returns the defect's box (x, y, w, h) in frame pixels, or None when
    it does not fit (then nothing is drawn)."""
    length = rng.uniform(25, 260)
    width = rng.uniform(1.6, 3.2)
    cx, cy = rng.uniform(30, FRAME - 30, size=2)
    ang = rng.uniform(0, math.pi)
    curv = rng.choice([0.0, rng.uniform(-1, 1) / max(length, 1) * rng.uniform(0.5, 3)])
    n = max(2, int(length / 8))
    s = np.linspace(-length / 2, length / 2, n)
    theta = ang + curv * s
    # integrate the heading to get a smooth arc through (cx, cy)
    dx = np.cos(theta) * (length / (n - 1))
    dy = np.sin(theta) * (length / (n - 1))
    xs = np.cumsum(dx) - dx[0]
    ys = np.cumsum(dy) - dy[0]
    xs = xs - xs.mean() + cx
    ys = ys - ys.mean() + cy
    pts = np.stack([xs, ys], 1)
    pts = pts[(pts[:, 0] >= 2) & (pts[:, 0] < FRAME - 2) & (pts[:, 1] >= 2) & (pts[:, 1] < FRAME - 2)]
    if len(pts) < 2 or np.hypot(*(pts[-1] - pts[0])) < 20:
        return None
    pad = int(width) + 4
    x0 = max(0, int(pts[:, 0].min()) - pad)
    x1 = min(FRAME, int(pts[:, 0].max()) + pad + 1)
    y0 = max(0, int(pts[:, 1].min()) - pad)
    y1 = min(FRAME, int(pts[:, 1].max()) + pad + 1)
    d, t = _polyline_dist(pts, x0, y0, x1, y1)
    total = float(np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1])).sum())
    contrast = rng.uniform(22, 45) if faint else rng.uniform(40, 140)
    # intensity varies gently along the scratch; a quarter are broken into dashes >= ~13 px long
    prof = 0.75 + 0.25 * np.sin(t * rng.uniform(2, 12) + rng.uniform(0, 6.3))
    if rng.random() < 0.25:
        period = rng.uniform(18, 45)
        gaps = np.sin(t * total * 2 * math.pi / period + rng.uniform(0, 6.3)) > 0.6
        prof = np.where(gaps, 0.0, prof)
    cov = np.clip(width / 2 + 0.5 - d, 0, 1)  # anti-aliased line coverage
    m = (d <= max(width / 2, 0.8)) & (prof > 0.05)
    if m.sum() < 10 or not _placeable(m, x0, y0, glass, label):
        return None
    img[y0:y1, x0:x1] += (contrast * cov * prof)[..., None] * np.array([1.0, 1.0, 1.02], np.float32)
    label[y0:y1, x0:x1][m] = 1
    return _box(m, x0, y0)


def add_dirt(img, label, glass, rng):
    """Small particle with soft edges: bright (scatters light) or dark with a bright rim."""
    diam = rng.uniform(4, 15)
    r = diam / 2
    cx, cy = rng.uniform(20, FRAME - 20, size=2)
    pad = int(r * 2) + 6
    x0, x1 = int(cx) - pad, int(cx) + pad + 1
    y0, y1 = int(cy) - pad, int(cy) + pad + 1
    yy, xx = _YY[y0:y1, x0:x1] - cy, _XX[y0:y1, x0:x1] - cx
    phi = np.arctan2(yy, xx)
    # irregular outline: radius perturbed by a few harmonics, slightly elongated
    rr = r * (1 + 0.18 * np.sin(2 * phi + rng.uniform(0, 6.3)) * rng.uniform(0, 1)
              + 0.12 * np.sin(3 * phi + rng.uniform(0, 6.3)) * rng.uniform(0, 1))
    dist = np.hypot(xx, yy) - rr
    soft = rng.uniform(0.6, 1.8)
    alpha = 1 / (1 + np.exp(dist / soft * 2.5))
    kind = rng.random()
    if kind < 0.72:  # bright particle
        inten = rng.uniform(35, 150) * alpha * (1 - 0.3 * np.clip(-dist / max(r, 1), 0, 1) * rng.uniform(0, 1))
    else:  # dark particle with a bright scattering rim
        rim = np.exp(-0.5 * (dist / 1.2) ** 2)
        inten = rng.uniform(25, 80) * rim - rng.uniform(15, 40) * alpha
    # label = the particle's visible extent: where its contribution is >= 40 % of its peak (for a dark
    # particle that includes its bright rim)
    m = (np.abs(inten) >= 0.4 * np.abs(inten).max()) | (alpha >= 0.5)
    # a few satellite specks belong to the same particle
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.3 else 0):
        sx, sy = rng.uniform(-2.5, 2.5, size=2) * r
        sr = rng.uniform(1.2, 2.2)
        ds = np.hypot(xx - sx, yy - sy) - sr
        a2 = 1 / (1 + np.exp(ds / 0.7 * 2.5))
        inten = inten + rng.uniform(40, 120) * a2
        m |= a2 >= 0.5
    if not _placeable(m, x0, y0, glass, label):
        return None
    img[y0:y1, x0:x1] += inten[..., None].astype(np.float32)
    label[y0:y1, x0:x1][m] = 2
    return _box(m, x0, y0)


def render(rng: np.random.Generator, kinds: list[int] | None = None):
    """One frame. kinds: None = random (half good), else the list of defect classes to place.

    Returns (uint8 RGB 512x512, uint8 label 512x512, defects [{class, name, box}],
    uint8 256x256 'hard negative' map: the glass edge band, where training crops are also centred)."""
    img, glass = glass_background(rng)
    label = np.zeros((FRAME, FRAME), np.uint8)
    if kinds is None:
        kinds = [] if rng.random() < 0.5 else [int(rng.integers(1, 3)) for _ in range(int(rng.integers(1, 5)))]
    defects = []
    for k in kinds:
        for _ in range(30):
            if k == 1:
                box = add_scratch(img, label, glass, rng, faint=rng.random() < 0.25)
            else:
                box = add_dirt(img, label, glass, rng)
            if box is not None:
                defects.append({"class": k, "name": NAMES[k], "box": box})
                break
    # optics: slight blur; sensor: hot pixels (not defects), shot + read noise
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.35, 0.8)))
    for _ in range(int(rng.integers(0, 6))):
        y, x = rng.integers(0, FRAME, size=2)
        img[y, x] += rng.uniform(15, 45)
    sigma = rng.uniform(1.2, 3.2)
    img = img + rng.normal(0, 1, size=img.shape).astype(np.float32) * (sigma + 0.02 * np.sqrt(np.maximum(img, 0)))
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    hard = ((glass > 0.01) & (glass < 0.99)).reshape(SIZE, 2, SIZE, 2).max(axis=(1, 3)).astype(np.uint8)
    return img, label, defects, hard


def to_model(img_rgb: np.ndarray) -> np.ndarray:
    """What lineside feeds the model: INTER_LINEAR stretch to 256x256 (uint8 RGB)."""
    return cv2.resize(img_rgb, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def label_to_model(label: np.ndarray) -> np.ndarray:
    """512 labels -> 256: per 2x2 block the defect class present (max; classes never share a block
    in practice, and if they do the higher class index wins)."""
    return label.reshape(SIZE, 2, SIZE, 2).max(axis=(1, 3))


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------

def build_model():
    import torch
    from torch import nn

    def cbr(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    class TinyUNet(nn.Module):
        """3-level U-Net, 16/32/64 channels. To keep the full-resolution work small (CPU training and
        inference) the decoder adds the upsampled, 1x1-projected coarser features to the skip
        features instead of concatenating them, then applies one 3x3 conv. Bilinear upsampling,
        1x1 head to raw class logits (no softmax)."""

        def __init__(self, nc=len(NAMES), c=(16, 32, 64)):
            super().__init__()
            self.enc1 = nn.Sequential(*cbr(3, c[0]), *cbr(c[0], c[0]))
            self.enc2 = nn.Sequential(nn.MaxPool2d(2), *cbr(c[0], c[1]), *cbr(c[1], c[1]))
            self.enc3 = nn.Sequential(nn.MaxPool2d(2), *cbr(c[1], c[2]), *cbr(c[2], c[2]))
            self.proj3 = nn.Conv2d(c[2], c[1], 1)
            self.proj2 = nn.Conv2d(c[1], c[0], 1)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.dec2 = nn.Sequential(*cbr(c[1], c[1]))
            self.dec1 = nn.Sequential(*cbr(c[0], c[0]))
            self.head = nn.Conv2d(c[0], nc, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(e1)
            e3 = self.enc3(e2)
            d2 = self.dec2(e2 + self.up(self.proj3(e3)))
            d1 = self.dec1(e1 + self.up(self.proj2(d2)))
            return self.head(d1)

    return TinyUNet()


# ------------------------------------------------------------------------------------------------
# Data set
# ------------------------------------------------------------------------------------------------

# Independent random streams, so changing one split's size never changes another split.
STREAM = {"train": 0, "val": 1, "test": 2, "samples": 3, "crops": 10}
# The demo / fixture frames: 4 good, 2 with scratches, 1 with dirt, 1 with both.
SAMPLE_KINDS = [[], [1], [], [2], [], [1, 1], [], [1, 2]]
FIXTURE_SAMPLES = [0, 1, 7]


def write_split(root: Path, split: str, n: int, balanced: bool):
    """Render n frames (balanced: even indices good, odd with 1..4 defects) into root/split."""
    rng = np.random.default_rng([SEED, STREAM[split]])
    d = root / split
    d.mkdir(parents=True, exist_ok=True)
    xs, ys, hs, meta = [], [], [], []
    for i in range(n):
        kinds = None
        if balanced:
            kinds = [] if i % 2 == 0 else [int(rng.integers(1, 3)) for _ in range(int(rng.integers(1, 5)))]
        img, label, defects, hard = render(rng, kinds)
        cv2.imwrite(str(d / f"{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(d / f"{i:04d}_label.png"), label)
        xs.append(to_model(img))
        ys.append(label_to_model(label))
        hs.append(hard)
        meta.append({"file": f"{i:04d}.png", "defects": defects})
    (d / "defects.json").write_text(json.dumps(meta) + "\n")
    return np.stack(xs), np.stack(ys), np.stack(hs), meta


def write_samples(out_root: Path):
    """The 8 demo frames (never trained on), truth.json and the 3 fixture copies."""
    rng = np.random.default_rng([SEED, STREAM["samples"]])
    demo = out_root / "scenarios" / "samples" / "glass"
    fx = out_root / "tests" / "fixtures" / "glass"
    demo.mkdir(parents=True, exist_ok=True)
    fx.mkdir(parents=True, exist_ok=True)
    truth = {}
    labels = {}
    for i, kinds in enumerate(SAMPLE_KINDS):
        while True:  # re-render (same stream) until every requested defect landed on the glass
            img, label, defects, _ = render(rng, list(kinds))
            if sorted(d["class"] for d in defects) == sorted(kinds):
                break
        name = f"glass_{i}.png"
        cv2.imwrite(str(demo / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if i in FIXTURE_SAMPLES:
            shutil.copyfile(demo / name, fx / name)
        truth[name] = {"verdict": "NG" if defects else "OK",
                       "defects": [{"class": d["class"], "name": d["name"], "box": d["box"]} for d in defects]}
        labels[name] = label
    return demo, fx, truth, labels


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------

def train(model, X: np.ndarray, Y: np.ndarray, H: np.ndarray, minutes: float, crop: int, batch: int, lr: float,
          class_weights: list[float], dice_weight: float):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng([SEED, STREAM["crops"]])
    # crop centres: pixels of each defect class (a class is picked first, so small dirt particles get
    # as many crops as long scratches), and the glass edge band (the distractor most like a defect)
    class_px = [[np.argwhere(y == c) for c in range(1, len(NAMES))] for y in Y]
    class_px = [[p for p in cp if len(p)] for cp in class_px]
    hard_px = [np.argwhere(h > 0) for h in H]
    n = len(X)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    w = torch.tensor(class_weights, dtype=torch.float32)
    budget = minutes * 60.0
    t0 = time.time()
    step = 0
    log = []
    half = crop // 2
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0:
            break
        cur = lr * min(1.0, (step + 1) / 30) * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = cur
        xb = np.empty((batch, crop, crop, 3), np.uint8)
        yb = np.empty((batch, crop, crop), np.int64)
        for b in range(batch):
            i = int(rng.integers(0, n))
            u = rng.random()
            centre = None
            if class_px[i] and u < 0.6:  # centre (with jitter) on a defect pixel
                px = class_px[i][int(rng.integers(0, len(class_px[i])))]
                centre = px[int(rng.integers(0, len(px)))]
            elif len(hard_px[i]) and u < 0.8:  # or on the glass edge
                centre = hard_px[i][int(rng.integers(0, len(hard_px[i])))]
            if centre is not None:
                cy, cx = centre
                cy = int(np.clip(cy + rng.integers(-half + 8, half - 8), half, SIZE - half))
                cx = int(np.clip(cx + rng.integers(-half + 8, half - 8), half, SIZE - half))
                y0, x0 = cy - half, cx - half
            else:
                y0, x0 = (int(v) for v in rng.integers(0, SIZE - crop + 1, size=2))
            xi = X[i, y0:y0 + crop, x0:x0 + crop]
            yi = Y[i, y0:y0 + crop, x0:x0 + crop]
            k = int(rng.integers(0, 4))  # flips / 90 degree turns commute with the 2x2 downscale
            xi, yi = np.rot90(xi, k), np.rot90(yi, k)
            if rng.random() < 0.5:
                xi, yi = xi[:, ::-1], yi[:, ::-1]
            xb[b], yb[b] = xi, yi
        x = torch.from_numpy(xb).permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(yb)
        logits = model(x)
        ce = F.cross_entropy(logits, y, weight=w)
        p = logits.softmax(1)
        oh = F.one_hot(y, len(NAMES)).permute(0, 3, 1, 2).float()
        inter = (p[:, 1:] * oh[:, 1:]).sum((0, 2, 3))
        den = p[:, 1:].sum((0, 2, 3)) + oh[:, 1:].sum((0, 2, 3))
        dice = 1 - ((2 * inter + 1) / (den + 1)).mean()
        loss = ce + dice_weight * dice
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0:
            log.append({"step": step, "s": round(time.time() - t0, 1), "lr": cur,
                        "ce": round(ce.item(), 4), "dice": round(dice.item(), 4)})
            print(f"step {step} {time.time() - t0:.0f}s lr {cur:.5f} ce {ce.item():.4f} dice {dice.item():.4f}",
                  flush=True)
    return model.to(memory_format=torch.contiguous_format), step, time.time() - t0, log


def export(model, path: Path):
    import onnx
    import torch

    model.eval()
    x = torch.zeros(1, 3, SIZE, SIZE)
    torch.onnx.export(model, (x,), str(path), input_names=["images"], output_names=["logits"],
                      opset_version=17, do_constant_folding=True, dynamo=False)
    om = onnx.load(str(path))
    meta = {
        "names": "{" + ", ".join(f"{i}: '{n}'" for i, n in enumerate(NAMES)) + "}",
        "task": "segment",
        "imgsz": f"[{SIZE}, {SIZE}]",
        "description": "lineside glass-seg: tiny U-Net, per-pixel class logits (no softmax), cover-glass defects",
        "author": "lineside (tools/models/train_glass_seg.py)",
        "license": "same as the lineside repository",
    }
    del om.metadata_props[:]
    for k, v in meta.items():
        p = om.metadata_props.add()
        p.key, p.value = k, v
    om.producer_name = "lineside-train_glass_seg"
    onnx.checker.check_model(om)
    onnx.save(om, str(path))
    return meta


# ------------------------------------------------------------------------------------------------
# Evaluation (uses tools/reference/seg_ref.py: the exact pre/post-processing the card documents)
# ------------------------------------------------------------------------------------------------

def load_seg_ref():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reference"))
    import seg_ref  # noqa: E402

    return seg_ref


def infer_dir(sess, seg_ref, files):
    inp = sess.get_inputs()[0]
    out = []
    for f in files:
        x, wh = seg_ref.preprocess(str(f), SIZE, SIZE)
        out.append((sess.run(None, {inp.name: x})[0][0], wh))
    return out


def evaluate(results, labels256, metas, seg_ref, grid):
    """Per-class IoU over all frames + image-level / defect-level figures for every min area in grid."""
    nc = len(NAMES)
    conf = np.zeros((nc, nc), np.int64)
    per_frame = []
    for (logits, wh), gt in zip(results, labels256):
        pred = np.argmax(logits, axis=0)
        conf += np.bincount(gt.ravel().astype(np.int64) * nc + pred.ravel(), minlength=nc * nc).reshape(nc, nc)
        regs = seg_ref.regions(logits, NAMES, wh)
        labels = {}
        for c in range(1, nc):
            _, lab = cv2.connectedComponents((pred == c).astype(np.uint8), connectivity=8)
            labels[c] = lab
        per_frame.append((pred, regs, labels))
    iou = {NAMES[c]: float(conf[c, c] / max(1, conf[c, :].sum() + conf[:, c].sum() - conf[c, c])) for c in range(nc)}
    by_n = {}
    for n_min in grid:
        tp = fp = fn = tn = 0
        found = {1: [0, 0], 2: [0, 0]}
        found_any = {1: 0, 2: 0}
        false_regions = 0
        good_false_regions = 0
        wrong = []
        for (pred, regs, labels), gt, meta in zip(per_frame, labels256, metas):
            truth_ng = bool((gt > 0).any())
            kept = [r for r in regs if r["area"] >= n_min]
            ng = len(kept) > 0
            tp += truth_ng and ng
            fn += truth_ng and not ng
            fp += ng and not truth_ng
            tn += not ng and not truth_ng
            if ng != truth_ng:
                wrong.append(meta["file"])
            keep_mask = {c: np.zeros(gt.shape, bool) for c in (1, 2)}
            for c in (1, 2):
                big = [k for k, a in enumerate(np.bincount(labels[c].ravel())) if k > 0 and a >= n_min]
                keep_mask[c] = np.isin(labels[c], big)
            for r in kept:
                x, y, w, h = r["box"]
                c = r["class"]
                sub = keep_mask[c][y:y + h, x:x + w] & (gt[y:y + h, x:x + w] > 0)
                if not sub.any():
                    false_regions += 1
                    good_false_regions += not truth_ng
            for d in meta["defects"]:
                c = d["class"]
                bx, by, bw, bh = d["box"]
                x0, y0, x1, y1 = bx // 2, by // 2, (bx + bw + 1) // 2, (by + bh + 1) // 2
                found[c][1] += 1
                found[c][0] += bool((keep_mask[c][y0:y1, x0:x1] & (gt[y0:y1, x0:x1] == c)).any())
                found_any[c] += bool(((keep_mask[1] | keep_mask[2])[y0:y1, x0:x1] & (gt[y0:y1, x0:x1] == c)).any())
        n = tp + fp + fn + tn
        by_n[n_min] = {
            "accuracy": (tp + tn) / n, "recall": tp / max(1, tp + fn), "false_positive_rate": fp / max(1, fp + tn),
            "tp": tp, "fn": fn, "fp": fp, "tn": tn, "errors": fp + fn, "wrong_frames": wrong,
            "defect_recall": {NAMES[c]: found[c][0] / max(1, found[c][1]) for c in (1, 2)},
            "defect_recall_any_class": {NAMES[c]: found_any[c] / max(1, found[c][1]) for c in (1, 2)},
            "defects": {NAMES[c]: found[c][1] for c in (1, 2)},
            "false_regions": false_regions, "false_regions_on_good_frames": good_false_regions,
        }
    return iou, conf.tolist(), by_n


def choose_min_area(by_n):
    """Fewest validation errors; among ties the median candidate (robust both to noise specks and to
    small particles)."""
    best = min(v["errors"] for v in by_n.values())
    tied = sorted(k for k, v in by_n.items() if v["errors"] == best)
    return tied[(len(tied) - 1) // 2]


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def latency_ms(path: Path, runs: int = 30) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, SIZE, SIZE), dtype=np.float32)
    for _ in range(3):
        sess.run(None, {"images": x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"images": x})
        ts.append((time.perf_counter() - t) * 1000)
    return float(np.median(ts))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-root", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--work", default="/tmp/glass-seg")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=60)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weights", default="1,3,3", help="cross-entropy class weights")
    ap.add_argument("--dice", type=float, default=1.0, help="weight of the soft dice term (classes 1, 2)")
    ap.add_argument("--card-only", action="store_true",
                    help="only rewrite models/glass-seg/README.md from the committed metrics.json")
    a = ap.parse_args()
    if a.card_only:
        dst = Path(a.out_root) / "models" / "glass-seg"
        write_card(dst, dst / "glass_seg.onnx", json.loads((dst / "metrics.json").read_text()))
        return 0

    import onnx
    import onnxruntime as ort
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    out_root, work = Path(a.out_root), Path(a.work)
    if work.exists():
        shutil.rmtree(work)
    t0 = time.time()
    X, Y, H, _ = write_split(work / "data", "train", a.train, balanced=False)
    _, Yv, _, meta_v = write_split(work / "data", "val", a.val, balanced=True)
    _, Yt, _, meta_t = write_split(work / "data", "test", a.test, balanced=True)
    render_s = time.time() - t0
    frac = {NAMES[c]: float((Y == c).mean()) for c in range(len(NAMES))}
    print(f"rendered in {render_s:.0f}s; train pixel fractions {frac}", flush=True)

    model = build_model()
    n_params = sum(p.numel() for p in model.parameters())
    weights = [float(v) for v in a.weights.split(",")]
    model, steps, train_s, log = train(model, X, Y, H, a.minutes, a.crop, a.batch, a.lr, weights, a.dice)

    dst = out_root / "models" / "glass-seg"
    dst.mkdir(parents=True, exist_ok=True)
    final = dst / "glass_seg.onnx"
    meta = export(model, final)
    # the export must match torch
    with torch.no_grad():
        xt = torch.from_numpy(np.random.default_rng(1).random((1, 3, SIZE, SIZE), dtype=np.float32))
        ref = model(xt).numpy()
    sess = ort.InferenceSession(str(final), providers=["CPUExecutionProvider"])
    export_diff = float(np.abs(sess.run(None, {"images": xt.numpy()})[0] - ref).max())
    print(f"onnx vs torch max |diff| {export_diff:.2e}", flush=True)

    seg_ref = load_seg_ref()
    files_v = [work / "data" / "val" / m["file"] for m in meta_v]
    files_t = [work / "data" / "test" / m["file"] for m in meta_t]
    _, _, by_n_val = evaluate(infer_dir(sess, seg_ref, files_v), Yv, meta_v, seg_ref, MIN_AREA_GRID)
    min_area = choose_min_area(by_n_val)
    iou, conf, by_n_test = evaluate(infer_dir(sess, seg_ref, files_t), Yt, meta_t, seg_ref, MIN_AREA_GRID)
    test = by_n_test[min_area]
    print("val errors by min area", {k: v["errors"] for k, v in by_n_val.items()}, "-> min_area", min_area)
    print("test IoU", iou)
    print("test at min_area", json.dumps(test))

    demo, fx, truth, sample_labels = write_samples(out_root)
    sample_res = infer_dir(sess, seg_ref, [demo / k for k in truth])
    sample_check = {}
    for (logits, wh), (name, t) in zip(sample_res, truth.items()):
        regs = [r for r in seg_ref.regions(logits, NAMES, wh) if r["area"] >= min_area]
        got = "NG" if regs else "OK"
        sample_check[name] = {"expected": t["verdict"], "got": got,
                              "regions": [(r["name"], r["box_frame"], r["area"]) for r in regs]}
        print("sample", name, t["verdict"], got, [(r["name"], r["box"], r["area"]) for r in regs])
    doc = {
        "model": "models/glass-seg/glass_seg.onnx",
        "frame_size": [FRAME, FRAME],
        "rule": f"NG if any scratch/dirt region (8-connected argmax component at {SIZE}x{SIZE}) has >= {min_area} pixels",
        "min_area_model_px": min_area,
        "box_format": "[x, y, w, h] in frame pixels, the defect's ground-truth pixels (inclusive extent)",
        "frames": truth,
    }
    (demo / "truth.json").write_text(json.dumps(doc, indent=1) + "\n")

    om = onnx.load(str(final))
    ins = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in om.graph.input]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in om.graph.output]
    ops = sorted({n.op_type for n in om.graph.node})
    lat = latency_ms(final)
    m = {
        "seed": SEED, "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
        "opencv": cv2.__version__, "numpy": np.__version__, "opset": 17,
        "sha256": sha256(final), "bytes": final.stat().st_size, "params": n_params, "ops": ops,
        "inputs": ins, "outputs": outs, "metadata": meta,
        "train_frames": a.train, "val_frames": a.val, "test_frames": a.test,
        "train_pixel_fraction": frac,
        "minutes": a.minutes, "train_seconds": round(train_s, 1), "render_seconds": round(render_s, 1),
        "steps": steps, "crop": a.crop, "batch": a.batch, "lr": a.lr, "ce_weights": weights, "dice_weight": a.dice,
        "export_max_abs_diff": export_diff, "ort_latency_ms_1thread": round(lat, 2),
        "min_area_model_px": min_area, "min_area_frame_px": min_area * (FRAME // SIZE) ** 2,
        "test": {"iou": iou, "confusion_gt_rows_pred_cols": conf, **test},
        "test_by_min_area": {str(k): {kk: vv for kk, vv in v.items() if kk != "wrong_frames"}
                             for k, v in by_n_test.items()},
        "val_by_min_area": {str(k): {kk: vv for kk, vv in v.items() if kk != "wrong_frames"}
                            for k, v in by_n_val.items()},
        "samples": sample_check,
        "train_log": log[-5:],
    }
    (dst / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    write_card(dst, final, m)
    print(json.dumps({k: m[k] for k in ("sha256", "bytes", "params", "train_seconds", "steps", "min_area_model_px")}))
    return 0


def write_card(dst: Path, final: Path, m: dict) -> None:
    t = m["test"]
    n = m["min_area_model_px"]
    ok = sum(v["expected"] == v["got"] for v in m["samples"].values())
    rows_n = "\n".join(
        f"| {k} | {v['accuracy']:.3f} | {v['recall']:.3f} | {v['false_positive_rate']:.3f} "
        f"| {v['defect_recall']['scratch']:.3f} | {v['defect_recall']['dirt']:.3f} |"
        for k, v in m["test_by_min_area"].items())
    card = f"""# glass-seg: tiny U-Net for cover-glass defects, trained from scratch on synthetic renders

Catalogue scenario 3 "cover-glass": phone cover glass under dark-field / low-angle light; per-pixel
classes background / scratch / dirt.

- File: `glass_seg.onnx` ({m['bytes'] / 1e3:.0f} kB, {m['params']} parameters), sha256 `{m['sha256']}`
- Built by `tools/models/train_glass_seg.py` (seed {m['seed']}); torch {m['torch']}, onnx {m['onnx']},
  onnxruntime {m['onnxruntime']}, opencv {m['opencv']}; ONNX opset 17 (`torch.onnx.export`, TorchScript
  exporter, constant folding, BatchNorm folded into the convolutions). Operators: {', '.join(m['ops'])}.
- Architecture: 3-level U-Net, 16/32/64 channels (two 3x3 conv+BN+ReLU per encoder level, max-pool down,
  bilinear up, decoder adds the 1x1-projected coarser features to the skip and applies one 3x3 conv),
  1x1 head to 3 raw logits. Random initialisation: **trained from scratch, no downloaded or pretrained
  weights, no external data.**
- Licence: ours. The weights were trained by our script on renders made by our script; the same licence
  as this repository applies.
- Classes (`names` metadata, Ultralytics' format): `{m['metadata']['names']}`. Other metadata:
  `task` = `segment`, `imgsz` = `[256, 256]`.
- Data: {m['train_frames']} train / {m['val_frames']} validation / {m['test_frames']} test renders, 512x512 RGB
  (validation and test: half good, half with 1..4 defects; train: about half good). Re-rendered bit for
  bit from the seed into `/tmp/glass-seg`, not committed. Glass 22..70 grey levels with an illumination
  gradient, vignetting, faint broad reflections and smudges, sometimes the glass edge with the holder
  beyond it, hot pixels, shot + read noise, slight blur. Scratches: bright lines/arcs 1.6..3.2 px wide
  (at 512), 25..260 px long, a quarter of them faint (+22..45 grey levels), some broken. Dirt: particles
  4..15 px, soft edges, mostly bright, some dark with a bright rim, some with satellite specks.
  Reflections, smudges, the glass edge and hot pixels are labelled background.
- Training: CPU (2 shared cores, `nice -n 19`), time budget {m['minutes']:g} min ({m['train_seconds']:.0f} s,
  {m['steps']} steps), random {m['crop']}x{m['crop']} crops of the 256x256 model input (in a frame with defects 60 %
  are centred near a defect pixel of a randomly picked class; in a frame showing the glass edge the
  remaining crops are centred on the edge with probability 0.2 / 0.8 of the crop draw, about 1 crop in 6
  overall; the rest uniform), flips and 90 degree turns, batch {m['batch']}, AdamW lr {m['lr']:g} with warm-up and cosine decay,
  loss = cross-entropy with class weights {m['ce_weights']} + {m['dice_weight']:g} x soft dice (scratch, dirt).
  Labels at 256 are the 2x2 max of the 512 labels (the 2x INTER_LINEAR downscale averages exactly those
  blocks), so the model is trained on exactly what inference sees.

## I/O

- input `{m['inputs'][0][0]}` float32 {m['inputs'][0][1]}: RGB, NCHW, values /255.
- output `{m['outputs'][0][0]}` float32 {m['outputs'][0][1]}: raw per-pixel class logits (no softmax in the graph).
- Preprocessing: frame (512x512) → `cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_LINEAR)` (plain
  stretch, no letterbox) → float32 /255 → NCHW. In lineside: `fit = "stretch"`, `interpolation = "linear"`, `color = "rgb"`,
  `layout = "nchw"`, `scale = 0.00392156862745098` (1/255), mean 0, std 1.
- Post-processing: softmax over the 3 classes → argmax per pixel → for each class c ≠ 0 the 8-connected
  components of (argmax == c) → one region per component: class, box (model pixels; × 2 for the 512
  frame), area (pixels), mean softmax probability of class c over the component. Argmax ties go to
  the lowest class index. Regions are ordered by class, then by the component's first pixel in
  row-major order (top-most row, then left-most pixel of that row).
  Reference: `tools/reference/seg_ref.py` (onnxruntime + numpy + OpenCV; runs in `.cache/venv`).
- Verdict rule used for the figures below: **NG if any scratch/dirt region has ≥ {n} pixels at 256x256
  ({m['min_area_frame_px']} pixels of a 512x512 frame)**, chosen as the median of the minimum areas with the
  fewest errors on the {m['val_frames']} validation renders (not the test renders); there the
  candidates {', '.join(k for k, v in m['val_by_min_area'].items() if v['errors'] == min(x['errors'] for x in m['val_by_min_area'].values()))} px tied with {min(x['errors'] for x in m['val_by_min_area'].values())} errors.
- Speed: {m['ort_latency_ms_1thread']:.1f} ms median per frame, onnxruntime {m['onnxruntime']} CPU, 1 thread, on
  the shared build machine.

## Quality on the {m['test_frames']} held-out test renders (half good), at 256x256

| class | IoU |
|---|---|
""" + "\n".join(f"| {k} | {v:.4f} |" for k, v in t["iou"].items()) + f"""

Image level (min area {n} px): accuracy {t['accuracy']:.3f}, recall (NG found) {t['recall']:.3f},
false-positive rate (good frames flagged) {t['false_positive_rate']:.3f}
(TP {t['tp']}, FN {t['fn']}, FP {t['fp']}, TN {t['tn']}).
Defect level: {t['defect_recall']['scratch']:.3f} of {t['defects']['scratch']} scratches and
{t['defect_recall']['dirt']:.3f} of {t['defects']['dirt']} dirt particles overlap a kept region of their class;
{t['false_regions']} kept regions touch no defect ({t['false_regions_on_good_frames']} of them on good frames).

Other minimum areas (test renders):

| min area (px at 256) | accuracy | recall | FP rate | scratch found | dirt found |
|---|---|---|---|---|---|
{rows_n}

Demo frames `scenarios/samples/glass/glass_*.png` (512x512, rendered from their own stream, never
trained on; `truth.json` has the expected verdicts and boxes): {ok}/8 verdicts right with the rule above.
Three of them are copied to `tests/fixtures/glass/` for the parity test; `tests/fixtures/glass/reference.json`
is `seg_ref.py`'s output for them.

These are synthetic renders: the figures say the model learned the renderer's defects, not that it
works on a real line. Real cover glass needs real frames (and probably fine-tuning) before use. A
broken (dashed) scratch comes out as one region per dash (`glass_5.png`: 14 regions); a consumer that
wants one defect per scratch has to merge nearby regions itself.

## How the renders and training got here

1. First run (8 min): image-level accuracy 0.97 at 4 px, but 3 of 50 good test frames were flagged, all
   on the glass edge (bright rim next to the dark holder, present in only ~30 % of frames and rarely in
   a random crop); dirt IoU 0.55. Defects could also land on the holder, drawn in the frame but labelled
   background, which taught the model contradicting things.
2. Defects are now placed only fully on the glass and at least 6 px apart; some of the training
   crops are centred on the glass edge (hard negatives, about 1 in 6); crop centres pick a defect class first so small
   particles get as many crops as long scratches; dashes of broken scratches are at least ~13 px long.
   Result: no false positives, but dirt IoU still 0.55: the model marked the whole visible particle
   (a dark particle's bright rim included) while the label stopped at the particle's 50 % outline.
3. Dirt is now labelled by its visible extent (contribution >= 40 % of its peak, rim included): dirt
   IoU 0.87, the figures above. (Each step re-rendered the data, so the earlier figures are on slightly
   different test renders.)
"""
    (dst / "README.md").write_text(card)


if __name__ == "__main__":
    sys.exit(main())
