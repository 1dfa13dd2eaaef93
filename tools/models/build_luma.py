#!/usr/bin/env python3
"""Build models/luma/luma.onnx: the dense first stage of the classical heads.

The golden-reference and measurement heads work on a smoothed luminance plane at frame
resolution. ONNX Runtime computes it (multi-threaded, on whichever execution provider the
scenario picks), so those heads share the data path of every other head: frame ->
preprocess -> ORT -> head. The graph has no learned weights:

  input  `image` float32 [1, 3, H, W], RGB scaled to 0..1 (H, W dynamic)
  output `luma`  float32 [1, 1, H, W], 0..1:
         Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), then a separable Gaussian blur,
         sigma 1.0 px, 5 taps, with edge-replicated borders (so borders do not darken).

The blur removes sensor noise before registration and edge finding without moving edges
(a symmetric kernel keeps an edge's sub-pixel position).

Build (any machine; only the `onnx` package is needed, not PyTorch):
  python3 -m venv /work/.venvs/onnx && /work/.venvs/onnx/bin/pip install onnx==1.17.0 numpy
  /work/.venvs/onnx/bin/python tools/models/build_luma.py
It prints the file's sha256 for the model card (models/luma/README.md).
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIGMA = 1.0
TAPS = 5


def gaussian_taps(sigma: float, taps: int) -> np.ndarray:
    r = taps // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def build() -> onnx.ModelProto:
    k = gaussian_taps(SIGMA, TAPS)
    r = TAPS // 2
    inits = [
        numpy_helper.from_array(
            np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 3, 1, 1), "bt601"
        ),
        numpy_helper.from_array(k.reshape(1, 1, TAPS, 1), "gauss_v"),
        numpy_helper.from_array(k.reshape(1, 1, 1, TAPS), "gauss_h"),
        # Pad order: [n0, c0, h0, w0, n1, c1, h1, w1].
        numpy_helper.from_array(np.array([0, 0, r, r, 0, 0, r, r], np.int64), "pads"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "bt601"], ["y"], name="luminance"),
        helper.make_node("Pad", ["y", "pads"], ["y_pad"], mode="edge", name="replicate_border"),
        helper.make_node("Conv", ["y_pad", "gauss_v"], ["y_v"], name="blur_vertical"),
        helper.make_node("Conv", ["y_v", "gauss_h"], ["luma"], name="blur_horizontal"),
    ]
    graph = helper.make_graph(
        nodes,
        "luma",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("luma", TensorProto.FLOAT, [1, 1, "height", "width"])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="lineside tools/models/build_luma.py",
    )
    model.ir_version = 8
    for key, value in {
        "description": "BT.601 luminance + Gaussian blur (sigma 1, 5 taps), edge-replicated",
        "input_scale": "RGB 0..1",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(root, "models", "luma", "luma.onnx")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    data = build().SerializeToString()
    with open(out, "wb") as f:
        f.write(data)
    print(f"{out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
