#!/bin/sh
# The bindings' benchmarks (issue 5), each against its peers in the same run:
#   Python: map set/get and vec append vs multiprocessing.Manager().dict()/list()
#           and multiprocessing.shared_memory + struct.pack_into;
#   C#:     Map<long,long> set/get vs a table in a MemoryMappedViewAccessor.
# Prints the figures side by side with the ratios and MET/MISSED per target.
# Usage: bench/bindings.sh [--only python|csharp]
# Exit status: 0 all targets met, 3 some target missed, 1 a failure.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${COMMY_BENCH_BUILD:-$root/build-bench}
only=""
[ "${1:-}" = "--only" ] && only=${2:-}
status=0
note() { [ "$1" = 3 ] && [ "$status" = 0 ] && status=3; [ "$1" != 0 ] && [ "$1" != 3 ] && status=1; }

if [ -z "$only" ] || [ "$only" = python ]; then
    echo "== Python binding (bench/python_bench.py)"
    # The package as pip builds it (setup.py: SWIG, -O2), into the bench build tree.
    if (cd "$root/python" && python3 setup.py -q build --build-base "$build/python" >"$build/python-build.log" 2>&1); then
        lib=$(ls -d "$build"/python/lib.* | head -1)
        (cd /tmp && PYTHONPATH="$lib" python3 "$root/bench/python_bench.py")
        note $?
    else
        echo "bench/bindings.sh: building the Python package failed; see $build/python-build.log" >&2
        status=1
    fi
fi

if [ -z "$only" ] || [ "$only" = csharp ]; then
    echo "== C# binding (csharp/bench)"
    if command -v dotnet >/dev/null 2>&1; then
        export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
        if dotnet build "$root/csharp/bench" -c Release >"$build/csharp-build.log" 2>&1; then
            dotnet run --project "$root/csharp/bench" -c Release --no-build
            note $?
        else
            echo "bench/bindings.sh: building csharp/bench failed; see $build/csharp-build.log" >&2
            status=1
        fi
    else
        echo "bench/bindings.sh: dotnet is not installed; the C# benchmark was not run" >&2
        status=1
    fi
fi
exit $status
