#!/usr/bin/env bash
# Sets everything up (idempotent), builds lineside and runs the bundled demo scenario:
# EfficientNet-Lite0 inspecting the sample photos, defect log in out/demo/.
# Extra arguments go to `lineside run` (e.g. scenario files).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
exec ./target/release/lineside run "$@"
