#!/usr/bin/env bash
# Records the ABI of a freshly built libcommy.so in tests/abi/libcommy.abi.
# Run after a deliberate, compatible ABI addition; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCOMMY_BUILD_BENCH=OFF >/dev/null
cmake --build build -j2 --target commy >/dev/null
abidw --headers-dir abi --no-corpus-path "$(readlink -f build/libcommy.so)" > tests/abi/libcommy.abi
echo "recorded $(grep -c '<elf-symbol name=' tests/abi/libcommy.abi) symbols in tests/abi/libcommy.abi"
