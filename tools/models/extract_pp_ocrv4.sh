#!/usr/bin/env bash
# Extracts the PP-OCRv4 detection and recognition ONNX files that PyPI
# rapidocr-onnxruntime 1.4.4 (Apache-2.0) ships, into models/pp-ocrv4/, and checks them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --dest "$tmp" rapidocr-onnxruntime==1.4.4
python3 - "$tmp"/rapidocr_onnxruntime-1.4.4-py3-none-any.whl "$root/models/pp-ocrv4" <<'PY'
import sys, zipfile, pathlib
whl, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    for src, dst in [("rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_det_infer.onnx"),
                     ("rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx")]:
        (out / dst).write_bytes(z.read(src))
PY
cd "$root/models/pp-ocrv4" && sha256sum -c SHA256SUMS
