"""Acceptance 2: kill peers; exactly the right transitions, within their bounds."""

from procs import MonitorProc
from scenario import kill_and_check, start_beats


def test_kill_and_terminate_are_reported_exactly(heartbeater_bin, procs):
    monitor = MonitorProc(heartbeater_bin)
    procs.append(monitor)
    ids, beats, all_alive = start_beats(heartbeater_bin, monitor, procs)
    kill_and_check(monitor, ids, beats, all_alive)
    assert monitor.stop() == 0, "monitor must exit 0 on SIGTERM"
