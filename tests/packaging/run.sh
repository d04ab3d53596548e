#!/usr/bin/env bash
# Packaging acceptance (issue 14), as a user outside the repository would see it:
#   1. `make install PREFIX=<tmp>`: size budgets; tests/c's C and C++ end-to-end programs built
#      by CMake (find_package, shared and static targets) and by pkg-config as docs/c-abi.md
#      shows, and run; the CLI and its completions; `make uninstall` leaves nothing behind.
#   2. A Go module in a temp dir outside the repository: the one-line message when the library
#      is missing, then `make -C bindings-go lib`, build, `go mod vendor`, build from vendor/, run.
#   3. scripts/build-wheel: the wheel installs into a fresh venv with no cargo/rustc on PATH and
#      runs a Monitor and a Client.
#   4. The sdist from scripts/build-wheel installs with pip (built with cargo) and runs the same.
# Reuses the release build of earlier stages (same CARGO_TARGET_DIR); from cold it builds it.
#
#   bash tests/packaging/run.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/tests/packaging"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hb-packaging.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)
# The .so's SONAME is libheartbeater.so.$ABI (hb-ffi/build.rs): major.minor before 1.0.
ABI=$(echo "$VERSION" | awk -F. '{ print ($1 == 0) ? $1 "." $2 : $1 }')
MB=$((1024 * 1024))

step() { echo; echo "== $*"; }
# logged <cmd...>: run quietly; on failure show what it printed.
# static <bin>: fails if the program loads libheartbeater.so (`! cmd` would not stop set -e).
static() { if ldd "$1" | grep -e libheartbeater >/dev/null; then echo "FAIL: $1 is not static"; return 1; fi; }
logged() { "$@" >"$WORK/log" 2>&1 || { cat "$WORK/log"; echo "FAIL: $*"; return 1; }; }
budget() { # budget <file> <MB>
  local size
  size=$(stat -L -c %s "$1")
  awk -v n="$(basename "$1")" -v s="$size" -v b="$2" 'BEGIN { printf "   %-26s %6.1f MB (budget %s MB)\n", n, s / 1048576, b }'
  ((size <= $2 * MB)) || { echo "FAIL: $1 is over its $2 MB budget"; return 1; }
}

# --- 1. C and C++ against an installed prefix ----------------------------------------------
PREFIX="$WORK/prefix"
step "make install PREFIX=$PREFIX"
logged make -s -C "$REPO" install PREFIX="$PREFIX"

step "size budgets"
cc -I"$PREFIX/include" "$HERE/hello.c" -o "$WORK/hello-static" \
  $(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --libs --static heartbeater | sed 's/-lheartbeater/-l:libheartbeater.a/')
static "$WORK/hello-static"
"$WORK/hello-static" | grep -x -e "heartbeater $VERSION" >/dev/null
budget "$PREFIX/lib/libheartbeater.so" 8
budget "$PREFIX/lib/libheartbeater.a" 40
budget "$WORK/hello-static" 10
budget "$PREFIX/bin/heartbeater" 10
step "the .so's SONAME, its links, and what a dynamic program records"
soname=$(readelf -d "$PREFIX/lib/libheartbeater.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libheartbeater.so.$ABI" ] || { echo "FAIL: SONAME '$soname', expected libheartbeater.so.$ABI"; exit 1; }
[ "$(readlink "$PREFIX/lib/libheartbeater.so")" = "libheartbeater.so.$ABI" ]
[ "$(readlink "$PREFIX/lib/libheartbeater.so.$ABI")" = "libheartbeater.so.$VERSION" ]
echo "   SONAME $soname; libheartbeater.so -> .so.$ABI -> .so.$VERSION"
# The debug info is beside, not lost: gdb follows .gnu_debuglink into .debug/.
for f in lib/libheartbeater.so bin/heartbeater; do
  readelf -S "$PREFIX/$f" | grep -e '\.gnu_debuglink' >/dev/null
  if readelf -S "$PREFIX/$f" | grep -e '\.debug_info' >/dev/null; then echo "FAIL: $f has debug info"; exit 1; fi
  readelf -S "$PREFIX/$(dirname $f)/.debug/$(basename $f).debug" 2>/dev/null | grep -e '\.debug_line' >/dev/null
done

step "pkg-config, as docs/c-abi.md shows (PKG_CONFIG_PATH; the .pc carries the rpath)"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
CT="$REPO/tests/c"
# shellcheck disable=SC2046
cc -std=c11 -pthread -DEXPECTED_VERSION="\"$VERSION\"" "$CT/e2e.c" -o "$WORK/e2e-pc" $(pkg-config --cflags --libs heartbeater)
# shellcheck disable=SC2046
c++ -std=c++17 -pthread "$CT/e2e.cpp" -o "$WORK/e2e-cpp-pc" $(pkg-config --cflags --libs heartbeater)
# shellcheck disable=SC2046
cc -std=c11 -pthread -DEXPECTED_VERSION="\"$VERSION\"" "$CT/e2e.c" -o "$WORK/e2e-pc-static" \
  $(pkg-config --cflags heartbeater) $(pkg-config --libs --static heartbeater | sed 's/-lheartbeater/-l:libheartbeater.a/')
static "$WORK/e2e-pc-static"
for b in e2e-pc e2e-cpp-pc e2e-pc-static; do
  echo "   run $b"
  "$WORK/$b" >/dev/null
done
unset PKG_CONFIG_PATH

step "CMake find_package(heartbeater) with CMAKE_PREFIX_PATH"
logged cmake -S "$HERE/cmake" -B "$WORK/cmake-build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release
logged cmake --build "$WORK/cmake-build" -j2
for kind in shared static; do
  for t in e2e_c e2e_cpp; do
    bin="$WORK/cmake-build/${t}_$kind"
    if [ $kind = static ]; then static "$bin"; else
      ldd "$bin" | grep -e "$PREFIX/lib/libheartbeater.so.$ABI" >/dev/null
      readelf -d "$bin" | grep -F "(NEEDED)" | grep -F "[libheartbeater.so.$ABI]" >/dev/null
    fi
    echo "   run ${t}_$kind"
    "$bin" >/dev/null
  done
done

step "the CLI and its completions"
"$PREFIX/bin/heartbeater" --version | grep -x -e "heartbeater $VERSION" >/dev/null
bash -c "source '$PREFIX/share/bash-completion/completions/heartbeater' && complete -p heartbeater" >/dev/null
grep -q '^#compdef heartbeater' "$PREFIX/share/zsh/site-functions/_heartbeater"
grep -q 'complete -c heartbeater' "$PREFIX/share/fish/vendor_completions.d/heartbeater.fish"

step "make uninstall removes everything install wrote"
make -s -C "$REPO" uninstall PREFIX="$PREFIX"
left=$(find "$PREFIX" -mindepth 1 | head)
[ -z "$left" ] || { echo "FAIL: left behind after uninstall:"; echo "$left"; exit 1; }

# --- 2. Go: a consumer module outside the repository -----------------------------------------
step "Go consumer module in $WORK/goconsumer"
GOMOD="$REPO/bindings-go"
new_consumer() { # new_consumer <dir> <module dir to replace with>
  mkdir -p "$1" && cp "$HERE/goconsumer/main.go" "$1/"
  (cd "$1" && logged go mod init example.com/goconsumer &&
    go mod edit -require heartbeater@v0.0.0 -replace heartbeater="$2" && logged go mod tidy)
}
# A copy of the module directory as git has it (no library yet): one line naming the command.
mkdir -p "$WORK/module-copy"
git -C "$GOMOD" ls-files -z . | (cd "$GOMOD" && xargs -0 cp --parents -t "$WORK/module-copy")
new_consumer "$WORK/consumer-nolib" "$WORK/module-copy"
if out=$(cd "$WORK/consumer-nolib" && go build -o /dev/null . 2>&1); then
  echo "FAIL: built without libheartbeater.a"; exit 1
fi
grep "error: #error" <<<"$out" | grep -e "run 'make -C bindings-go lib'" >/dev/null ||
  { echo "FAIL: the missing-library message does not name the command:"; echo "$out"; exit 1; }
echo "   without the library: $(grep 'error: #error' <<<"$out" | sed 's/.*#error //')"

logged make -s -C "$GOMOD" lib
new_consumer "$WORK/goconsumer" "$GOMOD"
(cd "$WORK/goconsumer" && go build -o consumer . && ./consumer)
(cd "$WORK/goconsumer" && go mod vendor && test -f vendor/heartbeater/heartbeater.h &&
  test -f vendor/heartbeater/libheartbeater.a && go build -mod=vendor -o consumer-vendored . &&
  ./consumer-vendored)
echo "   vendored build ran (vendor/heartbeater holds heartbeater.h and libheartbeater.a)"

# --- 3. Python: the wheel, without Rust ----------------------------------------------------
step "scripts/build-wheel"
DIST="$WORK/dist" logged "$REPO/scripts/build-wheel"
wheel=$(ls "$WORK"/dist/heartbeater-"$VERSION"-cp39-abi3-manylinux_*_x86_64.whl)
ls "$WORK/dist/heartbeater-$VERSION.tar.gz" >/dev/null
echo "   $(basename "$wheel")"

step "the wheel in a fresh venv, cargo and rustc not on PATH"
python3 -m venv "$WORK/venv"
NORUST_PATH="$WORK/venv/bin:/usr/bin:/bin"
if PATH="$NORUST_PATH" command -v cargo >/dev/null || PATH="$NORUST_PATH" command -v rustc >/dev/null; then
  echo "FAIL: cargo or rustc is in $NORUST_PATH"; exit 1
fi
PATH="$NORUST_PATH" "$WORK/venv/bin/python" -m pip install -q --no-index "$wheel"
# smoke <python> <what>: a Monitor sees a Client alive, from outside the repository.
smoke() {
  (cd "$WORK" && "$1" -c '
import sys, heartbeater
with heartbeater.Monitor("udp://127.0.0.1:0") as mon:
    addr = mon.local_addrs[0]
    with heartbeater.Client(addr, service="wheel", ttl=6.0):
        for ev in mon.events(timeout=30):
            if ev.service == "wheel" and ev.to_state == "alive":
                print("   " + sys.argv[1] + ": monitor saw", ev.peer, "alive; heartbeater", heartbeater.__version__)
                break
        else:
            raise SystemExit("no alive event within 30 s")
' "$2")
}
PATH="$NORUST_PATH" smoke "$WORK/venv/bin/python" wheel

# --- 4. Python: the sdist, for platforms without a wheel (pip builds it with cargo) ----------
step "the sdist builds and installs in a fresh venv (pip, maturin from the index, cargo)"
python3 -m venv "$WORK/venv-sdist"
# CARGO_TARGET_DIR is exported: the build reuses what build-wheel compiled.
logged "$WORK/venv-sdist/bin/python" -m pip install --no-cache-dir "$WORK/dist/heartbeater-$VERSION.tar.gz"
smoke "$WORK/venv-sdist/bin/python" sdist
echo
echo "packaging: ok"
