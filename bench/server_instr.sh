#!/bin/sh
# Instructions per request of commy-server and of redis-server, counted by
# valgrind's callgrind (a figure that holds still on a busy machine, where the
# timings of bench/server_bench.sh move by a few percent). Each server runs
# under callgrind behind server-bench --quick (the same client, the same
# requests: 1-client set/get round trips and the 50-client run), one side at
# a time (SERVER_BENCH_ONLY). Per request = the whole event loop (commy:
# lws_service; Redis: aeMain) less the TLS handshakes (SSL_do_handshake),
# over the requests served (calls of handle_frame; of processCommand).
# Usage: bench/server_instr.sh   (needs valgrind; builds like server_bench.sh)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${COMMY_BENCH_BUILD:-$root/build-bench}
command -v valgrind >/dev/null || { echo "server_instr.sh: needs valgrind" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "server_instr.sh: needs redis-server" >&2; exit 1; }
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DCOMMY_BUILD_BENCH=ON -DCOMMY_BUILD_TESTS=OFF -DCOMMY_SANITIZE=OFF >/dev/null
fi
cmake --build "$build" --target commy-server server-bench -j"$(nproc)" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
redis=$(command -v redis-server)
mkdir "$tmp/bin"
printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s "%s" "$@"\n' "$tmp/commy.cg" \
    "$build/server/commy-server" >"$tmp/commy-server"
printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s "%s" "$@"\n' "$tmp/redis.cg" "$redis" \
    >"$tmp/bin/redis-server"
chmod +x "$tmp/commy-server" "$tmp/bin/redis-server"
SERVER_BENCH_ONLY=commy "$build/bench/server-bench" "$tmp/commy-server" --quick >"$tmp/commy.log" 2>&1 || true
PATH="$tmp/bin:$PATH" SERVER_BENCH_ONLY=redis "$build/bench/server-bench" "$build/server/commy-server" --quick \
    >"$tmp/redis.log" 2>&1 || true
for f in "$tmp/commy.cg" "$tmp/redis.cg"; do
    [ -s "$f" ] || { echo "server_instr.sh: no profile $f; the runs said:" >&2; cat "$tmp"/*.log >&2; exit 1; }
done
# inclusive instructions of a function
incl() { callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E "[:?]$2 \[" | head -1 | awk '{gsub(",","",$1); print $1}'; }
# how often a function was called (the sum over its callers)
ncalls() {
    callgrind_annotate --tree=caller "$1" 2>/dev/null | awk -v fn="$2" '
      /^ *[0-9,]+ .* < / { if (match($0, /\(([0-9,]+)x\)/)) { c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c); acc += c } next }
      /\* / { if ($0 ~ ("[:?]" fn " ")) { print acc; exit } acc = 0; next }
      { acc = 0 }'
}
c_loop=$(incl "$tmp/commy.cg" lws_service) c_hs=$(incl "$tmp/commy.cg" SSL_do_handshake)
c_n=$(ncalls "$tmp/commy.cg" handle_frame) c_hf=$(incl "$tmp/commy.cg" handle_frame)
c_w=$(incl "$tmp/commy.cg" SSL_write) c_r=$(incl "$tmp/commy.cg" SSL_read)
r_loop=$(incl "$tmp/redis.cg" aeMain) r_hs=$(incl "$tmp/redis.cg" SSL_do_handshake)
r_n=$(ncalls "$tmp/redis.cg" processCommand)
r_w=$(incl "$tmp/redis.cg" SSL_write) r_r=$(incl "$tmp/redis.cg" SSL_read)
printf '%-14s %9s %14s %16s\n' server requests "instr/request" "of it SSL r+w"
printf '%-14s %9d %14d %16d\n' commy-server "$c_n" $(((c_loop - c_hs) / c_n)) $(((c_w + c_r) / c_n))
printf '%-14s %9d %14d %16d\n' redis-server "$r_n" $(((r_loop - r_hs) / r_n)) $(((r_w + r_r) / r_n))
printf 'commy-server handle_frame (parse, apply, reply, write): %d instr/request\n' $((c_hf / c_n))
