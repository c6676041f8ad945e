# Shared by scripts/demo.sh and scripts/test.sh: install what is missing, build.
# Source it; it defines ensure_deps and build_release.

COMMY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMY_BUILD=${COMMY_BUILD:-$COMMY_ROOT/build}

# Debian packages commy builds, tests and benchmarks with.
COMMY_DEBS=(build-essential cmake pkg-config git clang libclang-rt-14-dev swig valgrind abigail-tools libhiredis-dev redis-server
  libcjson-dev libcurl4-openssl-dev libssl-dev libboost-dev python3 python3-venv libwebsockets-dev libsqlite3-dev openssl)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

ensure_deps() {
  local missing=()
  for p in "${COMMY_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
      echo "missing packages (${missing[*]}); run as root or install them" >&2
      return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v dotnet >/dev/null; then
    echo "warning: the .NET SDK (dotnet) is not on PATH: the C# parts will be skipped" >&2
  fi
}

build_release() {
  log "building commy (RelWithDebInfo) in $COMMY_BUILD"
  mkdir -p "$COMMY_BUILD"
  cmake -S "$COMMY_ROOT" -B "$COMMY_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$COMMY_BUILD/build.log" 2>&1 &&
    cmake --build "$COMMY_BUILD" -j"$(nproc)" >>"$COMMY_BUILD/build.log" 2>&1 || {
    tail -40 "$COMMY_BUILD/build.log"
    return 1
  }
}
