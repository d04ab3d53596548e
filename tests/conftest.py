"""Fixtures shared by every Python test under tests/ (system, etcd, ...)."""

import os
import pathlib
import socket

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def heartbeater_path():
    """HEARTBEATER_BIN, else the debug build in CARGO_TARGET_DIR (or ./target)."""
    if os.environ.get("HEARTBEATER_BIN"):
        return pathlib.Path(os.environ["HEARTBEATER_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "heartbeater"


@pytest.fixture(scope="session")
def heartbeater_bin():
    path = heartbeater_path()
    if not path.exists():
        pytest.fail(f"{path} not found: run `cargo build -p hb-cli` or set HEARTBEATER_BIN")
    return str(path)


def free_port(kind=socket.SOCK_DGRAM):
    """A port that was free a moment ago on 127.0.0.1 (prefer port 0 where the tool allows)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
