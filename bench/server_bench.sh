#!/bin/sh
# commy-server (WSS) against redis-server (TLS) on loopback, in one run:
# 1-client set/get round trips (p50, p99) and 50-client throughput, plus the
# local path (a session in local mode against the core alone), with
# MET/MISSED against the targets of issue 6. Builds commy-server and
# server-bench with -O2 in build-bench/ (or $COMMY_BENCH_BUILD).
# Usage: bench/server_bench.sh [--quick]
# Exit status: 0 all targets met, 3 some target missed, 1 a failure.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${COMMY_BENCH_BUILD:-$root/build-bench}
if ! command -v redis-server >/dev/null; then
    echo "bench/server_bench.sh: redis-server is missing; install it with: apt-get install -y redis-server" >&2
    exit 1
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DCOMMY_BUILD_BENCH=ON -DCOMMY_BUILD_TESTS=OFF -DCOMMY_SANITIZE=OFF >/dev/null
fi
cmake --build "$build" --target commy-server server-bench -j"$(nproc)" >/dev/null
exec "$build/bench/server-bench" "$build/server/commy-server" "$@"
