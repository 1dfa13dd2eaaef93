#!/usr/bin/env bash
# Cross-builds lineside for aarch64, packs the aarch64 install bundle (scripts/package.sh),
# unpacks it into a fresh folder and runs its demo there under qemu-user (the bundle's own
# aarch64 ONNX Runtime, no ORT_DYLIB_PATH), and compares its defect log with the x86-64 run
# (same classes, scores within 1e-4). Needs root for apt; no Docker, no `cross`.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[arm64] %s\n' "$*" >&2; }
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
  log "installing gcc-aarch64-linux-gnu and qemu-user-static"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user-static >/dev/null
fi
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
LINESIDE_SETUP_AARCH64=1 bash scripts/setup.sh

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# bindgen (v4l) must read the target's kernel headers, not the host's.
export BINDGEN_EXTRA_CLANG_ARGS="--sysroot=/usr/aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include"
cargo build --release --quiet --target aarch64-unknown-linux-gnu
# The x86-64 reference is the dev build `cargo test` already made (same ONNX Runtime, same
# float code paths): no second release build in CI.
cargo build --quiet
TARGET_DIR=${CARGO_TARGET_DIR:-target}
ARM_BIN=$TARGET_DIR/aarch64-unknown-linux-gnu/release/lineside
file "$ARM_BIN" | grep -q "ARM aarch64" || { log "$ARM_BIN is not an aarch64 binary"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|^dir = .*|dir = \"$work/x86\"|; s|\"samples/|\"$PWD/scenarios/samples/|; s|\"\.\./|\"$PWD/|" scenarios/demo.toml > "$work/x86.toml"
"$TARGET_DIR/debug/lineside" run --no-progress "$work/x86.toml" >/dev/null

# ONNX Runtime reads /proc/cpuinfo at start and fails on an x86 one: show it an ARM one,
# in a private mount namespace so nothing else is affected.
cat > "$work/cpuinfo" <<'CPU'
processor	: 0
BogoMIPS	: 100.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

CPU
# The bundle from the binary just built (no second build), unpacked where no checkout is.
bundle=$(bash scripts/package.sh --arch aarch64 --binary "$ARM_BIN" --out "$work/dist" | tail -n1)
log "$(basename "$bundle"): $(du -h "$bundle" | cut -f1)"
mkdir "$work/box" && tar -xzf "$bundle" -C "$work/box"
box=$(echo "$work"/box/lineside-*-aarch64)
log "running the bundle's demo under qemu-aarch64"
unshare -m sh -c "mount --bind '$work/cpuinfo' /proc/cpuinfo && cd '$box' && \
  env -i PATH=/usr/bin:/bin RUST_LOG=lineside=info \
  qemu-aarch64-static -L /usr/aarch64-linux-gnu bin/lineside run --no-progress scenarios/demo.toml" \
  2> "$work/arm.err" || { cat "$work/arm.err" >&2; exit 1; }
grep -q "loading ONNX Runtime from $box/bin/../lib/" "$work/arm.err" \
  || { log "the bundle did not load its own ONNX Runtime:"; cat "$work/arm.err" >&2; exit 1; }
mkdir -p "$work/arm" && cp "$box/out/demo/defects.jsonl" "$work/arm/defects.jsonl"

.cache/venv/bin/python - "$work/x86/defects.jsonl" "$work/arm/defects.jsonl" <<'PY'
import json, sys
x86 = [json.loads(l) for l in open(sys.argv[1])]
arm = [json.loads(l) for l in open(sys.argv[2])]
assert len(x86) == len(arm) > 0, (len(x86), len(arm))
worst = 0.0
for a, b in zip(x86, arm):
    assert a["item"] == b["item"] and a["verdict"] == b["verdict"], (a["item"], a["verdict"], b["verdict"])
    assert [c["index"] for c in a["classes"]] == [c["index"] for c in b["classes"]], a["item"]
    for c, d in zip(a["classes"], b["classes"]):
        worst = max(worst, abs(c["score"] - d["score"]))
assert worst < 1e-4, worst
print(f"arm64: {len(arm)} records match x86-64 (max score difference {worst:.2e})")
PY
