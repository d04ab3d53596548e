import pytest


@pytest.fixture
def procs():
    """Every Proc a test starts goes in here and is stopped at teardown, pass or fail."""
    started = []
    yield started
    for p in reversed(started):
        p.stop(timeout=3)
