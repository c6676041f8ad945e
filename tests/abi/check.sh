#!/usr/bin/env bash
# Compares the built libcommy.so with the ABI recorded in tests/abi/libcommy.abi.
# Additions pass; any incompatible change (a removed or changed symbol or type) fails.
# After a deliberate, compatible addition, re-record with: scripts/abi-record.sh
# Usage: check.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
lib=$(readlink -f "$build/libcommy.so")
recorded="$src/tests/abi/libcommy.abi"
[ -f "$recorded" ] || { echo "no recorded ABI at $recorded"; exit 1; }
abidiff --headers-dir2 "$src/abi" "$recorded" "$lib" > "$build/abidiff.txt" 2>&1
rc=$?
cat "$build/abidiff.txt"
if (( rc & 8 )) || (( rc & 1 )) || (( rc & 2 )); then
  echo "ABI check: incompatible change against tests/abi/libcommy.abi (abidiff status $rc)"
  exit 1
fi
echo "ABI check: compatible (abidiff status $rc)"
