#!/usr/bin/env bash
# Installs the built tree into a temp prefix and builds a user program
# against it both ways: pkg-config, and CMake's find_package(commy).
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
# The shared library carries a soname from the ABI major and exports only commy_*.
soname=$(objdump -p "$libdir/libcommy.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libcommy.so.1" ] || { echo "unexpected soname '$soname'"; exit 1; }
leaked=$(nm -D --defined-only "$libdir/libcommy.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^commy_' || true)
[ -z "$leaked" ] || { echo "symbols exported besides commy_*: $leaked"; exit 1; }
# pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc $(pkg-config --cflags commy) "$src/tests/install/consumer/hello.c" -o "$tmp/hello_pc" $(pkg-config --libs commy)
LD_LIBRARY_PATH="$libdir" "$tmp/hello_pc" "$tmp/a.seg" | grep -q "hits was 0"
LD_LIBRARY_PATH="$libdir" "$tmp/hello_pc" "$tmp/a.seg" | grep -q "hits was 1"
# find_package
cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/consumer/hello_shared" "$tmp/a.seg" | grep -q "hits was 2"
"$tmp/consumer/hello_static" "$tmp/a.seg" | grep -q "hits was 3"
# The session client: shared through pkg-config, static through find_package
# (which must bring libwebsockets, cJSON and OpenSSL along).
cc $(pkg-config --cflags commy) "$src/tests/install/consumer/session_probe.c" -o "$tmp/probe_pc" $(pkg-config --libs commy)
LD_LIBRARY_PATH="$libdir" "$tmp/probe_pc" wss://127.0.0.1:1 | grep -q "not connected to the server"
"$tmp/consumer/session_probe_static" wss://127.0.0.1:1 | grep -q "not connected to the server"
pkg-config --static --libs commy | grep -q -- "-lwebsockets"
echo "install: pkg-config and find_package consumers built and ran"
