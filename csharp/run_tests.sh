#!/usr/bin/env bash
# Builds and tests the C# binding from a clean tree: the xunit suite in
# csharp/tests (which builds the native libraries through Commy.csproj), the
# package, and the sample that consumes the package from a local feed.
# Ends with the line "N passed, N failed".
set -u
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
config="${CONFIGURATION:-Release}"
passed=0
failed=0
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# The session tests start a real commy-server: build it if there is none yet.
root="$(cd "$here/.." && pwd)"
build="${COMMY_BUILD:-$root/build}"
if [ -z "${COMMY_SERVER:-}" ] && [ ! -x "$build/server/commy-server" ]; then
    echo "run_tests: building commy-server in $build for the session tests"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$build" --target commy-server -j2 >/dev/null || echo "run_tests: building commy-server failed"
fi
export COMMY_BUILD="$build"

# 1. xunit: counts come from the TRX report.
results="$here/artifacts/test-results"
rm -rf "$results"
timeout 900 dotnet test tests/Commy.Tests -c "$config" --logger "trx;LogFileName=commy.trx" \
    --results-directory "$results" 2>&1 | grep -v "warning xUnit"
trx="$results/commy.trx"
if [ -f "$trx" ]; then
    p=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    f=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
else
    echo "run_tests: the xunit run produced no report (build failure?)"
    failed=$((failed + 1))
fi

# 2. The package, and the sample that uses it from the local feed only.
sample_ok=0
rm -rf artifacts/feed sample/obj sample/bin
if timeout 600 dotnet pack Commy -c "$config" -o artifacts/feed 2>&1 | tail -3; then
    unzip -l artifacts/feed/Commy.1.0.0.nupkg | grep -q 'runtimes/linux-x64/native/libcommy_csharp.so' &&
    unzip -l artifacts/feed/Commy.1.0.0.nupkg | grep -q 'runtimes/linux-x64/native/libcommy.so.1' &&
    seg="$(mktemp -u /tmp/commy-sample-XXXXXX.mem)" &&
    (unset LD_LIBRARY_PATH; timeout 600 dotnet run --project sample -c "$config" -- "$seg" >/dev/null &&
        out="$(timeout 120 dotnet run --project sample -c "$config" --no-build -- "$seg")" &&
        echo "$out" && echo "$out" | grep -q '^run 2: 2 prices, pear costs 2.5$' &&
        [ "$(echo "$out" | grep -c '^run [12] by process')" = 2 ]) && sample_ok=1
    rm -f "${seg:-}"
fi
if [ "$sample_ok" = 1 ]; then
    echo "sample from the package: passed"
    passed=$((passed + 1))
else
    echo "sample from the package: FAILED"
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
