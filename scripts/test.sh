#!/usr/bin/env bash
# Runs the whole test suite, doing all set-up first (idempotent): ONNX Runtime library,
# Python reference environment, then format, lint and every test target (benches run
# once each in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --all-targets 2>&1 | tee "$log"
# One closing line for the whole suite (the benches, run once each, print no totals).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
