"""Runs a model with Python onnxruntime on tensors lineside wrote, for comparison.

usage: onnx_ref.py MODEL.onnx CASES.json OUT.json
CASES.json: [{"tensor": path to raw little-endian float32, "shape": [1,3,224,224]}, ...]
OUT.json:   [{output name: flat list of floats (bool/int outputs as floats)}, ...]
"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, cases_path, out_path = sys.argv[1:4]
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
with open(cases_path) as f:
    cases = json.load(f)
results = []
for c in cases:
    x = np.fromfile(c["tensor"], dtype="<f4").reshape(c["shape"])
    outs = sess.run(None, {name: x})
    results.append(
        {o.name: np.asarray(v, dtype=np.float64).ravel().tolist() for o, v in zip(sess.get_outputs(), outs)}
    )
with open(out_path, "w") as f:
    json.dump(results, f)
