#!/usr/bin/env python3
"""Train a small YOLOv8n "parts" detector from scratch on synthetic renders and export it to ONNX.

Writes, relative to the repository root (or --out-root):
  models/yolo-parts/yolo_parts.onnx      Ultralytics ONNX export, input images [1,3,S,S] float32 RGB /255,
                                          output0 [1, 4+nc, N] (cx, cy, w, h in input pixels + class scores)
  models/yolo-parts/README.md             model card: provenance, licences, sha256, I/O, preprocessing, mAP50
  models/yolo-parts/metrics.json          ultralytics val metrics on the held-out renders
  tests/fixtures/yolo/render_*.png        three held-out renders used by the parity test
  scenarios/samples/screws/plate_*.png    the first eight held-out renders (+ labels), screw demo
The data set itself is rendered into --work (default /tmp/yolo-parts), not committed: it is
re-created bit for bit from the fixed seed.

Classes: 0 "screw" (round head with a cross slot), 1 "hex" (hexagonal bolt head), on a brushed
metal plate, 320x320 renders, objects 14..40 px in radius.

Run with the throwaway torch environment (nothing is downloaded: the network model is built from
ultralytics' bundled yolov8n.yaml, no pretrained weights, fonts are not fetched, AutoInstall is off):

  nice -n 19 /work/.venvs/torch/bin/pip install ultralytics==8.4.190
  nice -n 19 /work/.venvs/torch/bin/python tools/models/train_yolo_parts.py --minutes 10
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

# Keep ultralytics off the network before it is imported.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "True")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

SEED = 20261127
SIZE = 320
NAMES = ["screw", "hex"]


def plate(rng: np.random.Generator) -> Image.Image:
    base = rng.uniform(120, 190)
    tint = rng.uniform(-12, 12, size=3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    ang = rng.uniform(0, math.pi)
    grad = (np.cos(ang) * xx + np.sin(ang) * yy) / SIZE * rng.uniform(-30, 30)
    brushed = rng.normal(0, 1, size=(SIZE, 1)).astype(np.float32) * rng.uniform(2, 8)
    noise = rng.normal(0, 3, size=(SIZE, SIZE)).astype(np.float32)
    v = base + grad + brushed + noise
    img = np.clip(v[..., None] + tint[None, None, :], 0, 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def draw_screw(d: ImageDraw.ImageDraw, cx, cy, r, rng):
    shade = int(rng.uniform(40, 95))
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(shade, shade, shade + 5), outline=(20, 20, 20), width=2)
    hi = shade + 45
    d.ellipse([cx - r * 0.7, cy - r * 0.7, cx + r * 0.4, cy + r * 0.4], fill=(hi, hi, hi))
    w = max(2, int(r * 0.18))
    a = rng.uniform(0, math.pi)
    for k in (0, 1):
        t = a + k * math.pi / 2
        dx, dy = math.cos(t) * r * 0.75, math.sin(t) * r * 0.75
        d.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=(15, 15, 15), width=w)


def draw_hex(d: ImageDraw.ImageDraw, cx, cy, r, rng):
    shade = int(rng.uniform(185, 235))
    a = rng.uniform(0, math.pi / 3)
    pts = [(cx + r * math.cos(a + i * math.pi / 3), cy + r * math.sin(a + i * math.pi / 3)) for i in range(6)]
    d.polygon(pts, fill=(shade, shade - 10, shade - 40), outline=(40, 35, 20), width=2)
    ri = r * 0.45
    d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=(shade - 70, shade - 75, shade - 90))


def render(rng: np.random.Generator):
    img = plate(rng)
    d = ImageDraw.Draw(img)
    n = int(rng.integers(1, 9))
    placed, labels = [], []
    for _ in range(n * 20):
        if len(placed) >= n:
            break
        cls = int(rng.integers(0, 2))
        r = float(rng.uniform(14, 40))
        cx, cy = float(rng.uniform(r + 2, SIZE - r - 2)), float(rng.uniform(r + 2, SIZE - r - 2))
        if any(math.hypot(cx - px, cy - py) < r + pr + 4 for px, py, pr in placed):
            continue
        placed.append((cx, cy, r))
        # soft shadow
        d.ellipse([cx - r + 3, cy - r + 4, cx + r + 3, cy + r + 4], fill=(70, 70, 70))
        (draw_screw if cls == 0 else draw_hex)(d, cx, cy, r, rng)
        labels.append((cls, cx, cy, 2 * r, 2 * r))
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.0))))
    return img, labels


def make_dataset(root: Path, n_train: int, n_val: int) -> Path:
    rng = np.random.default_rng(SEED)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, labels = render(rng)
            img.save(root / "images" / split / f"{i:04d}.png")
            with open(root / "labels" / split / f"{i:04d}.txt", "w") as f:
                for c, cx, cy, w, h in labels:
                    f.write(f"{c} {cx / SIZE:.6f} {cy / SIZE:.6f} {w / SIZE:.6f} {h / SIZE:.6f}\n")
    yaml = root / "parts.yaml"
    yaml.write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    )
    return yaml


def sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ultralytics_offline(script: str) -> None:
    """Keeps ultralytics off the network: no settings sync, no font fetch (fonts are only used
    for plots), and any other download attempt is an error; local checkpoints still load."""
    import ultralytics.data.utils as du
    import ultralytics.nn.tasks as tasks
    import ultralytics.utils.checks as uc
    import ultralytics.utils.downloads as dl
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False})
    du.check_font = lambda *a_, **k_: None
    uc.check_font = lambda *a_, **k_: None

    def no_download(*args, **kwargs):
        raise RuntimeError(f"{script}: ultralytics tried to download {args} {kwargs}")

    def local_only(file, *args, **kwargs):  # ultralytics routes local checkpoints through here too
        if Path(str(file)).exists():
            return str(file)
        return no_download(file, *args, **kwargs)

    dl.safe_download = no_download
    tasks.attempt_download_asset = local_only


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-root", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--work", default="/tmp/yolo-parts")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=40)
    a = ap.parse_args()

    out_root = Path(a.out_root)
    work = Path(a.work)
    if work.exists():
        shutil.rmtree(work)
    yaml = make_dataset(work / "data", a.train, a.val)

    import torch
    import ultralytics
    from ultralytics import YOLO

    ultralytics_offline("train_yolo_parts.py")

    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = YOLO("yolov8n.yaml")  # architecture only, random init
    t0 = time.time()
    model.train(
        data=str(yaml), imgsz=a.imgsz, epochs=300, time=a.minutes / 60.0, batch=16, workers=0,
        device="cpu", seed=SEED, deterministic=True, plots=False, amp=False, project=str(work / "runs"),
        name="train", exist_ok=True, patience=1000, verbose=False, fliplr=0.5, mosaic=1.0, close_mosaic=3,
    )
    train_s = time.time() - t0
    best = work / "runs" / "train" / "weights" / "best.pt"
    model = YOLO(str(best))
    metrics = model.val(data=str(yaml), imgsz=a.imgsz, batch=8, device="cpu", plots=False, workers=0,
                        project=str(work / "runs"), name="val", exist_ok=True)
    m = {"mAP50": float(metrics.box.map50), "mAP50-95": float(metrics.box.map),
         "precision": float(metrics.box.mp), "recall": float(metrics.box.mr),
         "per_class_mAP50-95": {NAMES[i]: float(v) for i, v in enumerate(metrics.box.maps[: len(NAMES)])}}
    onnx_path = Path(model.export(format="onnx", opset=17, imgsz=a.imgsz, simplify=False, dynamic=False))

    dst = out_root / "models" / "yolo-parts"
    dst.mkdir(parents=True, exist_ok=True)
    final = dst / "yolo_parts.onnx"
    shutil.copyfile(onnx_path, final)

    # held-out renders for tests and the screw demo (val images, never trained on)
    fx = out_root / "tests" / "fixtures" / "yolo"
    fx.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        shutil.copyfile(work / "data" / "images" / "val" / f"{i:04d}.png", fx / f"render_{i}.png")
        shutil.copyfile(work / "data" / "labels" / "val" / f"{i:04d}.txt", fx / f"render_{i}.txt")
    # the screw-count demo (scenarios/catalogue/10-screw-locking.toml): the first eight val renders
    demo = out_root / "scenarios" / "samples" / "screws"
    demo.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        shutil.copyfile(work / "data" / "images" / "val" / f"{i:04d}.png", demo / f"plate_{i}.png")
        shutil.copyfile(work / "data" / "labels" / "val" / f"{i:04d}.txt", demo / f"plate_{i}.txt")

    import onnx

    om = onnx.load(str(final))
    meta = {p.key: p.value for p in om.metadata_props}
    ins = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in om.graph.input]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in om.graph.output]
    m.update({"train_seconds": train_s, "imgsz": a.imgsz, "train_images": a.train, "val_images": a.val,
              "ultralytics": ultralytics.__version__, "torch": torch.__version__, "seed": SEED,
              "sha256": sha256(final), "inputs": ins, "outputs": outs, "metadata": meta})
    (dst / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")

    card = f"""# yolo-parts: YOLOv8n trained from scratch on synthetic screw/hex renders

- File: `yolo_parts.onnx` ({final.stat().st_size / 1e6:.1f} MB), sha256 `{m['sha256']}`
- Built by `tools/models/train_yolo_parts.py` (seed {SEED}); ultralytics {ultralytics.__version__}, torch {torch.__version__}, ONNX opset 17, `simplify=False`.
- Architecture: ultralytics' bundled `yolov8n.yaml` (nc={len(NAMES)}), random initialisation. **No pretrained weights were downloaded or used.**
- Licences: the ultralytics training/export code is AGPL-3.0 (it is only used offline by the script; none of it ships in lineside).
  The weights are ours: trained from scratch on renders made by our script; the same licence as this repository applies.
- Classes (`names` metadata): {', '.join(f'{i}={n}' for i, n in enumerate(NAMES))}
- Data: {a.train} train / {a.val} val renders, {SIZE}x{SIZE}, brushed plate with 1..8 parts (radius 14..40 px), YOLO txt labels.
  Re-rendered bit for bit from the seed; not committed. Three val renders are committed as `tests/fixtures/yolo/render_*.png`.
- Training: CPU (2 shared cores), time budget {a.minutes:.0f} min ({train_s:.0f} s actual), imgsz {a.imgsz}, batch 16, default ultralytics augmentation.

## I/O

- input `{ins[0][0]}` float32 {ins[0][1]}: RGB, NCHW, values /255.
- output `{outs[0][0]}` float32 {outs[0][1]}: per anchor (cx, cy, w, h) in input pixels, then {len(NAMES)} class scores (sigmoid, no objectness).
- Preprocessing: Ultralytics LetterBox (scale to fit, centred, pad value 114, cv2 INTER_LINEAR) → lineside `fit = "letterbox"`, `pad_value = 114`, `interpolation = "linear"`.
- Post-processing: confidence 0.25, class-aware NMS IoU 0.7, max 300 detections (ultralytics predict defaults), boxes scaled back to the frame.

## Quality on the {a.val} held-out renders (`model.val`, ultralytics' own metric)

| metric | value |
|---|---|
| mAP50 | {m['mAP50']:.4f} |
| mAP50-95 | {m['mAP50-95']:.4f} |
| precision | {m['precision']:.4f} |
| recall | {m['recall']:.4f} |
"""
    (dst / "README.md").write_text(card)
    print(json.dumps(m, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
