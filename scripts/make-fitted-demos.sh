#!/usr/bin/env bash
# Builds the fitted PatchCore demos: generates the sample data sets (fixed seeds, MVTec AD
# layout, ~106 MB under data/anomaly/, not committed), fits one model per set
# (models/fitted/<set>.lspc, not committed: a fit takes ~30 s) and evaluates each on its
# test images, writing out/eval/<set>.json and printing the tables.
#   scripts/make-fitted-demos.sh [set ...]     (default: all eight)
# Needs scripts/setup.sh first (ONNX Runtime and the Python reference venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.cache/venv/bin/python
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(brick gravel grass fabric metal pcb paper leather)
cargo build --release -q
BIN=target/release/lineside
mkdir -p out/eval
for s in "${SETS[@]}"; do
  [ -f "data/anomaly/$s/dataset.json" ] || "$PY" tools/datasets/make_anomaly_sets.py --out data/anomaly --sets "$s"
  "$BIN" fit "scenarios/fitted/$s.toml" --no-progress --json "out/eval/$s.fit.json"
  "$BIN" eval "scenarios/fitted/$s.toml" --data "data/anomaly/$s" --no-progress --json "out/eval/$s.json"
done
