#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 300; CI smoke: `scripts/fuzz.sh 10`),
# one after another on one core, growing the corpus under fuzz/corpus/<target>/ (only the
# committed seed-* files are tracked). A crash stops the script with the failing input
# under fuzz/artifacts/<target>/: turn it into a regression test in tests/.
# Extra arguments after SECONDS go to libFuzzer (e.g. -jobs=2 -workers=2).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-300}"
shift || true
targets="${FUZZ_TARGETS:-scenario raw_frames image_files mjpeg_frame patchcore_artifact model_info}"

# cargo fuzz needs nightly-only compiler flags (-Zsanitizer=address, sancov). A line box or
# a fresh CI machine has its one stable toolchain and cannot fetch another, so the stable
# compiler is told to accept those flags (RUSTC_BOOTSTRAP=1): the same compiler that builds
# lineside, with ASan from its own rust-std. One path, here and in CI.
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked --quiet
fi
# The model_info and scenario targets load models through ONNX Runtime.
scripts/setup.sh >/dev/null
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/.cache/onnxruntime/1.32.0-$(uname -m)/libonnxruntime.so.1.32.0}"

summary=()
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/target/$t.log"
  mkdir -p fuzz/target
  echo "== $t: ${secs}s"
  # -rss_limit_mb: a decode or model load over 2 GiB is a finding (limits before allocation).
  "${fuzz[@]}" run "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 "$@" 2>&1 |
    tee "$log" | grep -E '^(#[0-9]+ +(INITED|DONE)|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)' || true
  # With -jobs=N libFuzzer logs each job to fuzz-<i>.log in the working folder.
  for j in fuzz-*.log; do
    [ -e "$j" ] && cat "$j" >>"$log" && rm -f "$j"
  done
  if grep -qE 'Test unit written|SUMMARY: libFuzzer|panicked' "$log"; then
    echo "fuzz: $t crashed; see $log and fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || echo '?')
  files=$(find "fuzz/corpus/$t" -type f | wc -l)
  summary+=("$(printf '%-20s %10s execs %6s corpus files' "$t" "$runs" "$files")")
done
printf '%s\n' "${summary[@]}"
