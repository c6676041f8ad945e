#!/usr/bin/env bash
# Part 4 of scripts/demo.sh: commy-server on its embedded default (--demo), a
# remote and a local client of one service, live pushes, a revocation that
# rotates the file, and a clean stop. usage: server.sh BUILD_DIR WORK_DIR
# Exits 0 on success; every wait is bounded; the servers die with the script.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR WORK_DIR" >&2; exit 2; }
build=$(cd "$1" 2>/dev/null && pwd) || { echo "server demo FAILED: no build directory $1" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
server="$build/server/commy-server"
die() { echo "server demo FAILED: $*" >&2; exit 1; }
[ -x "$server" ] || die "commy-server is not built in $build/server"
mkdir -p "$2"
dir=$(mktemp -d "$(cd "$2" && pwd)/server-demo-XXXXXX")

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The local client is a native process mapping the service file with the core.
if [ -x "$build/server/local_writer" ]; then
  writer=("$build/server/local_writer")
  writer_name="server/tests/local_writer (C)"
elif [ -x "$build/demo-venv/bin/python" ]; then
  writer=("$build/demo-venv/bin/python" "$here/local_box_writer.py")
  writer_name="scripts/demo/local_box_writer.py (the commy Python package)"
else
  die "no local client: build server/tests/local_writer or install $build/demo-venv"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (at most $2 seconds) for the first line of file $1, failing if pid $3 dies.
first_line() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    [ -s "$1" ] && head -n 1 "$1" | grep -q . && { head -n 1 "$1"; return 0; }
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

printf '\n\033[1m1. Starting commy-server --demo (temp data root, self-signed certificate, tenant "demo")\033[0m\n'
port=$(free_port)
echo "\$ commy-server --demo --port $port"
TMPDIR="$dir" "$server" --demo --port "$port" >"$dir/demo.out" 2>"$dir/demo.log" &
demo_pid=$!
pids+=("$demo_pid")
info=$(first_line "$dir/demo.out" 15 "$demo_pid") || { cat "$dir/demo.log" >&2; die "the demo server printed nothing in 15 s"; }
echo "$info" >"$dir/info.json"
echo "  pid $demo_pid printed: $info"
api_key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$dir/info.json")
cert=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cert"])' "$dir/info.json")
echo "  API key captured: ${api_key%%.*}.<secret>; certificate: $cert"
echo "  local client: $writer_name"

# Step 5 needs one API key per client (the demo tenant has one key for
# everybody): a second server, same certificate, three keys.
rport=$(free_port)
declare -A secret
for k in ops sensor panel; do secret[$k]="$k-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; done
hash() { timeout 10 "$server" --hash-key "$1"; }
cat >"$dir/revoke.json" <<EOF
{"listen": {"address": "127.0.0.1", "port": $rport},
 "tls": {"cert": "$cert", "key": "$(dirname "$cert")/demo-key.pem"},
 "data_root": "$dir/revoke-data",
 "tenants": [{"name": "demo",
   "auth": {"mode": "server_managed", "api_keys": [
     {"id": "ops", "hash": "$(hash "${secret[ops]}")", "client_id": "ops", "scopes": ["read", "write", "admin"]},
     {"id": "sensor", "hash": "$(hash "${secret[sensor]}")", "client_id": "sensor", "scopes": ["read", "write"]},
     {"id": "panel", "hash": "$(hash "${secret[panel]}")", "client_id": "panel", "scopes": ["read", "write"]}]},
   "services": [{"name": "demo"}]}]}
EOF
printf '{"ops": "ops.%s", "sensor": "sensor.%s", "panel": "panel.%s"}\n' \
  "${secret[ops]}" "${secret[sensor]}" "${secret[panel]}" >"$dir/keys.json"
"$server" --config "$dir/revoke.json" >"$dir/revoke.log" 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$rport" 2>/dev/null && break
  kill -0 "$rpid" 2>/dev/null || { cat "$dir/revoke.log" >&2; die "the second server exited at start"; }
  sleep 0.1
done

timeout 60 python3 "$here/server_demo.py" "$dir/info.json" "$demo_pid" "$rport" "$cert" "$rpid" "$dir/keys.json" \
  -- "${writer[@]}" || {
  echo "--- demo server log (tail)" >&2; tail -n 15 "$dir/demo.log" >&2
  echo "--- second server log (tail)" >&2; tail -n 15 "$dir/revoke.log" >&2
  die "the clients failed (see above)"
}

# The clients sent SIGTERM; each server must exit by itself, with status 0.
for p in "$demo_pid" "$rpid"; do
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && die "server pid $p did not stop within 5 s of SIGTERM"
  rc=0
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || { cat "$dir/demo.log" "$dir/revoke.log" >&2; die "server pid $p exited with status $rc"; }
  echo "  server pid $p stopped cleanly (exit status 0)"
done
pids=()
echo "  log lines from the demo server:"
sed 's/^/    /' "$dir/demo.log" | head -n 20
echo "server demo: ok"
