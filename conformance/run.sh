#!/bin/sh
# Runs the whole conformance suite: builds the C, Python and C# runners, runs
# the cross-language matrix (every scenario written by each language and read
# by each language: 9 writer/reader pairs), checks the golden files in every
# language, and runs the cross-language concurrency test. Prints a summary
# table (kind x type x pair) and ends with "N passed, N failed".
#
#   conformance/run.sh [--build-dir DIR | DIR] [--no-build] [--langs "c py cs"] [--keep]
#
# DIR defaults to build-conformance at the top of the tree (the runners and a
# Python build go there; nothing is written into the source tree). An already
# configured build directory (scripts/test.sh passes its own) is built as it
# is configured.
# Exit status: 0 if everything passed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=$ROOT/build-conformance
BUILD_RUNNERS=1
LANGS="c py cs"
KEEP=0
CONC_MS=${COMMY_CONFORMANCE_CONC_MS:-1500}
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) BUILD=$2; shift 2 ;;
    --no-build) BUILD_RUNNERS=0; shift ;;
    --langs) LANGS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -*) echo "usage: $0 [--build-dir DIR | DIR] [--no-build] [--langs \"c py cs\"] [--keep]" >&2; exit 2 ;;
    *) BUILD=$1; shift ;;
    esac
done
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/commy-conformance.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT

# ---- build the runners; a runner that does not build fails all its cells ----
BROKEN=""
log() { printf '%s\n' "$*" >&2; }

if [ "$BUILD_RUNNERS" = 1 ]; then
    case " $LANGS " in *" c "*)
        log "building the C runner in $BUILD"
        # Keep an existing configuration (its options belong to whoever made it).
        if [ -f "$BUILD/CMakeCache.txt" ]; then conf="cmake $BUILD"; else conf="cmake -S $ROOT -B $BUILD -DCOMMY_BUILD_BENCH=OFF"; fi
        if ! { $conf >"$WORK/build-c.log" 2>&1 &&
            cmake --build "$BUILD" --target commy_conformance_c -j2 >>"$WORK/build-c.log" 2>&1; }; then
            log "the C runner did not build:"; tail -20 "$WORK/build-c.log" >&2; BROKEN="$BROKEN c"
        fi ;;
    esac
    case " $LANGS " in *" py "*)
        log "building the Python package in $BUILD/python"
        if ! (cd "$ROOT/python" && python3 setup.py -q build --build-base "$BUILD/python") >"$WORK/build-py.log" 2>&1; then
            log "the Python package did not build:"; tail -20 "$WORK/build-py.log" >&2; BROKEN="$BROKEN py"
        fi ;;
    esac
    case " $LANGS " in *" cs "*)
        log "building the C# runner in $BUILD/cs"
        if ! dotnet build -nologo -v q -c Release -o "$BUILD/cs" "$HERE/csharp" >"$WORK/build-cs.log" 2>&1; then
            log "the C# runner did not build:"; grep -E "error" "$WORK/build-cs.log" | sort -u | head -20 >&2; BROKEN="$BROKEN cs"
        fi ;;
    esac
fi

PYLIB=$(ls -d "$BUILD"/python/lib.* 2>/dev/null | head -1)
runner() { # runner LANG ARGS...: runs that language's runner (from outside the tree, so `import commy` finds the build)
    lang=$1; shift
    case $lang in
    c) timeout 300 "$BUILD/conformance/runner_c" "$@" ;;
    py) (cd "$WORK" && PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 timeout 300 python3 "$HERE/runner.py" "$@") ;;
    cs) timeout 300 "$BUILD/cs/runner_cs" "$@" ;;
    esac
}
broken() { case " $BROKEN " in *" $1 "*) return 0 ;; esac; return 1; }

SCENARIOS=$(ls "$HERE"/scenarios/*.json)

# ---- the matrix ----
for w in $LANGS; do
    mkdir -p "$WORK/seg-$w"
    if broken "$w"; then continue; fi
    log "writing every scenario with $w"
    # shellcheck disable=SC2086
    runner "$w" write "$WORK/seg-$w" $SCENARIOS | sed "s/^/$w - /" >>"$RESULTS"
done
for w in $LANGS; do
    for r in $LANGS; do
        if broken "$w" || broken "$r"; then continue; fi
        log "reading $w's segments with $r"
        # Each reader gets its own copy: a reader may change what it opens.
        cp -r "$WORK/seg-$w" "$WORK/seg-$w-$r"
        # shellcheck disable=SC2086
        runner "$r" read "$WORK/seg-$w-$r" $SCENARIOS | sed "s/^/$w $r /" >>"$RESULTS"
    done
done

# ---- golden files ----
for l in $LANGS; do
    if broken "$l"; then continue; fi
    log "checking the golden files with $l"
    runner "$l" golden "$HERE/golden" | sed "s/^/$l $l /" >>"$RESULTS"
done

# ---- negative control: a golden file with one stored byte changed must fail in every language ----
CTRL=$WORK/golden-altered
cp -r "$HERE/golden" "$CTRL"
chmod u+w "$CTRL"/*
if python3 - "$CTRL/v1_small.seg" <<'PYEOF'
import sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
i = data.find(b"hello")  # the value of v1_small's str "greeting"
if i < 0 or data.find(b"hello", i + 1) >= 0:
    sys.exit(1)
data[i] = ord("j")
open(p, "wb").write(data)
PYEOF
then
    for l in $LANGS; do
        if broken "$l"; then continue; fi
        if runner "$l" golden "$CTRL" | grep "^FAIL golden v1_small" >/dev/null; then
            echo "$l $l PASS golden-control v1_small (an altered value was caught)" >>"$RESULTS"
        else
            echo "$l $l FAIL golden-control v1_small: a changed byte in a golden file went unnoticed" >>"$RESULTS"
        fi
    done
else
    echo "c c FAIL golden-control v1_small: \"hello\" is not stored exactly once in v1_small.seg" >>"$RESULTS"
fi

# ---- concurrency across languages: every language's worker pushes to one deque and counts in one box ----
CONC_LANGS=""
for l in $LANGS; do broken "$l" || CONC_LANGS="$CONC_LANGS $l"; done
if [ -n "$CONC_LANGS" ] && ! broken c; then
    set -- $CONC_LANGS
    log "concurrency: $* at once, pushing and incrementing for $CONC_MS ms each"
    seg=$WORK/concurrent.seg
    i=0
    for l in $CONC_LANGS; do
        i=$((i + 1))
        runner "$l" concurrent "$seg" "$i" "$CONC_MS" "$#" | sed "s/^/$l $l /" >>"$RESULTS" &
    done
    wait
    ids=$(seq 1 $#)
    # shellcheck disable=SC2086
    runner c concurrent-check "$seg" $ids | sed "s/^/c c /" >>"$RESULTS"
fi

# ---- the summary ----
python3 - "$RESULTS" "$HERE/scenarios" "$LANGS" "$BROKEN" <<'EOF'
import json, os, sys
results, sdir, langs, broken = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
writes, reads, others = {}, {}, []
for line in open(results, encoding="utf-8", errors="replace"):
    parts = line.rstrip("\n").split(" ", 4)
    if len(parts) < 5 or parts[2] not in ("PASS", "FAIL"):
        continue
    w, r, verdict, phase, rest = parts
    ok = verdict == "PASS"
    # Only a FAIL line carries ": why"; a PASS line's name may contain ": " itself.
    name, why = (rest, "") if ok else rest.partition(": ")[::2]
    if phase == "write":
        writes[(w, name)] = (ok, why)
    elif phase == "read":
        reads[(w, r, name)] = (ok, why)
    else:
        others.append((phase, w, name, ok, why))
scen = []
for fn in sorted(os.listdir(sdir)):
    if fn.endswith(".json"):
        d = json.load(open(os.path.join(sdir, fn), encoding="utf-8"))
        scen.append((d.get("kind", "?"), d.get("type", "?"), d["name"]))
pairs = [(w, r) for w in langs for r in langs]
passed = failed = 0
fails = []
print("%-6s %-8s " % ("kind", "type") + " ".join("%-6s" % ("%s>%s" % p) for p in pairs))
for kind, typ, name in scen:
    cells = []
    for w, r in pairs:
        wk = writes.get((w, name))
        rd = reads.get((w, r, name))
        if wk is None or not wk[0]:
            ok, why = False, "write by %s: %s" % (w, wk[1] if wk else "did not run" + (" (runner did not build)" if w in broken else ""))
        elif rd is None:
            ok, why = False, "read by %s did not run" % r + (" (runner did not build)" if r in broken else "")
        else:
            ok, why = rd
        cells.append("ok" if ok else "FAIL")
        if ok:
            passed += 1
        else:
            failed += 1
            fails.append("%s %s>%s: %s" % (name, w, r, why))
    print("%-6s %-8s " % (kind, typ) + " ".join("%-6s" % c for c in cells))
print()
for phase, lang, name, ok, why in others:
    print("%-16s %-3s %-24s %s" % (phase, lang, name, "ok" if ok else "FAIL: " + why))
    if ok:
        passed += 1
    else:
        failed += 1
for l in broken:
    print("%s runner did not build: its golden and concurrency checks did not run" % l)
    failed += 1
if fails:
    print("\nfailed pairs:")
    for f in fails:
        print("  " + f[:600])
print("\n%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
