#!/usr/bin/env bash
# Builds the install bundle for a line box:
#   dist/lineside-<version>-<arch>/ and dist/lineside-<version>-<arch>.tar.gz
# holding bin/lineside (release, stripped), lib/libonnxruntime.so.* (found beside bin/ with
# no environment variable), the demo scenarios with the models and samples they name
# (same relative layout, so their relative paths hold), packaging/ (service unit, logrotate)
# and README-box.md.
#
#   scripts/package.sh [--arch x86_64|aarch64] [--binary PATH] [--out DIR]
#
# --binary packages a lineside already built for that arch instead of building a release
# one (tests/package.rs passes the one `cargo test` built); --out puts the bundle in DIR
# instead of dist/.
#
# aarch64 cross-builds with the linker scripts/arm64-check.sh installs (never `cross`);
# its ONNX Runtime comes from `LINESIDE_SETUP_AARCH64=1 bash scripts/setup.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[package] %s\n' "$*" >&2; }

ARCH=$(uname -m)
BIN=
OUT=dist
usage="usage: scripts/package.sh [--arch x86_64|aarch64] [--binary PATH] [--out DIR]"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { log "$1 needs a value; $usage"; exit 2; }
  case $1 in
    --arch) ARCH=$2 ;;
    --binary) BIN=$2 ;;
    --out) OUT=$2 ;;
    *) log "unknown argument $1; $usage"; exit 2 ;;
  esac
  shift 2
done
case $ARCH in
  x86_64|aarch64) ;;
  *) log "--arch must be x86_64 or aarch64, not '$ARCH'"; exit 2 ;;
esac

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
ORT_VERSION=$(sed -n 's/^pub const ORT_VERSION: &str = "\(.*\)";/\1/p' src/engine/runtime.rs)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# The demo scenarios the bundle carries; each brings the files its paths name.
DEMOS=(demo.toml demo-synthetic.toml)

if [ -n "$BIN" ]; then
  [ -x "$BIN" ] || { log "--binary $BIN is not an executable file"; exit 1; }
  STRIP=strip
  [ "$ARCH" = aarch64 ] && [ "$(uname -m)" != aarch64 ] && STRIP=aarch64-linux-gnu-strip
elif [ "$ARCH" = "$(uname -m)" ]; then
  log "building lineside $VERSION (release) for $ARCH"
  cargo build --release --quiet --bin lineside
  BIN=$TARGET_DIR/release/lineside
  STRIP=strip
else
  [ "$ARCH" = aarch64 ] || { log "cross-building is set up for aarch64 only"; exit 2; }
  command -v aarch64-linux-gnu-gcc >/dev/null \
    || { log "aarch64-linux-gnu-gcc missing: run scripts/arm64-check.sh once (it installs it)"; exit 1; }
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  # bindgen (v4l) must read the target's kernel headers, not the host's.
  export BINDGEN_EXTRA_CLANG_ARGS="--sysroot=/usr/aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include"
  log "cross-building lineside $VERSION (release) for aarch64"
  cargo build --release --quiet --bin lineside --target aarch64-unknown-linux-gnu
  BIN=$TARGET_DIR/aarch64-unknown-linux-gnu/release/lineside
  STRIP=aarch64-linux-gnu-strip
fi

ORT_LIB=.cache/onnxruntime/$ORT_VERSION-$ARCH/libonnxruntime.so.$ORT_VERSION
if [ ! -f "$ORT_LIB" ]; then
  hint="bash scripts/setup.sh"
  [ "$ARCH" = aarch64 ] && hint="LINESIDE_SETUP_AARCH64=1 bash scripts/setup.sh"
  log "$ORT_LIB missing: run $hint first"; exit 1
fi

NAME=lineside-$VERSION-$ARCH
STAGE=$OUT/$NAME
rm -rf "$STAGE" "$OUT/$NAME.tar.gz"
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/scenarios"
install -m 0755 "$BIN" "$STAGE/bin/lineside"
"$STRIP" "$STAGE/bin/lineside"
install -m 0644 "$ORT_LIB" "$STAGE/lib/"
ln -s "libonnxruntime.so.$ORT_VERSION" "$STAGE/lib/libonnxruntime.so"

# Copies repository path $1 (a file or folder) to the same place in the bundle.
carry() {
  local rel=$1
  [ -e "$rel" ] || { log "$rel (named by a demo scenario) does not exist"; exit 1; }
  mkdir -p "$STAGE/$(dirname "$rel")"
  cp -R "$rel" "$STAGE/$rel"
}
for demo in "${DEMOS[@]}"; do
  carry "scenarios/$demo"
  # Every quoted `path`/`labels` value is relative to the scenario file.
  while IFS= read -r value; do
    rel=$(realpath -m --relative-to=. "scenarios/$value")
    case $rel in
      ../*|/*) log "scenarios/$demo names $value, outside the checkout: a bundle carries only its own files"; exit 1 ;;
    esac
    carry "$rel"
    # A model's card (licence, provenance) travels with it.
    if [ -f "$(dirname "$rel")/README.md" ] && [ ! -f "$STAGE/$(dirname "$rel")/README.md" ]; then
      carry "$(dirname "$rel")/README.md"
    fi
  done < <(sed -n -E 's/^[[:space:]]*(path|labels)[[:space:]]*=[[:space:]]*"([^"]*)".*/\2/p' "scenarios/$demo")
done
if [ -d packaging ]; then cp -R packaging "$STAGE/packaging"; fi
install -m 0644 docs/README-box.md "$STAGE/README-box.md"
sed -i "s/@VERSION@/$VERSION/g; s/@ARCH@/$ARCH/g" "$STAGE/README-box.md"

# Same bytes for the same inputs: fixed owner, order and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$OUT" -czf "$OUT/$NAME.tar.gz" "$NAME"
log "$OUT/$NAME.tar.gz: $(du -h "$OUT/$NAME.tar.gz" | cut -f1) (binary $(du -h "$STAGE/bin/lineside" | cut -f1), unpacked $(du -sh "$STAGE" | cut -f1))"
echo "$OUT/$NAME.tar.gz"
