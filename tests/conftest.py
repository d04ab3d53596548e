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


def require_or_skip(why):
    """Skips for a prerequisite missing on a developer's partial machine (etcd, the CLI),
    but fails when HEARTBEATER_REQUIRE_ALL=1 (scripts/test-all sets it): there everything
    is installed and built, so a skip would hide an untested feature."""
    if os.environ.get("HEARTBEATER_REQUIRE_ALL") == "1":
        pytest.fail(f"{why} (a failure, not a skip, because HEARTBEATER_REQUIRE_ALL=1)", pytrace=False)
    pytest.skip(why)


@pytest.fixture(name="require_or_skip", scope="session")
def require_or_skip_fixture():
    """require_or_skip for the conftest files below this one (a conftest cannot import
    another: they are all modules named `conftest`)."""
    return require_or_skip


@pytest.fixture(scope="session")
def heartbeater_bin():
    path = heartbeater_path()
    if not path.exists():
        require_or_skip(f"heartbeater binary not found at {path}: run `cargo build -p hb-cli` or set HEARTBEATER_BIN")
    return str(path)


def free_port(kind=socket.SOCK_DGRAM):
    """A port that was free a moment ago on 127.0.0.1 (prefer port 0 where the tool allows)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
