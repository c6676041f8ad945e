#!/usr/bin/env bash
# The "demo" suite of scripts/test.sh: runs ./scripts/demo.sh (the README's
# first command) on an existing build, without installing or rebuilding
# (COMMY_DEMO_PREBUILT=1), and checks the facts it prints: counts and values
# that change when the feature behind them breaks. Each check is counted;
# ends with "N passed, N failed". usage: demo_test.sh [BUILD_DIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" 2>/dev/null && pwd) || { echo "demo_test: no build directory ${1:-}"; echo "0 passed, 1 failed"; exit 1; }
[ -x "$build/tools/commy-demo-worker" ] || { echo "demo_test: $build is not built"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d /tmp/commy-demo-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() { # check NAME CONDITION-COMMAND...
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}

# Every process the demo starts inherits this marker: afterwards none may be left.
tag="demo-test-$$-$RANDOM"
status=0
COMMY_DEMO_TEST_TAG=$tag COMMY_DEMO_PREBUILT=1 COMMY_BUILD="$build" timeout -k 10 300 \
  "$root/scripts/demo.sh" >"$tmp/raw" 2>&1 || status=$?
# Without colours, for matching.
sed -E 's/\x1b\[[0-9;]*m//g' "$tmp/raw" >"$tmp/out"
out="$tmp/out"
echo "---- demo output (exit status $status)"
cat "$out"
echo "----"

# Prints replacement $2 (e.g. \1) for the first output line matching regex $1 (neither holds a #).
grab() { sed -nE "s#$1#$2#p" "$out" | head -n 1; }

check "demo exits with status 0" test "$status" = 0

# 1. Shared containers under kill -9: the four survivors verified every block
#    (0 corrupt) and `commy check` found the segment consistent.
storm() {
  local n bad
  n=$(grep -cE '^worker [1-4] \(pid [0-9]+\): [0-9]+ allocations, [0-9]+ frees, .* 0 corrupt blocks' "$out")
  bad=$(grep -cE '^worker [0-9]+ \(pid [0-9]+\): .* [1-9][0-9]* corrupt blocks' "$out")
  grep -qE '^killed 12 extra workers with SIGKILL' "$out" || return 1
  echo "  storm: $n of 4 workers report 0 corrupt blocks, $bad report corruption"
  [ "$n" = 4 ] && [ "$bad" = 0 ]
}
check "storm: 12 kill -9 victims, 4 workers with 0 corrupt blocks" storm
commy_check() {
  # The lines `commy check` printed, between its command line and the next one.
  local c
  c=$(sed -n '/^\$ commy check /,/^\$ commy inspect /p' "$out" | sed '1d;$d')
  echo "  commy check said: $(tr '\n' ' ' <<<"$c")"
  [ "$(wc -l <<<"$c")" = 1 ] && grep -qxE '/[^ ]+/storm\.seg: consistent' <<<"$c"
}
check "storm: commy check reports the segment clean" commy_check

# 2. Tasks: every one consumed exactly once (counts and sums add up), and the
#    monitor was woken by change notification.
tasks() {
  local expected total=0 sum=0 c p s line
  expected=$(grab '^producer \(pid [0-9]+\): pushed 2000 tasks and 2 stop marks .*; expected sum (-?[0-9]+)$' '\1')
  [ -n "$expected" ] || { echo "  no producer line"; return 1; }
  c=0
  while read -r p s; do
    total=$((total + p))
    sum=$((sum + s))
    c=$((c + 1))
  done < <(sed -nE 's/^consumer [12] \(pid [0-9]+\): processed ([0-9]+) tasks, sum of results (-?[0-9]+) \(multiplier 3\)$/\1 \2/p' "$out")
  echo "  $c consumers processed $total tasks, sum $sum; producer expected 2000 tasks, sum $expected"
  [ "$c" = 2 ] && [ "$total" = 2000 ] && [ "$sum" = "$expected" ] && [ "$expected" = $((3 * 2000 * 2001 / 2)) ]
}
check "tasks: 2000 tasks consumed exactly once (counts and sums match)" tasks
monitor() {
  local line
  line=$(grab '^monitor \(pid [0-9]+\): ([0-9]+) of ([0-9]+) tasks done, sum (-?[0-9]+), woken ([0-9]+) times by change notification.*' '\1 \2 \3 \4')
  echo "  monitor: done, total, sum, wakeups = ${line:-none}"
  read -r done total sum woken <<<"$line"
  [ "${done:-}" = 2000 ] && [ "${total:-}" = 2000 ] && [ "${sum:-}" = $((3 * 2000 * 2001 / 2)) ] && [ "${woken:-0}" -ge 1 ]
}
check "tasks: monitor woken by change notification, sees 2000/2000 done" monitor

# 3. One file, three languages: the C writer's values as read by Python and C#.
prices='prices=\{apple: 1\.25, kiwi: 0\.35, pear: 0\.8\}'
scores="scores in order: \[\(7, 'bob'\), \(42, 'ada'\), \(63, 'dee'\), \(99, 'cy'\)\]; log: \['written by C'\]"
check "languages: C writer wrote visits 0 -> 1" grep -qE '^C writer \(pid [0-9]+\): 3 prices, 4 scores, 1 log line, visits 0 -> 1$' "$out"
py_reader() { grep -qE "^Python reader: visits=1, $prices\$" "$out" && grep -qE "^Python reader: $scores\$" "$out"; }
check "languages: Python reader reads the C writer's values" py_reader
if command -v dotnet >/dev/null; then
  cs_reader() { grep -qE "^C# reader: visits=1, $prices\$" "$out" && grep -qE "^C# reader: $scores\$" "$out"; }
  check "languages: C# reader reads the C writer's values" cs_reader
else
  echo "skip languages: C# reader (dotnet is not installed)"
fi

# 4. commy-server: a local and a remote client of one service.
server_clients() {
  local path
  path=$(grab '^ *\[ *[0-9.]+s\] local client +open_service\(demo, mode=local\) -> (/[^ ]+) \(mode [0-7]+\)$' '\1')
  echo "  local client's file: ${path:-none}"
  [ -n "$path" ] || return 1
  # The remote client got every write of the local process (21..26) pushed, then read 26 back.
  local pushed
  pushed=$(sed -nE 's/^ *\[ *[0-9.]+s\] remote client +push: temperature = ([0-9]+) .*/\1/p' "$out" | tr '\n' ' ')
  echo "  remote client's pushes: ${pushed:-none}"
  [ "$(sed -nE 's/^ *\[ *[0-9.]+s\] remote client +push: temperature = ([0-9]+) .*/\1/p' "$out" | tail -n 1)" = 26 ] &&
    grep -qE '^ *\[ *[0-9.]+s\] remote client +get temperature -> 26 ' "$out"
}
check "server: remote client receives the local client's writes (26)" server_clients
revocation() {
  grep -qE 'revoke_client\(sensor\) -> 1 service rotated, 1 connection closed$' "$out" &&
    grep -qE '^ *\[ *[0-9.]+s\] sensor +push: closing \(reason revoked\)$' "$out" &&
    grep -qE '^ *\[ *[0-9.]+s\] panel +push: rotated -> /' "$out" &&
    grep -qE '^ *\[ *[0-9.]+s\] panel +get temperature -> 32 ' "$out" &&
    grep -qE '^ *\[ *[0-9.]+s\] panel +push: temperature = 34 ' "$out" &&
    grep -qE "^ *\\[ *[0-9.]+s\\] anyone +authenticate with sensor's old token -> [A-Z_]+\$" "$out"
}
check "server: revocation closes the client, rotates the file, keeps the data" revocation
server_stop() {
  local n
  n=$(grep -cE '^ *server pid [0-9]+ stopped cleanly \(exit status 0\)$' "$out")
  echo "  $n servers stopped cleanly"
  [ "$n" = 2 ] && grep -qE '^ *\[ *[0-9.]+s\] panel +push: closing \(reason shutdown\)$' "$out" && grep -qx 'server demo: ok' "$out"
}
check "server: both servers stopped with status 0, clients told why" server_stop

# 5. Nothing left behind: no process carrying the marker (a commy-server, a
#    worker, a client), and no temp directory.
leftovers() {
  local e pids=()
  sleep 0.5 # processes already signalled may still be on their way out
  for e in /proc/[0-9]*/environ; do
    grep -qzx "COMMY_DEMO_TEST_TAG=$tag" "$e" 2>/dev/null || continue
    e=${e#/proc/}
    pids+=("${e%/environ}")
  done
  ((${#pids[@]} == 0)) && return 0
  echo "  processes left behind:"
  for e in "${pids[@]}"; do echo "    $e $(tr '\0' ' ' <"/proc/$e/cmdline" 2>/dev/null)"; done
  return 1
}
check "no process left behind" leftovers
no_temp() {
  local work seg
  work=$(grab '^Everything ran in (/[^ ]+), removed on exit\..*' '\1')
  seg=$(grab '^segment: (/[^ ]+)$' '\1')
  echo "  work directory: ${work:-none}"
  [ -n "$work" ] && [ "$(dirname "$seg")" = "$work" ] && [ ! -e "$work" ]
}
check "temp directory removed" no_temp

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
