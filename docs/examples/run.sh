#!/bin/sh
# Runs one example of docs/ the way c.md tells a reader to (EXE SEGMENT, in a
# fresh directory) and compares what it prints with EXPECTED.
# Usage: run.sh EXE EXPECTED
set -u
exe=$1 expected=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/commy-example.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$exe" "$tmp/example.seg" >"$tmp/out"
status=$?
if [ "$status" -ne 0 ]; then
    echo "$(basename "$exe") exited with status $status; it printed:"
    cat "$tmp/out"
    exit 1
fi
if ! diff -u "$expected" "$tmp/out"; then
    echo "$(basename "$exe") printed something else than $(basename "$expected") (diff above)"
    exit 1
fi
echo "$(basename "$exe"): output matches $(basename "$expected")"
