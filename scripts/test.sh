#!/usr/bin/env bash
# Runs the whole test suite, doing all set-up first (idempotent): ONNX Runtime library,
# Python reference environment, then format, lint and every test target (benches run
# once each in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
