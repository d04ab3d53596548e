#!/usr/bin/env bash
# Builds the heartbeater wheel, installs it into a fresh venv, and tests the INSTALLED
# package: stubtest on the native module, mypy --strict on the examples, pytest.
#
#   bash bindings-python/scripts/test.sh            # release wheel (what users get)
#   HB_PY_PROFILE=debug bash bindings-python/scripts/test.sh   # quicker build while developing
#   bash bindings-python/scripts/test.sh -k fork    # extra arguments go to pytest
#
# Environment: PYTHON (interpreter for the venv, default python3), HEARTBEATER_BIN (CLI for
# the mixed-client tests, default <repo>/target/debug/heartbeater), HEARTBEATER_REQUIRE_ALL=1
# (fail instead of skip when etcd, the CLI or prometheus_client is missing), CARGO_TARGET_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # bindings-python/
REPO="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
PROFILE="${HB_PY_PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
export HEARTBEATER_REPO="$REPO"
export HEARTBEATER_BIN="${HEARTBEATER_BIN:-$REPO/target/debug/heartbeater}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hb-py-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"

echo "== fresh venv in $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r "$HERE/requirements-dev.txt"

echo "== maturin build ($PROFILE)"
build_flags=(--out "$WORK/wheels" --manifest-path "$HERE/Cargo.toml")
if [ "$PROFILE" = "release" ]; then build_flags+=(--release); fi
"$VENV/bin/maturin" build "${build_flags[@]}"
"$VENV/bin/python" -m pip install -q "$WORK"/wheels/heartbeater-*.whl

# Run everything from a directory where the source tree's python/ is not importable.
cd "$WORK"
"$VENV/bin/python" - <<'PY'
import heartbeater, sys
assert "site-packages" in heartbeater.__file__, heartbeater.__file__
print("installed heartbeater", heartbeater.__version__, "at", heartbeater.__file__)
PY

echo "== stubtest heartbeater._heartbeater"
"$VENV/bin/python" -m mypy.stubtest heartbeater._heartbeater

echo "== mypy --strict examples and tests"
"$VENV/bin/python" -m mypy --strict --no-incremental --cache-dir "$WORK/mypy-cache" "$HERE"/examples/*.py
(cd "$HERE/tests" && "$VENV/bin/python" -m mypy --strict --no-incremental --cache-dir "$WORK/mypy-cache" --explicit-package-bases .)

echo "== pytest"
# -p no:cacheprovider: write nothing into the source tree. rootdir/config from bindings-python.
"$VENV/bin/python" -m pytest -p no:cacheprovider -c "$HERE/pyproject.toml" --rootdir "$HERE" "$HERE/tests" "$@"
