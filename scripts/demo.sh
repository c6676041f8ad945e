#!/usr/bin/env bash
# Shows commy doing what it is for, on an embedded default (a temp
# directory): processes sharing containers zero-copy, surviving a kill -9,
# woken by change notification, and three languages reading one file.
# Installs what is missing and builds first. Exits by itself.
# COMMY_DEMO_PREBUILT=1 (scripts/test.sh's demo suite) skips the package
# install and the CMake build and runs on the build already in $COMMY_BUILD.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$COMMY_ROOT"

if [ "${COMMY_DEMO_PREBUILT:-}" != 1 ]; then
  ensure_deps
  build_release
fi

bin="$COMMY_BUILD/tools"
work=$(mktemp -d /tmp/commy-demo-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1;36m## %s\033[0m\n' "$*"; }

say "1. Processes allocate in one segment; some are killed with SIGKILL mid-work"
seg="$work/storm.seg"
echo "segment: $seg"
for id in 1 2 3 4; do
  "$bin/commy-demo-worker" alloc-worker "$seg" 3 "$id" &
  pids+=($!)
done
# Meanwhile, victims: each starts the same work and is killed with SIGKILL
# a moment later, often while it holds the segment lock mid-change.
victims=0
while [ "$victims" -lt 12 ]; do
  "$bin/commy-demo-worker" alloc-worker "$seg" 30 $((100 + victims)) >/dev/null &
  victim=$!
  sleep 0.2
  kill -9 "$victim"
  wait "$victim" 2>/dev/null || true
  victims=$((victims + 1))
done
echo "killed $victims extra workers with SIGKILL in the middle of their work; the four others carry on:"
for p in "${pids[@]}"; do wait "$p"; done
pids=()
recovered=$("$bin/commy" inspect --json "$seg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["recoveries"])')
if [ "$recovered" = 0 ]; then
  echo "none of the kills landed inside a locked change this time (nothing to roll back; the segment is consistent either way)"
else
  echo "$recovered of the kills landed inside a locked change: the next process to take the lock rolled it back from the journal"
fi
echo
echo "\$ commy check $seg"
"$bin/commy" check "$seg"
echo
echo "\$ commy inspect $seg"
"$bin/commy" inspect "$seg"

say "2. A producer and two consumers share a task deque, a counter and a config map"
tasks="$work/tasks.seg"
echo "consumers sleep in commy_deque_pop_front_wait and the monitor in commy_box_wait: no polling"
"$bin/commy-demo-worker" consumer "$tasks" 1 &
pids+=($!)
"$bin/commy-demo-worker" consumer "$tasks" 2 &
pids+=($!)
sleep 0.3
"$bin/commy-demo-worker" monitor "$tasks" 2000 20 &
pids+=($!)
sleep 0.3
"$bin/commy-demo-worker" producer "$tasks" 2000 2
for p in "${pids[@]}"; do wait "$p"; done
pids=()
echo
echo "\$ commy inspect $tasks   (the roots)"
"$bin/commy" inspect "$tasks" | sed -n '/^roots/,$p'

say "3. One file, three languages: C writes, Python and C# read (read-only, zero-copy)"
shared="$work/shared.seg"
"$bin/commy-demo-worker" shared-write "$shared"
venv="$COMMY_BUILD/demo-venv"
# Reinstall when the package or the C sources it bundles changed since the last install.
if [ ! -f "$venv/.installed" ] || [ -n "$(find abi core bindings python -newer "$venv/.installed" -type f -print -quit)" ]; then
  log "installing the Python package into $venv (pip install ./python)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-build-isolation --no-index ./python >"$COMMY_BUILD/demo-pip.log" 2>&1 || {
    tail -20 "$COMMY_BUILD/demo-pip.log"
    exit 1
  }
  touch "$venv/.installed"
fi
"$venv/bin/python" scripts/demo/reader.py "$shared"
if command -v dotnet >/dev/null; then
  log "building the C# reader (csharp/demo)"
  dotnet build csharp/demo -c Release -o "$COMMY_BUILD/csharp-demo" >"$COMMY_BUILD/demo-dotnet.log" 2>&1 || {
    tail -20 "$COMMY_BUILD/demo-dotnet.log"
    exit 1
  }
  dotnet "$COMMY_BUILD/csharp-demo/Commy.Demo.dll" "$shared"
else
  echo "(dotnet is not installed: skipping the C# reader)"
fi

if [ -x "$COMMY_BUILD/server/commy-server" ] && [ -f scripts/demo/server.sh ]; then
  say "4. commy-server: a local and a remote client of one service"
  bash scripts/demo/server.sh "$COMMY_BUILD" "$work"
fi

say "done"
echo "Everything ran in $work, removed on exit. Read on: README.md, docs/c.md, docs/python.md, docs/csharp.md,"
echo "docs/sessions.md (local and remote clients), docs/deploying.md (one server or a Redis-mirrored group), docs/format.md."
