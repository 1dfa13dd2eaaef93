#!/usr/bin/env bash
# The demo classifier (EfficientNet-Lite0, its seven photos) on the CPU provider and on
# OpenVINO, measured by `lineside bench` on two copies of scenarios/demo.toml that differ
# only in `[model] providers` (issue 11 item 5). Prints frames/s of ORT alone and of the
# pipeline per core count, and which provider each copy really ran on (a box where OpenVINO
# offers no device falls back to cpu, and the table says so).
#
# usage: [LINESIDE_BIN=path/to/lineside] scripts/bench-providers.sh [--cores 1,2] [--frames 300]
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
# LINESIDE_BIN: a lineside binary already built (skips the release build).
if [ -z "${LINESIDE_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${LINESIDE_BIN:-${CARGO_TARGET_DIR:-target}/release/lineside}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for p in cpu openvino; do
  list='"cpu"'; [ $p = openvino ] && list='"openvino", "cpu"'
  sed -e "s#^path = \"samples/#path = \"$PWD/scenarios/samples/#" \
      -e "s#\"\.\./models/#\"$PWD/models/#" \
      -e "s#^dir = .*#dir = \"$WORK/out-$p\"#" \
      -e "s#^\[model\]#[model]\nproviders = [$list]#" scenarios/demo.toml >"$WORK/demo-$p.toml"
  "$BIN" bench "$WORK/demo-$p.toml" --cores "$CORES" --frames "$FRAMES" --json "$WORK/$p.json"
done
echo
"$PY" - "$WORK/cpu.json" "$WORK/openvino.json" <<'PY'
import json, sys
cpu, ov = (json.load(open(p)) for p in sys.argv[1:3])
print(f"{cpu['machine']['cpu']} ({cpu['machine']['cores']} cores)")
print(f"{'cores':>5} | {'cpu: ORT alone':>14} | {'cpu: pipeline':>13} | {ov['provider'] + ': ORT alone':>24} | {ov['provider'] + ': pipeline':>23}")
for a, b in zip(cpu["rows"], ov["rows"]):
    print(f"{a['cores']:>5} | {a['ort_alone_fps']:>14.1f} | {a['pipeline_fps']:>13.1f} | {b['ort_alone_fps']:>24.1f} | {b['pipeline_fps']:>23.1f}")
PY
