#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, coverage on the whole
# library) and runs each for SECONDS (default 20). Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCOMMY_FUZZ=ON -DCOMMY_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  >/dev/null
cmake --build "$build" -j2 >/dev/null
fail=0
for f in "$build"/tests/fuzz_* "$build"/conformance/fuzz_* "$build"/client/fuzz_* "$build"/server/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  seeds="tests/fuzz/seeds/$name"
  [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  if [ "$name" = fuzz_open ]; then "$build/tests/make_seed" "$corpus"; fi
  echo "fuzzing $name for ${secs}s"
  if ! "$f" "$corpus" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$build/$name-" -print_final_stats=0 >"$build/$name.log" 2>&1; then
    echo "FUZZ FAILURE in $name:"; tail -40 "$build/$name.log"; fail=1
  else
    grep -E "^#[0-9]+.*(DONE|pulse)" "$build/$name.log" | tail -1 || true
  fi
done
exit $fail
