#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the C tests (CTest),
# the same under ASan+UBSan, the C tests under valgrind, the fuzzers briefly,
# the CLI tests, the Python and C# suites, the cross-language conformance
# suite and ./scripts/demo.sh on that build (scripts/demo_test.sh). Ends with
# the line "N passed, N failed".
#
# Environment: COMMY_SKIP="asan valgrind fuzz csharp ..." skips suites by name;
# COMMY_FUZZ_SECONDS (default 20) per fuzz target.
set -uo pipefail
. "$(dirname "$0")/common.sh"
cd "$COMMY_ROOT"

ensure_deps || exit 1
build_release || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
declare -a table=()
logs="$COMMY_BUILD/test-logs"
mkdir -p "$logs"

skipped() { [[ " ${COMMY_SKIP:-} " == *" $1 "* ]]; }

# Adds a suite's counts. The suite's output must end with "N passed, N failed"
# or be CTest's summary; a suite that prints neither counts as one test.
count() {
  local name=$1 status=$2 logf=$3 p f line
  line=$(grep -E '^[a-zA-Z: ]*[0-9]+ passed, [0-9]+ failed' "$logf" | tail -1)
  if [ -n "$line" ]; then
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
  elif line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$logf" | tail -1) && [ -n "$line" ]; then
    f=$(sed -E 's/.* ([0-9]+) tests failed out of.*/\1/' <<<"$line")
    p=$(($(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line") - f))
  elif [ "$status" = 0 ]; then
    p=1 f=0
  else
    p=0 f=1
  fi
  if [ "$status" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  table+=("$(printf '%-14s %6s passed %4s failed' "$name" "$p" "$f")")
  if [ "$f" != 0 ]; then
    echo "---- $name failed; the end of $logf:"
    tail -60 "$logf"
    echo "----"
  fi
}

suite() {
  local name=$1
  shift
  if skipped "$name"; then
    log "$name: skipped (COMMY_SKIP)"
    return
  fi
  log "$name"
  local logf="$logs/$name.log" start=$SECONDS
  "$@" >"$logf" 2>&1
  local status=$?
  count "$name" "$status" "$logf"
  echo "   ($((SECONDS - start)) s) ${table[-1]}"
}

ctest_release() { (cd "$COMMY_BUILD" && ctest -j2 --timeout 600 --output-on-failure); }

ctest_asan() {
  local b="$COMMY_ROOT/build-asan"
  cmake -S . -B "$b" -DCOMMY_SANITIZE=ON -DCOMMY_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$b" -j2 >/dev/null || return 1
  # Fewer kill -9 trials under the sanitizers: they are ten times slower.
  (cd "$b" && COMMY_CRASH_TRIALS=40 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest -j2 --timeout 900 --output-on-failure -E 'install_consumer|abi_compatible|header_c99')
}

valgrind_c() {
  # Every single-process C test under memcheck (the kill -9 and multi-process
  # ones fork dozens of children and run under the sanitizers instead).
  local n=0 bad=0
  for t in "$COMMY_BUILD"/tests/test_*; do
    case "$(basename "$t")" in *crash* | *_mp) continue ;; esac
    [ -x "$t" ] || continue
    if COMMY_TEST_QUICK=1 timeout 900 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      "$t" >"$logs/valgrind-$(basename "$t").log" 2>&1; then
      n=$((n + 1))
    else
      bad=$((bad + 1))
      echo "valgrind: $(basename "$t") failed:"
      tail -30 "$logs/valgrind-$(basename "$t").log"
    fi
  done
  valgrind_more
  echo "$n passed, $bad failed"
  [ "$bad" = 0 ]
}

valgrind_more() {
  # The server's parsers of untrusted auth bytes (JWT, callback answers), and
  # the docs' examples that do not fork (first, notify and crash do: they run
  # under the sanitizers), each as docs/examples/run.sh runs it, its output
  # compared with the .expected file. Adds to valgrind_c's n and bad.
  local t="$COMMY_BUILD/server/test_auth_parsers" ex tmp vg=(valgrind -q --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite)
  if [ -x "$t" ]; then
    if COMMY_TEST_QUICK=1 timeout 300 "${vg[@]}" "$t" >"$logs/valgrind-test_auth_parsers.log" 2>&1; then
      n=$((n + 1))
    else
      bad=$((bad + 1))
      echo "valgrind: test_auth_parsers failed:"
      tail -30 "$logs/valgrind-test_auth_parsers.log"
    fi
  fi
  for ex in containers batch iterate growth errors; do
    t="$COMMY_BUILD/tests/examples/example_$ex"
    [ -x "$t" ] || continue
    tmp=$(mktemp -d)
    if timeout 300 "${vg[@]}" "$t" "$tmp/example.seg" >"$tmp/out" 2>"$logs/valgrind-example_$ex.log" &&
      diff -u "docs/examples/$ex.expected" "$tmp/out" >>"$logs/valgrind-example_$ex.log"; then
      n=$((n + 1))
    else
      bad=$((bad + 1))
      echo "valgrind: example_$ex failed:"
      tail -30 "$logs/valgrind-example_$ex.log"
    fi
    rm -rf "$tmp"
  done
}

fuzz() { "$COMMY_ROOT/scripts/fuzz.sh" "${COMMY_FUZZ_SECONDS:-20}" && echo "fuzzers clean"; }

suite "c" ctest_release
suite "asan+ubsan" ctest_asan
suite "valgrind" valgrind_c
suite "fuzz" fuzz
[ -x tools/tests/run.sh ] && suite "cli" tools/tests/run.sh "$COMMY_BUILD"
[ -f python/run_tests.py ] && suite "python" python3 python/run_tests.py
if command -v dotnet >/dev/null && [ -x csharp/run_tests.sh ]; then suite "csharp" csharp/run_tests.sh; fi
[ -x conformance/run.sh ] && suite "conformance" conformance/run.sh "$COMMY_BUILD"
[ -x scripts/demo_test.sh ] && suite "demo" scripts/demo_test.sh "$COMMY_BUILD"

echo
log "summary"
printf '%s\n' "${table[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
