#!/usr/bin/env bash
# Issue 15: PatchCore on 5 MP frames. Renders the frame sets if missing (data/frames/<set>,
# as scripts/setup.sh does), fits scenarios/fitted/<set>-frames.toml from full frames and
# evaluates it on 50 good frames and the frames with planted defects, writing
# out/eval/<set>-frames.{fit.json,json} and printing the tables with the time each step took.
#   scripts/eval-frames.sh [set ...]          (default: fabric metal)
# LINESIDE_BIN=path/to/lineside uses that binary instead of building the release one.
# Needs scripts/setup.sh first (ONNX Runtime and the Python reference venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.cache/venv/bin/python
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(fabric metal)
BIN=${LINESIDE_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release -q
  BIN=${CARGO_TARGET_DIR:-target}/release/lineside
fi
mkdir -p out/eval
for s in "${SETS[@]}"; do
  if [ ! -f "data/frames/$s/dataset.json" ]; then
    start=$SECONDS
    "$PY" tools/datasets/make_frame_sets.py --out data/frames --sets "$s"
    echo "$s: frames rendered in $((SECONDS - start)) s"
  fi
  start=$SECONDS
  "$BIN" fit "scenarios/fitted/$s-frames.toml" --no-progress --json "out/eval/$s-frames.fit.json"
  echo "$s: fit in $((SECONDS - start)) s"
  start=$SECONDS
  "$BIN" eval "scenarios/fitted/$s-frames.toml" --data "data/frames/$s" --no-progress \
    --json "out/eval/$s-frames.json"
  echo "$s: eval in $((SECONDS - start)) s"
done
# The "5 MP frames" section of each model card, from the JSON above.
"$PY" tools/datasets/frame_card.py out/eval "${SETS[@]}"
