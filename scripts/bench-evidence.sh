#!/usr/bin/env bash
# Cost of evidence images at a 10% NG rate: scenario 26 (kit completeness, YOLOv8n-seg)
# replays a folder of N parts, one in ten NG (copies of the bundled kit samples), with
# `[evidence]` off and on, ROUNDS times each, interleaved so load from other work on the
# machine hits both alike. Prints frames/s per run, the medians and the cost in %, and the
# CPU seconds per run (user + system; steadier than frames/s on a shared machine).
#
# usage: scripts/bench-evidence.sh [--rounds N] [--parts N] [--bin PATH]
#   default: 5 rounds of 300 parts, the release binary (built if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=5 PARTS=300 BIN=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --parts) PARTS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/lineside
fi
[ -x "$BIN" ] || { echo "no lineside binary at $BIN" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$(pwd)

# Which bundled kits are OK and which NG: one plain run tells.
scenario() { # name, images folder, extra text
  sed -e "s|^path = \"../samples/kits\"|path = \"$2\"|" \
      -e "s|^path = \"../../models/|path = \"$ROOT/models/|" \
      -e "s|^dir = \".*\"|dir = \"$WORK/out-$1\"|" \
      scenarios/catalogue/26-kit-completeness.toml > "$WORK/$1.toml"
  printf '%b' "$3" >> "$WORK/$1.toml"
}
scenario probe "$ROOT/scenarios/samples/kits" ""
"$BIN" run --no-progress "$WORK/probe.toml" >/dev/null 2>&1
mapfile -t OK < <(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["verdict"] == "OK": print(r["item"])' "$WORK/out-probe/defects.jsonl")
mapfile -t NG < <(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["verdict"] == "NG": print(r["item"])' "$WORK/out-probe/defects.jsonl")
[ ${#OK[@]} -gt 0 ] && [ ${#NG[@]} -gt 0 ] || { echo "need OK and NG kits in the samples" >&2; exit 1; }

# N parts, every tenth NG.
mkdir -p "$WORK/parts"
for i in $(seq 0 $((PARTS - 1))); do
  if [ $((i % 10)) -eq 9 ]; then src=${NG[$(( (i / 10) % ${#NG[@]} ))]}; else src=${OK[$(( i % ${#OK[@]} ))]}; fi
  ln -s "$ROOT/scenarios/samples/kits/$src" "$WORK/parts/$(printf 'part_%05d.png' "$i")"
done
scenario off "$WORK/parts" ""
scenario on "$WORK/parts" "\n[evidence]\n"

fps() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fps"])' "$1"; }
declare -a FOFF FON COFF CON
TIMEFORMAT='%U %S'
for r in $(seq "$ROUNDS"); do
  for mode in off on; do
    rm -rf "$WORK/out-$mode"
    t=$( { time "$BIN" run --no-progress "$WORK/$mode.toml" >/dev/null 2>&1; } 2>&1 )
    cpu=$(python3 -c 'import sys; print(sum(map(float, sys.argv[1].split())))' "$t")
    f=$(fps "$WORK/out-$mode/summary.json")
    if [ $mode = off ]; then FOFF+=("$f"); COFF+=("$cpu"); else FON+=("$f"); CON+=("$cpu"); fi
    echo "[bench] round $r evidence $mode: $f frames/s, $cpu CPU s" >&2
  done
done
python3 - "$WORK/out-on" "${FOFF[*]}" "${FON[*]}" "${COFF[*]}" "${CON[*]}" <<'PY'
import json, statistics, sys
out, off, on = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
coff, con = [float(x) for x in sys.argv[4].split()], [float(x) for x in sys.argv[5].split()]
s = json.load(open(out + "/summary.json"))
ng = s["ng"] / max(s["frames"], 1)
mo, mn = statistics.median(off), statistics.median(on)
print(f"parts per run: {s['frames']} ({ng:.0%} NG), workers: {s['workers']}")
print(f"evidence off: median {mo:.1f} frames/s  ({', '.join(f'{x:.1f}' for x in off)})")
print(f"evidence on:  median {mn:.1f} frames/s  ({', '.join(f'{x:.1f}' for x in on)})")
print(f"cost: {100 * (mo - mn) / mo:.1f}% of throughput; evidence of the last run: {s.get('evidence')}")
co, cn = statistics.median(coff), statistics.median(con)
print(f"CPU per run (user + system, includes model loading): off {co:.1f} s, on {cn:.1f} s: {100 * (cn - co) / co:+.1f}%")
PY
