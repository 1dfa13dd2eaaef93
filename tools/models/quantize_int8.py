#!/usr/bin/env python3
"""INT8 copies of the bundled models: ONNX Runtime static quantization (QDQ), calibrated on
sample frames, so a line box without a GPU runs them on its integer units (VNNI on x86-64,
dot-product instructions on ARM64).

    python3 tools/models/quantize_int8.py classifier|detector|features [--out DIR] [--work DIR]

- classifier: models/efficientnet-lite0/efficientnet_lite0.onnx, calibrated on 64 good
  images of the catalogue's fitted rows (data/catalogue/*/train; rendered at set-up), never
  on the photos or test images the agreement is measured on.
- detector: models/yolo-parts/yolo_parts.onnx, calibrated on the first 64 of the 200
  training renders of tools/models/train_yolo_parts.py (re-rendered bit for bit from its
  seed into --work); its 40 held-out renders are written there too for `lineside eval`.
- features: models/efficientnet-lite0/efficientnet_lite0_features.onnx (the PatchCore
  backbone), calibrated on the same images as the classifier.

Per-channel int8 weights, uint8 activations (MinMax calibration), QDQ format, so any
ONNX Runtime build runs the result and fuses it into integer kernels. The detector's box
and class decoding at the end (after the last convolutions) stays float: quantizing the
concatenated pixel coordinates and sigmoid scores into one uint8 range costs boxes their
precision (the same holds for the classifier's logits and the backbone's features: every
model's nodes after its last convolution stay float). Calibration preprocessing mirrors each scenario's (the exact resampling does not
matter for ranges). The result is deterministic: the same inputs give the same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_IMAGES = 64


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def catalogue_good_images(n: int) -> list[Path]:
    """Good parts the fitted catalogue rows learn from, round-robin over rows so every
    texture is represented."""
    rows = sorted((ROOT / "data/catalogue").glob("*/train"))
    if not rows:
        sys.exit("data/catalogue/*/train is missing: run `bash scripts/setup.sh` first (it renders the catalogue)")
    lists = [sorted(p for p in r.rglob("*.png")) for r in rows]
    out: list[Path] = []
    i = 0
    while len(out) < n and any(i < len(l) for l in lists):
        for l in lists:
            if i < len(l) and len(out) < n:
                out.append(l[i])
        i += 1
    return out


def center_crop_224(path: Path) -> np.ndarray:
    """The demo's preprocessing: shorter side to 256, central 224x224, (v/255 - 0.498)/0.502."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = 256 / min(w, h)
    img = img.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
    w, h = img.size
    x, y = (w - 224) // 2, (h - 224) // 2
    a = np.asarray(img.crop((x, y, x + 224, y + 224)), dtype=np.float32) / 255.0
    a = (a - 0.498) / 0.502
    return a.transpose(2, 0, 1)[None].copy()


def stretch(path: Path, size: int) -> np.ndarray:
    """The fitted rows' preprocessing: the image stretched to the input,
    (v/255 - 0.498) / 0.502."""
    img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    a = (np.asarray(img, dtype=np.float32) / 255.0 - 0.498) / 0.502
    return a.transpose(2, 0, 1)[None].copy()


def letterbox(path: Path, size: int) -> np.ndarray:
    """Ultralytics' LetterBox: scale to fit, centred, pad 114, RGB / 255."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    r = min(size / w, size / h)
    nw, nh = round(w * r), round(h * r)
    canvas = Image.new("RGB", (size, size), (114, 114, 114))
    canvas.paste(img.resize((nw, nh), Image.BILINEAR), ((size - nw) // 2, (size - nh) // 2))
    a = np.asarray(canvas, dtype=np.float32) / 255.0
    return a.transpose(2, 0, 1)[None].copy()


class Frames(CalibrationDataReader):
    def __init__(self, input_name: str, tensors: list[np.ndarray]):
        self.items = iter([{input_name: t} for t in tensors])

    def get_next(self):
        return next(self.items, None)


def input_of(model: Path) -> tuple[str, list[int]]:
    m = onnx.load(str(model), load_external_data=False)
    i = m.graph.input[0]
    return i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]


def float_tail(model: Path) -> list[str]:
    """Nodes after the last Conv on every path to an output, left in float: the
    detector's box decoding (DFL softmax, anchors, strides) and class sigmoids, the
    classifier's pooling and fully connected layer, the backbone's last residual adds.
    Quantizing an output into one uint8 range costs boxes their precision and makes
    close logits tie; these nodes are a small share of the work."""
    m = onnx.load(str(model), load_external_data=False)
    producers = {o: n for n in m.graph.node for o in n.output}
    keep: set[str] = set()
    stack = [o.name for o in m.graph.output]
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        n = producers.get(t)
        if n is None or n.name in seen:
            continue
        seen.add(n.name)
        # The DFL's fixed 1x1 convolution (expectation over 16 bins) is part of the box
        # decoding, not a learned feature: it stays float with the rest of the tail.
        if n.op_type == "Conv" and "dfl" not in n.name:
            continue
        keep.add(n.name)
        stack.extend(n.input)
    return sorted(keep)


def render_parts(work: Path) -> tuple[list[Path], Path]:
    """The detector's 200 training and 40 held-out renders, bit for bit from the training
    script's seed; the held-out ones with YOLO labels beside them (`lineside eval`)."""
    sys.path.insert(0, str(ROOT / "tools/models"))
    import train_yolo_parts as parts  # noqa: E402  (renders only; ultralytics is not imported)

    data = work / "yolo-parts"
    if not (data / "images/val/0039.png").exists():
        parts.make_dataset(data, 200, 40)
    val = work / "yolo-parts-val"
    if val.exists():
        shutil.rmtree(val)
    val.mkdir(parents=True)
    for img in sorted((data / "images/val").glob("*.png")):
        shutil.copy(img, val / img.name)
        shutil.copy(data / "labels/val" / (img.stem + ".txt"), val / (img.stem + ".txt"))
    train = sorted((data / "images/train").glob("*.png"))[:CALIBRATION_IMAGES]
    return train, val


METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}


def quantize(
    src: Path, dst: Path, tensors: list[np.ndarray], exclude: list[str], method: str
) -> dict:
    name, _ = input_of(src)
    pre = dst.with_suffix(".pre.onnx")
    # Shape inference and graph clean-up first, as ONNX Runtime recommends.
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(dst),
        Frames(name, tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=METHODS[method],
        nodes_to_exclude=exclude,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )
    pre.unlink()
    # Keep the metadata (class names, task) the float model carries.
    f, q = onnx.load(str(src)), onnx.load(str(dst))
    del q.metadata_props[:]
    q.metadata_props.extend(f.metadata_props)
    onnx.save(q, str(dst))
    return {
        "source": str(src.relative_to(ROOT)),
        "source_sha256": sha256(src),
        "file": str(dst.relative_to(ROOT)) if dst.is_relative_to(ROOT) else str(dst),
        "sha256": sha256(dst),
        "bytes": dst.stat().st_size,
        "calibration_images": len(tensors),
        "calibration_method": method,
        "float_nodes": exclude,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["classifier", "detector", "features"])
    ap.add_argument("--out", type=Path, help="output .onnx (default: beside the float model, *_int8.onnx)")
    ap.add_argument("--method", choices=sorted(METHODS), default="minmax", help="activation range calibration")
    ap.add_argument("--work", type=Path, default=ROOT / "out/int8", help="scratch for renders")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.model == "classifier":
        src = ROOT / "models/efficientnet-lite0/efficientnet_lite0.onnx"
        tensors = [center_crop_224(p) for p in catalogue_good_images(CALIBRATION_IMAGES)]
        exclude = float_tail(src)
        extra = {}
    elif a.model == "features":
        src = ROOT / "models/efficientnet-lite0/efficientnet_lite0_features.onnx"
        _, shape = input_of(src)
        size = shape[2] if len(shape) == 4 and shape[2] > 0 else 256
        tensors = [stretch(p, size) for p in catalogue_good_images(CALIBRATION_IMAGES)]
        exclude = float_tail(src)
        extra = {}
    else:
        src = ROOT / "models/yolo-parts/yolo_parts.onnx"
        _, shape = input_of(src)
        train, val = render_parts(a.work)
        tensors = [letterbox(p, shape[2]) for p in train]
        exclude = float_tail(src)
        extra = {"held_out": str(val)}
    dst = a.out or src.with_name(src.stem + "_int8.onnx")
    info = quantize(src, dst, tensors, exclude, a.method)
    info.update(extra)
    (a.work / f"{a.model}.quantize.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
