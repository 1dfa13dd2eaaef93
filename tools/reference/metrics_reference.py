#!/usr/bin/env python3
"""Reference values for lineside's quality metrics, computed by the libraries QA trusts.

    /work/.venvs/torch/bin/python tools/reference/metrics_reference.py > tests/fixtures/metrics_reference.json

Needs numpy, scikit-learn (roc_auc_score) and anomalib (AUPRO) — the torch environment
described in models/efficientnet-lite0/README.md, not the light reference venv: the result
is committed as a fixture, so tests never need these libraries. Inputs are generated here
with a fixed seed and stored in the JSON beside the expected values.
"""

import json

import numpy as np
import sklearn
import torch
from sklearn.metrics import roc_auc_score

import anomalib
from anomalib.metrics.aupro import _AUPRO

rng = np.random.default_rng(0)

# Image level: 60 scores, 25 anomalous, rounded to 2 decimals so there are ties.
labels = np.zeros(60, dtype=bool)
labels[rng.choice(60, 25, replace=False)] = True
scores = np.round(rng.normal(0, 1, 60) + 1.2 * labels, 2).astype(np.float32)

# Pixel level: 4 maps of 24x32 with blob masks (one image without defects).
B, H, W = 4, 24, 32
masks = np.zeros((B, H, W), dtype=bool)
yy, xx = np.mgrid[0:H, 0:W]
for b, blobs in enumerate([[(5, 6, 3)], [(12, 20, 4), (4, 28, 2)], [], [(18, 8, 5)]]):
    for cy, cx, r in blobs:
        masks[b] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
maps = (rng.normal(0, 1, (B, H, W)) + 1.5 * masks).astype(np.float32)
maps = np.round(maps, 3).astype(np.float32)

out = {
    "generator": "tools/reference/metrics_reference.py",
    "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "anomalib": anomalib.__version__, "torch": torch.__version__},
    "image": {"scores": scores.tolist(), "labels": labels.tolist(), "sklearn_roc_auc": float(roc_auc_score(labels, scores))},
    "pixel": {
        "shape": [B, H, W],
        "maps": maps.reshape(-1).tolist(),
        "masks": masks.reshape(-1).astype(int).tolist(),
        "sklearn_roc_auc": float(roc_auc_score(masks.reshape(-1), maps.reshape(-1))),
    },
    "aupro": {},
}
for limit in (0.3, 0.05, 1.0):
    m = _AUPRO(fpr_limit=limit)
    m.update(torch.from_numpy(maps), torch.from_numpy(masks.astype(np.int64)))
    out["aupro"][str(limit)] = float(m.compute())
print(json.dumps(out))
