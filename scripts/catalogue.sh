#!/usr/bin/env bash
# The whole catalogue (scenarios/catalogue/, all 32 rows of SCENARIOS.md) on this machine:
# set-up (renders the sample data), a release build, `lineside fit` for every scenario with
# a [fit] section, each scenario run alone (its frames/s), then all 32 in one process
# (`lineside run scenarios/catalogue/`), the QA report over all of them, and the results
# table of scenarios/catalogue/README.md (accuracy against each truth.json, frames/s).
#   scripts/catalogue.sh            -> out/catalogue/ (logs, index.html), table on stdout
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
BIN=target/release/lineside
for f in scenarios/catalogue/*.toml; do
  if grep -q '^\[fit\]' "$f"; then "$BIN" fit "$f" --no-progress >/dev/null; fi
done
# Alone: one scenario per process, so frames/s is the scenario's own on this machine.
rm -rf out/catalogue-alone out/catalogue
for f in scenarios/catalogue/*.toml; do
  stem=$(basename "$f" .toml)
  tmp=$(mktemp --suffix=.toml -p scenarios/catalogue)
  sed "s|^dir = \"../../out/catalogue/.*\"|dir = \"../../out/catalogue-alone/$stem\"|" "$f" > "$tmp"
  "$BIN" run "$tmp" --no-progress >/dev/null 2>&1 || { rm -f "$tmp"; echo "run $f failed" >&2; exit 1; }
  rm -f "$tmp"
done
# Together: all 32 in one process, sharing one ONNX Runtime, as a line-side box runs them.
"$BIN" run scenarios/catalogue/ --no-progress
"$BIN" report out/catalogue/* --out out/catalogue/index.html
.cache/venv/bin/python tools/report/catalogue_table.py --alone out/catalogue-alone --together out/catalogue
