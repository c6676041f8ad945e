#!/bin/sh
# Tests of the commy command-line tool.
# Usage: tools/tests/run.sh [PATH/TO/commy | BUILD-DIR]   (default: build/tools/commy)
# The demo worker (commy-demo-worker, next to commy) creates the segments.
# Ends with "N passed, N failed"; exit status 1 if anything failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
commy=${1:-${COMMY:-$root/build/tools/commy}}
[ -d "$commy" ] && commy=$commy/tools/commy
worker=${COMMY_WORKER:-$(dirname "$commy")/commy-demo-worker}
for exe in "$commy" "$worker"; do
    if [ ! -x "$exe" ]; then
        echo "tools/tests/run.sh: $exe is not built; pass the path of the commy binary" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/commy-cli-test.XXXXXX")
bg=""
cleanup() {
    [ -n "$bg" ] && kill -9 "$bg" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; [ -s "$tmp/err" ] && sed 's/^/     stderr: /' "$tmp/err" | head -5; }

# run NAME EXPECTED_STATUS CMD...: runs CMD with stdout in $tmp/out, stderr in $tmp/err.
run() {
    name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then return 0; fi
    echo "     $name: exit status $got, expected $want"
    return 1
}
out_has() { grep -q -- "$1" "$tmp/out"; }
err_has() { grep -q -- "$1" "$tmp/err"; }
err_lines() { wc -l <"$tmp/err" | tr -d ' '; }

# An error about a file: exit 1, nothing on stdout, one line on stderr naming the file.
expect_file_error() {
    name=$1 file=$2 reason=$3
    shift 3
    if run "$name" 1 "$commy" "$@" "$file" && [ ! -s "$tmp/out" ] && [ "$(err_lines)" = 1 ] && err_has "$file" &&
        grep -qi -- "$reason" "$tmp/err"; then
        ok "$name"
    else
        bad "$name (wanted one stderr line naming the file and matching '$reason')"
    fi
}

json_check() { # json_check NAME PYTHON-EXPR-OVER-d
    if python3 -c "import json,sys; d=json.load(open('$tmp/out')); sys.exit(0 if ($2) else 1)" 2>>"$tmp/err"; then
        ok "$1"
    else
        bad "$1"
        head -c 600 "$tmp/out"
    fi
}

# ---- usage ----
if run help 0 "$commy" --help && out_has "usage:" && out_has "inspect FILE"; then ok "commy --help"; else bad "commy --help"; fi
if run ihelp 0 "$commy" inspect --help && out_has "--json"; then ok "commy inspect --help"; else bad "commy inspect --help"; fi
if run chelp 0 "$commy" check --help && out_has "--locked"; then ok "commy check --help"; else bad "commy check --help"; fi
if run version 0 "$commy" --version && out_has "^commy [0-9][0-9]*\.[0-9][0-9]*\.[0-9]"; then ok "commy --version"; else bad "commy --version"; fi
if run noargs 2 "$commy" && err_has "usage:"; then ok "no command: usage, exit 2"; else bad "no command: usage, exit 2"; fi
if run unknown 2 "$commy" frobnicate && err_has "unknown command 'frobnicate'" && err_has "usage:"; then
    ok "unknown command: usage, exit 2"; else bad "unknown command: usage, exit 2"; fi
if run unknownopt 2 "$commy" --frob && err_has "unknown option"; then ok "unknown option: exit 2"; else bad "unknown option: exit 2"; fi
if run ibadopt 2 "$commy" inspect --yaml x && err_has "unknown option '--yaml'"; then
    ok "inspect unknown option: exit 2"; else bad "inspect unknown option: exit 2"; fi
if run nofile 2 "$commy" inspect && err_has "missing FILE"; then ok "inspect without FILE: exit 2"; else bad "inspect without FILE: exit 2"; fi
if run twofiles 2 "$commy" check a b; then ok "check with two FILEs: exit 2"; else bad "check with two FILEs: exit 2"; fi

# ---- a fresh segment ----
seg=$tmp/fresh.mem
"$worker" alloc-worker "$seg" 0 1 >/dev/null 2>"$tmp/err" || bad "creating a segment with the demo worker"
if run fresh 0 "$commy" inspect "$seg" && out_has "^segment $seg" && out_has "layout  *1\.0" &&
    out_has "consistency: ok" && out_has "processes (0 of" && out_has "live allocs  *0$" && out_has "roots (0)"; then
    ok "inspect on a fresh segment"
else
    bad "inspect on a fresh segment"
    cat "$tmp/out"
fi
if run freshjson 0 "$commy" inspect --json "$seg"; then
    json_check "inspect --json parses and matches" \
        'd["path"] == "'"$seg"'" and d["header"]["layout_major"] == 1 and d["header"]["header_size"] == 4096 and d["check"]["ok"] is True and d["processes"] == [] and d["roots"] == [] and d["heap"]["live_allocs"] == 0 and 0 < d["heap"]["used"] + d["heap"]["free"] <= d["heap"]["heap_size"] and d["heap"]["free"] > 0'
else
    bad "inspect --json on a fresh segment"
fi
if run check 0 "$commy" check "$seg" && out_has "consistent"; then ok "check on a fresh segment: exit 0"; else bad "check on a fresh segment: exit 0"; fi
if run checklocked 0 "$commy" check --locked "$seg" && out_has "consistent"; then ok "check --locked: exit 0"; else bad "check --locked: exit 0"; fi

# A path with characters JSON must escape comes out as valid JSON.
odd="$tmp/we\"ird\\name	tab.mem"
cp "$seg" "$odd"
if run oddjson 0 "$commy" inspect --json "$odd"; then
    json_check "--json escapes quotes, backslashes and tabs" 'd["path"].endswith("we\"ird\\name\ttab.mem")'
else
    bad "inspect --json on an oddly named file"
fi

# A path that is not UTF-8 still gives valid JSON (the stray byte becomes U+FFFD).
nonutf=$(printf '%s/caf\351-\303\251.mem' "$tmp")
cp "$seg" "$nonutf"
if run nonutf 0 "$commy" inspect --json "$nonutf"; then
    json_check "--json replaces bytes that are not UTF-8" 'd["path"].endswith("caf\ufffd-\u00e9.mem")'
else
    bad "inspect --json on a file whose name is not UTF-8"
fi

# ---- a live process, then one killed with SIGKILL ----
"$worker" alloc-worker "$seg" 30 7 >/dev/null 2>&1 &
bg=$!
sleep 1
if run live 0 "$commy" inspect --json --locked "$seg"; then
    json_check "a live worker shows as attached and alive; --locked check is consistent" \
        'd["check"]["ok"] is True and d["check"]["locked"] is True and any(p["pid"] == '"$bg"' and p["alive"] and p["state"] == "attached" for p in d["processes"])'
else
    bad "inspect --json --locked while a worker runs"
fi
# Without the lock the walk may race the worker: never a hard failure while it lives.
if run livetext 0 "$commy" inspect "$seg" && grep -Eq "^ +[0-9]+ +$bg +attached +yes" "$tmp/out" &&
    grep -Eq "^consistency: (ok|not confirmed)" "$tmp/out"; then
    ok "text table shows the live worker"
else
    bad "text table shows the live worker"
    cat "$tmp/out"
fi
if run livecheck 0 "$commy" check --locked "$seg"; then ok "check --locked while a worker runs"; else bad "check --locked while a worker runs"; fi
kill -9 "$bg"
wait "$bg" 2>/dev/null
deadpid=$bg
bg=""
# The read-only view may see the dead worker's unfinished change: only its table matters here.
"$commy" inspect --json "$seg" >"$tmp/out" 2>"$tmp/err"
json_check "a killed worker shows as not alive" \
    'any(p["pid"] == '"$deadpid"' and not p["alive"] for p in d["processes"])'
if run afterkill 0 "$commy" check --locked "$seg" && out_has "consistent"; then
    ok "check --locked after SIGKILL: consistent"
else
    bad "check --locked after SIGKILL: consistent"
fi
if run afterkill2 0 "$commy" inspect --json "$seg"; then
    json_check "after recovery: consistent, no live allocations leaked by the check" 'd["check"]["ok"] is True and all(p["pid"] != '"$deadpid"' or not p["alive"] for p in d["processes"])'
else
    bad "inspect after SIGKILL and check --locked"
fi

# ---- roots, when the containers are built ----
rseg=$tmp/roots.mem
if "$worker" producer "$rseg" 10 2 >/dev/null 2>"$tmp/err"; then
    if run roots 0 "$commy" inspect "$rseg" && out_has "roots (4)" &&
        grep -Eq "^ +tasks +deque +i64 +- +12 " "$tmp/out" && grep -Eq "^ +config +map +str +i64 +1 " "$tmp/out"; then
        ok "inspect lists roots with kind, types and length"
    else
        bad "inspect lists roots with kind, types and length"
        cat "$tmp/out"
    fi
    if run rootsjson 0 "$commy" inspect --json "$rseg"; then
        json_check "--json lists roots" \
            '[r["name"] for r in d["roots"]] == ["tasks", "done", "sum", "config"] and d["roots"][0]["kind"] == "deque" and d["roots"][0]["len"] == 12 and d["roots"][0]["value_type"] is None and d["roots"][3]["value_type"] == "i64" and all(r["bytes"] >= 64 for r in d["roots"])'
    else
        bad "inspect --json with roots"
    fi
    # a removed root gives its memory back to the heap, and inspect shows it
    "$commy" inspect --json "$rseg" >"$tmp/before.json" 2>/dev/null
    if "$worker" remove-root "$rseg" config 2>"$tmp/err" && run removed 0 "$commy" inspect --json "$rseg"; then
        json_check "inspect after a root is removed: its bytes are back in the heap" \
            '(b := json.load(open("'"$tmp"'/before.json"))) is not None and [r["name"] for r in d["roots"]] == ["tasks", "done", "sum"] and d["heap"]["used"] <= b["heap"]["used"] - next(r["bytes"] for r in b["roots"] if r["name"] == "config") and d["heap"]["live_allocs"] < b["heap"]["live_allocs"] and d["heap"]["free"] > b["heap"]["free"] and d["check"]["ok"] is True'
    else
        bad "inspect after a root is removed"
        cat "$tmp/err"
    fi
else
    bad "creating containers with the demo producer"
fi

# ---- files that are not segments ----
python3 -c "import sys; sys.stdout.write('this is not a commy segment\n' * 400)" >"$tmp/foreign.txt"
expect_file_error "inspect a foreign file: exit 1, one line" "$tmp/foreign.txt" "not a commy segment\|corrupt\|magic" inspect
expect_file_error "check a foreign file: exit 1, one line" "$tmp/foreign.txt" "not a commy segment\|corrupt\|magic" check
expect_file_error "inspect --json a foreign file: error, not JSON" "$tmp/foreign.txt" "not a commy segment\|corrupt\|magic" inspect --json

head -c 2000 "$seg" >"$tmp/trunc1.mem"
expect_file_error "inspect a file cut inside the header" "$tmp/trunc1.mem" "truncat\|too small\|short\|corrupt" inspect
head -c 65536 "$seg" >"$tmp/trunc2.mem"
expect_file_error "inspect a file cut after the header" "$tmp/trunc2.mem" "truncat\|too small\|short\|size\|corrupt" inspect

: >"$tmp/empty.mem"
expect_file_error "inspect an empty file" "$tmp/empty.mem" "empty\|truncat\|too small\|not a commy\|corrupt" inspect

expect_file_error "inspect a missing file" "$tmp/missing.mem" "does not exist\|no such" inspect
if [ -e "$tmp/missing.mem" ]; then bad "inspect must not create a missing file"; else ok "inspect does not create a missing file"; fi
expect_file_error "check a missing file" "$tmp/missing.mem" "does not exist\|no such" check

mkdir "$tmp/adir"
expect_file_error "inspect a directory" "$tmp/adir" "directory\|not a regular file" inspect

cp "$seg" "$tmp/badmagic.mem"
printf 'XXXXXXXX' | dd of="$tmp/badmagic.mem" bs=1 seek=0 conv=notrunc 2>/dev/null
expect_file_error "inspect a segment with a damaged magic" "$tmp/badmagic.mem" "not a commy\|magic\|corrupt" inspect

# A file from a layout major this library does not read: the message names both.
cp "$seg" "$tmp/layout2.mem"
printf '\002\000' | dd of="$tmp/layout2.mem" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_file_error "inspect a segment of layout 2.0" "$tmp/layout2.mem" "layout 2\.0" inspect

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
