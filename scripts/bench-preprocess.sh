#!/usr/bin/env bash
# Preprocessing speed, lineside against OpenCV, in one session on one machine:
#   criterion's `benches/preprocess.rs` (1280x720 -> 224x224, every format, each interpolation)
#   with the vector kernels, with LINESIDE_SIMD=off (scalar kernels), optionally a "before"
#   bench binary (built from the base commit), and tools/peer/preprocess_opencv.py (the
#   Python/OpenCV preprocessing lineside replaces), each ROUNDS times, interleaved so
#   load from other work on the machine hits all of them alike. Prints medians in ms.
#
# usage: scripts/bench-preprocess.sh [--rounds N] [--before-bin PATH] [--measure SECONDS]
#   A before binary: on the base commit, `cargo bench --bench preprocess --no-run` and copy
#   the `target/release/deps/preprocess-*` executable it names.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3 BEFORE= MEASURE=3
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --before-bin) BEFORE=$2; shift 2 ;;
    --measure) MEASURE=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
PY=.cache/venv/bin/python
[ -x "$PY" ] || { echo "no $PY: run scripts/setup.sh first" >&2; exit 1; }
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "--before-bin $BEFORE is not an executable" >&2; exit 1; }

AFTER=$(cargo bench --bench preprocess --no-run --message-format=json 2>/dev/null \
  | "$PY" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "preprocess" and m.get("executable"):
        print(m["executable"])')
[ -x "$AFTER" ] || { echo "could not build the preprocess bench" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ARGS=(--bench --warm-up-time 1 --measurement-time "$MEASURE" --noplot)
for r in $(seq "$ROUNDS"); do
  echo "[bench] round $r/$ROUNDS" >&2
  [ -z "$BEFORE" ] || "$BEFORE" "${ARGS[@]}" >"$OUT/before.$r" 2>&1
  "$AFTER" "${ARGS[@]}" >"$OUT/after.$r" 2>&1
  LINESIDE_SIMD=off "$AFTER" "${ARGS[@]}" >"$OUT/scalar.$r" 2>&1
  "$PY" tools/peer/preprocess_opencv.py --iterations 1000 --threads 1 >"$OUT/opencv1.$r"
  "$PY" tools/peer/preprocess_opencv.py --iterations 1000 >"$OUT/opencvN.$r"
done
"$PY" - "$OUT" "$ROUNDS" <<'PY'
import pathlib, re, statistics, sys
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
UNIT = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}

def criterion(path):
    """bench name -> median estimate in ms from criterion's text output."""
    res, name = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^preprocess_\S+/(\S+/\S+)", line)
        if m:
            name = m.group(1)
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and name and name not in res:
            res[name] = float(t.group(1)) * UNIT[t.group(2)]
            name = None
    return res

def opencv(path):
    res = {}
    for line in path.read_text().splitlines():
        f = line.split()
        res[f[1]] = float(f[3].split("=")[1])
        res["threads_" + f[1]] = f[2]
    return res

def median(kind, parse, key):
    vals = [parse(out / f"{kind}.{r}").get(key) for r in range(1, rounds + 1) if (out / f"{kind}.{r}").exists()]
    vals = [v for v in vals if v is not None]
    return (statistics.median(vals), min(vals), max(vals)) if vals else None

names = list(criterion(out / "after.1"))
fmt = lambda m: "-" if m is None else f"{m[0]:.3f}"
spread = lambda m: "" if m is None else f" ({m[1]:.2f}-{m[2]:.2f})"
print(f"medians of {rounds} rounds, ms (min-max over rounds)")
print(f"{'interpolation/format':28} {'before':>16} {'after (SIMD)':>16} {'after (scalar)':>16} {'OpenCV 1 thr':>16} {'OpenCV default':>16}")
for n in names:
    interp = n.split("/")[0]
    cv_key = {"linear": "linear", "nearest": "nearest"}.get(interp)
    cells = [median("before", criterion, n), median("after", criterion, n), median("scalar", criterion, n)]
    cv = [median("opencv1", opencv, cv_key), median("opencvN", opencv, cv_key)] if cv_key and n.endswith("YUYV") else [None, None]
    print(f"{n:28} " + " ".join(f"{fmt(c) + spread(c):>16}" for c in cells + cv))
thr = opencv(out / "opencvN.1")
print(f"OpenCV default threads: {thr.get('threads_linear')}; OpenCV times cvtColor+resize+normalise+transpose (numpy)")
PY
