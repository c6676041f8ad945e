#!/bin/sh
# Instructions per hot operation, counted by valgrind's callgrind (stable on
# a shared machine where timings are not). Builds bench/hot_ops.c against the
# library in BUILD (default build-bench, as bench/run.sh leaves it).
# Usage: bench/instr_counts.sh [BUILD]   (needs valgrind; INSTR_OPS="op ..." picks rows)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-bench}
lib=$(dirname "$(find "$build" -maxdepth 2 -name 'libcommy.so' | head -1)")
[ -n "$lib" ] || { echo "instr_counts.sh: no libcommy.so under $build (run bench/run.sh first)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$root/abi" "$root/bench/hot_ops.c" -o "$tmp/hot_ops" -L"$lib" -lcommy -lpthread -Wl,-rpath,"$lib"
n=20000
ir() { valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'; }
base=$(TMPDIR=$tmp ir "$tmp/hot_ops" x 0 setup-only)
printf '%-10s %s\n' op "instructions/op (incl. ~15 of the calling loop)"
for op in ${INSTR_OPS:-vecpush vecget dqpush dqpp mapget mapput mapins maprm omapget omapput boxadd waitrt}; do
    t=$(TMPDIR=$tmp ir "$tmp/hot_ops" $op $n)
    printf '%-10s %s\n' "$op" $(( (t - base) / n ))
done
