#!/usr/bin/env bash
# Runs a command with a private etcd on loopback (the shared harness, tests/harness/etcd.py):
# free ports, a temp data dir, HB_TEST_ETCD_ENDPOINT=127.0.0.1:PORT exported (and
# HB_CONFORMANCE_ETCD, unless already set); etcd is
# stopped by PID and the data dir removed whatever the command does.
#
#   tests/c/with-etcd.sh make -C tests/c ... run memcheck asan
set -euo pipefail

harness="$(cd "$(dirname "${BASH_SOURCE[0]}")/../harness" && pwd)/etcd.py"
data="$(mktemp -d "${TMPDIR:-/tmp}/hb-c-etcd.XXXXXX")"
info="$(python3 "$harness" start --data-dir "$data/data")" || {
  echo "with-etcd: could not start etcd: $info" >&2
  rm -rf "$data"
  exit 1
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$info" "$1"; }
pid="$(field pid)"
trap 'python3 "$harness" stop "$pid"; rm -rf "$data"' EXIT
export HB_TEST_ETCD_ENDPOINT="$(field endpoint)"
# The conformance drivers read the same etcd from HB_CONFORMANCE_ETCD.
export HB_CONFORMANCE_ETCD="${HB_CONFORMANCE_ETCD:-$HB_TEST_ETCD_ENDPOINT}"
echo "with-etcd: etcd pid $pid at $HB_TEST_ETCD_ENDPOINT"
"$@"
