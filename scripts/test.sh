#!/usr/bin/env bash
# Runs the whole test suite, doing all set-up first (idempotent): ONNX Runtime library,
# Python reference environment, then format, lint and every test target (benches run
# once each in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase says how long it took, so a slow CI run shows where its time went.
phase() { echo "phase: $1 took $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }
phase_start=$SECONDS
LINESIDE_SETUP_TESTS=1 bash scripts/setup.sh
phase setup
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
phase "fmt + clippy"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every target runs even after a failure, so one run shows everything that is broken.
status=0
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (the benches, run once each, print no totals).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
# The slowest test targets ("Running tests/x.rs" ... "finished in 12.34s").
awk '/^ *Running / { t = $2 } /^test result:/ { s = $NF; sub(/s$/, "", s); printf "%8.1f s  %s\n", s, t }' "$log" |
  sort -rn | head -n 8 | sed 's/^/slowest: /'
phase "cargo test"
# Fuzz smoke: every cargo-fuzz target for a few seconds from its committed seeds (the long
# runs are by hand: scripts/fuzz.sh 300). LINESIDE_SKIP_FUZZ=1 skips it on a dev box.
if [ "${LINESIDE_SKIP_FUZZ:-0}" = 1 ]; then
  echo "fuzz: skipped (LINESIDE_SKIP_FUZZ=1)"
else
  start=$SECONDS
  if bash scripts/fuzz.sh "${LINESIDE_FUZZ_SECS:-10}"; then
    echo "fuzz: smoke passed in $((SECONDS - start)) s"
  else
    echo "fuzz: FAILED after $((SECONDS - start)) s"
    status=1
  fi
fi
# ARM64: cross-build, the demo under qemu-user, its log against x86-64's (installs its
# own cross linker and qemu through apt). LINESIDE_SKIP_ARM64=1 skips it on a dev box.
if [ "${LINESIDE_SKIP_ARM64:-0}" = 1 ]; then
  echo "arm64: skipped (LINESIDE_SKIP_ARM64=1)"
else
  start=$SECONDS
  if bash scripts/arm64-check.sh; then
    echo "arm64: passed in $((SECONDS - start)) s"
  else
    echo "arm64: FAILED after $((SECONDS - start)) s"
    status=1
  fi
fi
exit "$status"
