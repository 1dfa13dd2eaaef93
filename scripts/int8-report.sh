#!/usr/bin/env bash
# INT8 models: quantizes the bundled classifier, detector and PatchCore backbone
# (tools/models/quantize_int8.py, ONNX Runtime static QDQ quantization calibrated on sample
# frames), then measures what INT8 changes, with lineside itself, on this machine:
#   - classifier: top-1 agreement with the float model on the demo photos and the
#     catalogue's test images, and the demo's verdicts;
#   - detector: AP50 / AP50-95 on the 40 held-out renders (`lineside eval`);
#   - PatchCore backbone: image AUROC and verdict accuracy of three catalogue rows fitted
#     on each backbone (`lineside fit` + `lineside run`);
#   - speed: `lineside bench` of the demo and the screw scenario, float and INT8.
# Writes out/int8/report.json and prints the tables the model cards quote.
#
#   bash scripts/int8-report.sh [--cores 1,2] [--frames 200] [--no-quantize]
set -euo pipefail
cd "$(dirname "$0")/.."
cores=1,2
frames=200
quantize=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cores) cores=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;;
    --no-quantize) quantize=0; shift ;;
    *) echo "usage: $0 [--cores 1,2] [--frames N] [--no-quantize]" >&2; exit 2 ;;
  esac
done
log() { printf '[int8] %s\n' "$*" >&2; }

bash scripts/setup.sh >/dev/null
py=.cache/venv/bin/python
if [ ! -x "$py" ]; then
  log "creating the Python reference environment"
  LINESIDE_SETUP_TESTS=1 bash scripts/setup.sh >/dev/null
fi
# ONNX Runtime's quantizer needs the onnx package (only here, never at run time).
"$py" -c "import onnx" 2>/dev/null || { log "installing onnx into .cache/venv"; "$py" -m pip install -q -r tools/requirements-quantize.txt; }
cargo build --release --quiet
bin=target/release/lineside
work=out/int8
mkdir -p "$work"

if [ "$quantize" = 1 ]; then
  for m in classifier detector features; do
    log "quantizing the $m"
    "$py" tools/models/quantize_int8.py "$m" --work "$work" 2>&1 | grep -v -E "^(WARNING|INFO)" >/dev/null
  done
elif [ ! -d "$work/yolo-parts-val" ]; then
  log "rendering the detector's held-out frames"
  "$py" -c "import sys; sys.path.insert(0, 'tools/models'); import quantize_int8 as q; from pathlib import Path; q.render_parts(Path('$work'))"
fi

# A scenario copy in $work with absolute paths, the model swapped for its INT8 file when
# $3 = int8, and the output (and any artifact) under $work/<name>.
copy() {
  local src=$1 name=$2 variant=$3 base
  base=$(cd "$(dirname "$src")" && pwd)
  sed -E "s#^(path|labels|train|validation|artifact) = \"(\.\.?/[^\"]*|[^/\"][^\"]*)\"#\1 = \"$base/\2\"#; \
          s#^dir = \".*\"#dir = \"$PWD/$work/$name/out\"#; \
          s#^artifact = \".*/([^/]*)\.lspc\"#artifact = \"$PWD/$work/$name/\1.lspc\"#" "$src" > "$work/$name.toml"
  if [ "$variant" = int8 ]; then
    sed -i -E 's#(efficientnet_lite0|efficientnet_lite0_features|yolo_parts)\.onnx"#\1_int8.onnx"#' "$work/$name.toml"
  fi
  mkdir -p "$work/$name"
  echo "$work/$name.toml"
}

# Classifier: every demo photo and every catalogue test image, float and INT8.
mkdir -p "$work/images"
find "$work/images" -name '*.png' -delete
cp scenarios/samples/photos/*.png "$work/images/"
for f in data/catalogue/*/test/*.png; do
  row=$(basename "$(dirname "$(dirname "$f")")")
  cp "$f" "$work/images/${row}__$(basename "$f")"
done
for v in float int8; do
  s=$(copy scenarios/demo.toml "classifier-$v" "$v")
  sed -i -E "s#^path = \".*samples/photos\"#path = \"$PWD/$work/images\"#" "$s"
  log "classifier ($v) on $(ls "$work/images" | wc -l) images"
  "$bin" run --no-progress "$s" >/dev/null 2>&1
  s=$(copy scenarios/demo.toml "demo-$v" "$v")
  "$bin" run --no-progress "$s" >/dev/null 2>&1
done

# Detector: AP on the held-out renders.
for v in float int8; do
  s=$(copy scenarios/catalogue/10-screw-locking.toml "detector-$v" "$v")
  log "detector ($v): lineside eval on the 40 held-out renders"
  "$bin" eval "$s" --data "$work/yolo-parts-val" --json "$work/detector-$v/eval.json" >/dev/null 2>&1
done

# PatchCore: three fitted catalogue rows on each backbone.
rows="13-woven-fabric 22-wood-veneer 28-paper-web"
for r in $rows; do
  for v in float int8; do
    s=$(copy "scenarios/catalogue/$r.toml" "patchcore-$r-$v" "$v")
    log "PatchCore $r ($v): fit and run"
    "$bin" fit --no-progress "$s" >/dev/null 2>&1
    "$bin" run --no-progress "$s" >/dev/null 2>&1
  done
done

# Speed: lineside bench, float and INT8.
for sc in demo:scenarios/demo.toml detector:scenarios/catalogue/10-screw-locking.toml; do
  for v in float int8; do
    s=$(copy "${sc#*:}" "bench-${sc%%:*}-$v" "$v")
    log "lineside bench ${sc%%:*} ($v) --cores $cores"
    "$bin" bench "$s" --cores "$cores" --frames "$frames" --json "$work/bench-${sc%%:*}-$v.json" >/dev/null 2>&1
  done
done

"$py" tools/models/int8_report.py "$work" $rows
