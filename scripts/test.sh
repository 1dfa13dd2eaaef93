#!/usr/bin/env bash
# Runs the whole test suite, doing all set-up first (idempotent): ONNX Runtime library,
# Python reference environment, then format, lint and every test target (benches run
# once each in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every target runs even after a failure, so one run shows everything that is broken.
status=0
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (the benches, run once each, print no totals).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
