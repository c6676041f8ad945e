#!/bin/sh
# Builds commy and the benchmark with -O2 in build-bench/ and runs every
# benchmark once: commy vs Boost.Interprocess, printed as one table.
# Usage: bench/run.sh [--only alloc|containers] [--scale X] [--dir DIR]
# Exit status: 0 all targets met, 3 some target missed, 1 a failure.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${COMMY_BENCH_BUILD:-$root/build-bench}

if [ ! -f /usr/include/boost/interprocess/managed_mapped_file.hpp ]; then
    echo "bench/run.sh: Boost.Interprocess headers are missing; install them with: apt-get install -y libboost-dev" >&2
    exit 1
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DCOMMY_BUILD_BENCH=ON -DCOMMY_BUILD_TESTS=OFF -DCOMMY_SANITIZE=OFF >/dev/null
cmake --build "$build" --target commy-bench -j"$(nproc)" >/dev/null
rc=0; "$build/bench/commy-bench" "$@" || rc=$?
# The Python and C# bindings against their peers (bench/bindings.sh), unless --only picked a C benchmark.
case " $* " in *" --only "*) ;; *) [ "$rc" = 1 ] || { b=0; "$root/bench/bindings.sh" || b=$?; [ "$rc" != 0 ] || rc=$b; } ;; esac
# The mirror (bench/mirror_bench.py): write-to-push latency across two servers, throughput with it on and off.
case " $* " in *" --only "*) ;; *) { cmake --build "$build" --target commy-server -j"$(nproc)" >/dev/null && python3 "$root/bench/mirror_bench.py" "$build"; } || { echo "bench/run.sh: the mirror benchmark failed" >&2; rc=1; } ;; esac
# commy-server over WSS against redis-server over TLS (bench/server_bench.sh): round trips and 50-client throughput.
case " $* " in *" --only "*) ;; *) s=0; "$root/bench/server_bench.sh" || s=$?; [ "$s" = 0 ] || [ "$rc" = 1 ] || rc=$([ "$s" = 3 ] && echo 3 || echo 1) ;; esac
exit $rc
