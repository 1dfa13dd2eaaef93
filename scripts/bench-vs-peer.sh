#!/usr/bin/env bash
# lineside against the Python script it replaces, on the same frames in one session
# (issue 11 item 4): raw YUYV 1280x720 frames -> EfficientNet-Lite0 classifier (the demo's
# model and rules). Runs `lineside bench` (ORT alone and the whole pipeline) and
# tools/peer/pipeline_peer.py (OpenCV + onnxruntime, one session per thread) at each core
# count and prints frames/s and the ratios. lineside uses `interpolation = "linear"` here,
# the same resampling as the peer's cv2.INTER_LINEAR (the demo itself uses Pillow-exact
# `bilinear`, which its weights were trained with).
#
# usage: scripts/bench-vs-peer.sh [--cores 1,2] [--frames 300]
set -euo pipefail
cd "$(dirname "$0")/.."
CORES=1,$(nproc) FRAMES=300
while [ $# -gt 0 ]; do
  case $1 in
    --cores) CORES=$2; shift 2 ;;
    --frames) FRAMES=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
PY=.cache/venv/bin/python
[ -x "$PY" ] || { echo "no $PY: run scripts/setup.sh first" >&2; exit 1; }
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/frames"
# 16 distinct frames of the demo photos, converted to YUYV 1280x720 (the peer and lineside
# read the same file).
"$PY" - "$WORK/frames/line.yuyv" <<'PY'
import glob, json, sys
import cv2, numpy as np
out = sys.argv[1]
photos = sorted(glob.glob("scenarios/samples/photos/*.png"))
frames = []
for i in range(16):
    img = cv2.imread(photos[i % len(photos)])
    img = cv2.resize(img, (1280, 720), interpolation=cv2.INTER_AREA)
    yuv = cv2.cvtColor(img, cv2.COLOR_BGR2YUV)
    y, u, v = yuv[..., 0], yuv[..., 1], yuv[..., 2]
    packed = np.empty((720, 1280 * 2), np.uint8)
    packed[:, 0::2] = y
    packed[:, 1::4] = u[:, 0::2]
    packed[:, 3::4] = v[:, 0::2]
    frames.append(packed)
np.concatenate(frames).tofile(out)
json.dump({"width": 1280, "height": 720, "fourcc": "YUYV"}, open(out + ".json", "w"))
PY
sed -e 's#^kind = "images".*#kind = "raw"#' \
    -e "s#^path = \"samples/photos\".*#path = \"$WORK/frames\"#" \
    -e "s#\"\.\./models/#\"$PWD/models/#" \
    -e "s#^dir = .*#dir = \"$WORK/out\"#" \
    -e 's#^interpolation = .*#interpolation = "linear"#' scenarios/demo.toml >"$WORK/demo-raw.toml"
./target/release/lineside bench "$WORK/demo-raw.toml" --cores "$CORES" --frames "$FRAMES" \
  --json "$WORK/bench.json"
echo
printf '%5s | %14s | %14s | %12s | %16s | %18s\n' cores "ORT alone (py)" "python peer" lineside "lineside / peer" "lineside / ORT (rs)"
for c in ${CORES//,/ }; do
  "$PY" tools/peer/pipeline_peer.py --raw "$WORK/frames/line.yuyv" \
    --model models/efficientnet-lite0/efficientnet_lite0.onnx \
    --labels models/efficientnet-lite0/imagenet_labels.txt \
    --threads "$c" --frames "$FRAMES" >"$WORK/peer.$c"
  "$PY" - "$WORK/bench.json" "$WORK/peer.$c" "$c" <<'PY'
import json, sys
bench = json.load(open(sys.argv[1])); peer = json.load(open(sys.argv[2])); c = int(sys.argv[3])
row = next(r for r in bench["rows"] if r["cores"] == c)
print(f'{c:>5} | {peer["ort_alone_fps"]:>14.1f} | {peer["peer_fps"]:>14.1f} | {row["pipeline_fps"]:>12.1f} | '
      f'{row["pipeline_fps"] / peer["peer_fps"]:>16.2f} | {row["efficiency"]:>18.2f}')
PY
done
