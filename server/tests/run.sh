#!/bin/sh
# End-to-end tests of commy-server. usage: server/tests/run.sh [BUILD_DIR] [test names...]
# Ends with "N passed, N failed"; exits non-zero on any failure.
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
[ $# -gt 0 ] && shift
if [ ! -x "$build/server/commy-server" ]; then
    echo "commy-server not built in $build"
    echo "0 passed, 1 failed"
    exit 1
fi
"$build/server/test_wire" >/dev/null 2>&1 && wire=1 || wire=0
[ $wire = 1 ] && echo "ok   test_wire (C codec)" || echo "FAIL test_wire (C codec)"
out=$(python3 "$here/test_server.py" "$build" "$@" 2>&1)
status=$?
echo "$out" | sed '$d'
last=$(echo "$out" | tail -n 1)
p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -z "$p" ] && { echo "$last"; p=0; f=1; }
p=$((p + wire)); f=$((f + 1 - wire))
# the mirrored group (redis-server + three servers): its own script, same summary line
mout=$(python3 "$here/test_mirror.py" "$build" "$@" 2>&1)
mstatus=$?
echo "$mout" | sed '$d'
mp=$(echo "$mout" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
mf=$(echo "$mout" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -z "$mp" ] && { echo "$mout" | tail -n 1; mp=0; mf=1; }
[ $mstatus != 0 ] && [ "$mf" = 0 ] && mf=1
p=$((p + mp)); f=$((f + mf))
# the failures again, next to the summary: a log cut to its tail still names them
if [ "$f" != 0 ]; then
    printf '%s\n%s\n' "$out" "$mout" | grep -E '^(FAIL|ERROR)' | sed 's/^/failed: /'
    [ $wire = 1 ] || echo "failed: test_wire (C codec)"
fi
echo "$p passed, $f failed"
[ "$f" = 0 ] && [ $status = 0 ]
