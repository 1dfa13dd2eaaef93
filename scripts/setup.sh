#!/usr/bin/env bash
# One-time, idempotent set-up for lineside on a Debian/Ubuntu machine with Rust and Python 3:
#   1. ONNX Runtime shared library from the pinned `onnxruntime` wheel on PyPI (sha256 checked),
#      unpacked into .cache/onnxruntime/ where the binary finds it.
#   2. Debian packages the build and tests need (libclang, mosquitto for the MQTT tests).
#   2b. On x86-64, the OpenVINO execution-provider plugin from the pinned
#      `onnxruntime-ep-openvino` wheel on PyPI (sha256 checked), unpacked with its OpenVINO
#      and TBB libraries into .cache/openvino-ep/ for `[model] providers = ["openvino", ...]`.
#   3. A Python virtual environment (.cache/venv) with the reference tools the tests compare
#      against (onnxruntime, numpy, Pillow, OpenCV).
# Re-running it does nothing that is already done. Nothing is fetched except from PyPI/Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE="$ROOT/.cache"
ORT_VERSION=1.32.0
# The wheel is identical for every Python 3.11 install; pin by file so the hash is stable.
declare -A ORT_WHEEL_SHA256=(
  [x86_64]=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
  [aarch64]=2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c
)
log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v unzip >/dev/null || need_apt+=(unzip)
# The v4l crate generates its V4L2 bindings with bindgen at build time, which needs libclang.
# bindgen needs libclang itself, not the libclang-cpp some images ship alone.
# shellcheck disable=SC2086 # the globs are meant to expand
bash scripts/has-libclang.sh /usr/lib/llvm-*/lib /usr/lib/* || need_apt+=(libclang-dev)
# The MQTT tests start their own broker (mosquitto) and make a password file
# (mosquitto_passwd, in the mosquitto package); openssl makes the TLS test's certificates.
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need_apt+=(mosquitto)
command -v mosquitto_sub >/dev/null || need_apt+=(mosquitto-clients)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing ${need_apt[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    log "please install: sudo apt-get install -y ${need_apt[*]}"; exit 1
  fi
fi

ort_lib_for() { # $1 = arch (x86_64|aarch64)
  local arch=$1 dir="$CACHE/onnxruntime/$ORT_VERSION-$1"
  local lib="$dir/libonnxruntime.so.$ORT_VERSION"
  if [ -f "$lib" ]; then return 0; fi
  mkdir -p "$dir" "$CACHE/wheels"
  log "downloading onnxruntime $ORT_VERSION wheel for $arch from PyPI"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform "manylinux_2_28_$arch" "onnxruntime==$ORT_VERSION" -d "$CACHE/wheels"
  local whl
  whl=$(ls "$CACHE/wheels"/onnxruntime-"$ORT_VERSION"-cp311-cp311-manylinux_2_28_"$arch".whl)
  echo "${ORT_WHEEL_SHA256[$arch]}  $whl" | sha256sum -c --quiet - \
    || { log "sha256 mismatch for $whl: refusing to use it"; rm -f "$whl"; exit 1; }
  unzip -q -o -j "$whl" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$dir"
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$dir/libonnxruntime.so"
  log "ONNX Runtime library: $lib"
}

ort_lib_for "$(uname -m)"
if [ "${LINESIDE_SETUP_AARCH64:-0}" = 1 ]; then ort_lib_for aarch64; fi

# The OpenVINO plugin EP: built for ONNX Runtime >= 1.23's plugin API, so this ORT loads it
# (RegisterExecutionProviderLibrary). Published for x86-64 only; elsewhere `openvino` in
# `[model] providers` falls back with a warning.
OVEP_VERSION=1.8.1
OVEP_WHEEL_SHA256=3832643158c8c187fcab6db661cde2a8c06a2b3559d95d0f2411ac0e51c5e924
openvino_ep() {
  local dir="$CACHE/openvino-ep/$OVEP_VERSION-x86_64"
  local plugin="$dir/libonnxruntime_providers_openvino_plugin.so"
  if [ -f "$plugin" ]; then return 0; fi
  mkdir -p "$CACHE/wheels"
  local whl="$CACHE/wheels/onnxruntime_ep_openvino-$OVEP_VERSION-py3-none-manylinux_2_28_x86_64.whl"
  if [ ! -f "$whl" ]; then
    log "downloading onnxruntime-ep-openvino $OVEP_VERSION wheel from PyPI"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 "onnxruntime-ep-openvino==$OVEP_VERSION" -d "$CACHE/wheels"
  fi
  echo "$OVEP_WHEEL_SHA256  $whl" | sha256sum -c --quiet - \
    || { log "sha256 mismatch for $whl: refusing to use it"; rm -f "$whl"; exit 1; }
  # Unpacked beside each other: the plugin finds OpenVINO through its RUNPATH ($ORIGIN),
  # and OpenVINO finds its device plugins in its own folder. Written to a temporary folder
  # and renamed, so an interrupted run leaves no half-unpacked plugin behind.
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  unzip -q -o -j "$whl" 'onnxruntime_ep_openvino/*.so*' -d "$tmp"
  rm -rf "$dir" && mv "$tmp" "$dir"
  log "OpenVINO execution provider: $plugin"
}
if [ "$(uname -m)" = x86_64 ]; then openvino_ep; else log "no OpenVINO plugin for $(uname -m): [model] providers = [\"openvino\", ...] will fall back"; fi

VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import onnxruntime, numpy, PIL, cv2, pycocotools' 2>/dev/null; then
  log "creating Python reference environment in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/tools/requirements-reference.txt"
fi
if ! "$VENV/bin/python" -c 'import rapidocr_onnxruntime, pyclipper, shapely' 2>/dev/null; then
  log "installing the OCR reference (rapidocr) into $VENV"
  "$VENV/bin/python" -m pip install -q --no-deps -r "$ROOT/tools/requirements-ocr-reference.txt"
fi
# 5 MP sample frames for tiled PatchCore (fabric and metal, 2592x1944, with planted
# defects of known size): rendered by the committed generator, not committed. About
# 0.6 GB, 2.6 CPU-minutes; LINESIDE_SKIP_FRAMES=1 skips them (only scripts/eval-frames.sh reads them; the
# tests render their own few frames).
if [ "${LINESIDE_SKIP_FRAMES:-0}" != 1 ]; then
  for set in fabric metal; do
    if [ ! -f "$ROOT/data/frames/$set/dataset.json" ]; then
      log "rendering the 5 MP sample frames of $set into data/frames/$set (a few minutes)"
      "$VENV/bin/python" "$ROOT/tools/datasets/make_frame_sets.py" --out "$ROOT/data/frames" --sets "$set" >/dev/null
    fi
  done
fi
# The catalogue's sample data (scenarios/catalogue/, all 32 rows): each renderer under
# tools/catalogue/ draws its rows into data/catalogue/ (fixed seeds, not committed). A
# renderer runs again only when its script changed (its sha256 is kept as a stamp).
mkdir -p "$ROOT/data/catalogue"
for renderer in "$ROOT"/tools/catalogue/*.py; do
  name=$(basename "$renderer" .py)
  stamp="$ROOT/data/catalogue/.rendered-$name"
  want=$(sha256sum "$renderer" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "rendering the catalogue's $name sample data into data/catalogue"
    "$VENV/bin/python" "$renderer" --out "$ROOT/data/catalogue" >/dev/null
    echo "$want" > "$stamp"
  fi
done
# Tools only the tests use (scripts/test.sh sets LINESIDE_SETUP_TESTS=1): headless Chromium
# opens the QA report the way a supervisor's browser would.
if [ "${LINESIDE_SETUP_TESTS:-0}" = 1 ]; then
  need_test_apt=()
  command -v chromium >/dev/null || need_test_apt+=(chromium)
  # tests/evidence.rs fills a small tmpfs in a private mount namespace (`unshare`).
  command -v unshare >/dev/null || need_test_apt+=(util-linux)
  if [ ${#need_test_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      log "installing ${need_test_apt[*]} with apt-get (for the tests)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_test_apt[@]}" >/dev/null
    else
      log "the tests need: sudo apt-get install -y ${need_test_apt[*]}"; exit 1
    fi
  fi
fi
log "ready"
