"""Bad input: exit code 2 and the library's precise message naming the field; help and
printed values as docs/cli.md shows them."""

import re
import subprocess

import pytest

CASES = [
    (["beat", "--endpoint", "etcd//x", "--service", "s", "--id", "i"],
     'endpoint "etcd//x": expected scheme://host:port[/prefix]'),
    (["beat", "--endpoint", "udp://127.0.0.1:0", "--service", "s", "--id", "i"],
     'endpoint "udp://127.0.0.1:0": expected host:port with a port from 1 to 65535'),
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--interval", "fast"],
     'interval "fast": expected a duration like 200ms'),
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--label", "novalue"],
     'labels "novalue": expected k=v pairs'),
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "bad/name", "--id", "i"],
     'service "bad/name": expected 1..=64 bytes'),
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--ttl", "soon"],
     'ttl "soon": expected a duration'),
    # A value starting with '-' reaches the library (clap would take it for a flag).
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--ttl", "-1"],
     'ttl "-1": expected a duration'),
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--interval", "-5s"],
     'interval "-5s": expected a duration'),
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--auth-key-file", "/nonexistent/key"],
     'auth_key_file "/nonexistent/key": expected a readable file'),
    # The monitor's flag is --listen, and the message names it.
    (["monitor", "--listen", "http://127.0.0.1:1"], 'listen "http://127.0.0.1:1": expected'),
    (["monitor", "--listen", "foo"], 'listen "foo": expected'),
    (["monitor", "--listen", "udp://127.0.0.1:0", "--detector", "magic"], 'detector "magic": expected adaptive or phi'),
    (["monitor", "--listen", "udp://127.0.0.1:0", "--metrics-addr", "nowhere"], 'metrics_addr "nowhere": expected ip:port'),
    (["watch", "udp://127.0.0.1:1"], "expected one etcd://host:port"),
    # Not an endpoint at all: a watcher takes etcd only, so udp/tcp are not suggested.
    (["watch", "foo"], 'endpoint "foo": expected one etcd://host:port[,host:port]/prefix'),
    (["relay", "--listen", "udp://127.0.0.1:0", "--upstream", "udp://127.0.0.1:1", "--delay", "-1ms"],
     'delay "-1ms": expected a duration'),
    (["relay", "--listen", "udp://127.0.0.1:0", "--upstream", "tcp://127.0.0.1:1"],
     'upstream "tcp://127.0.0.1:1": expected udp://host:port'),
    (["relay", "--listen", "udp://127.0.0.1:0", "--upstream", "udp://127.0.0.1:1", "--loss", "150%"],
     'loss "150%": expected a percentage from 0% to 100%'),
    (["demo", "--peers", "3", "--kill", "5"], "kill 5: expected at most --peers (3)"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:3]) + f" #{i}" for i, c in enumerate(CASES)])
def test_bad_input_exits_2_with_precise_message(heartbeater_bin, argv, message):
    r = subprocess.run([heartbeater_bin, *argv], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr


def test_unknown_flag_is_a_usage_error(heartbeater_bin):
    r = subprocess.run([heartbeater_bin, "monitor", "--listen", "udp://127.0.0.1:0", "--frobnicate"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--frobnicate" in r.stderr


def test_monitor_listen_error_never_blames_endpoint(heartbeater_bin):
    r = subprocess.run([heartbeater_bin, "monitor", "--listen", "foo"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "endpoint" not in r.stderr, r.stderr


def test_watch_error_does_not_offer_udp_or_tcp(heartbeater_bin):
    r = subprocess.run([heartbeater_bin, "watch", "foo"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "udp" not in r.stderr and "tcp" not in r.stderr, r.stderr


@pytest.mark.parametrize("sub,flag", [("beat", "--service"), ("beat", "--auth-key-file"), ("watch", "--json")])
def test_options_have_help_text(heartbeater_bin, sub, flag):
    r = subprocess.run([heartbeater_bin, sub, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    line = next(l for l in r.stdout.splitlines() if l.strip().startswith(flag))
    assert re.search(flag + r"(\s+<[^>]+>)?\s+\S", line), f"no help text: {line!r}"


def test_beat_prints_durations_as_written(heartbeater_bin, procs):
    """ttl 2s caps the interval at ttl/3: shown as 667ms, not 666.666666ms."""
    from procs import beat
    p = beat(heartbeater_bin, "udp://127.0.0.1:9", "durations", "--ttl", "2s")
    procs.append(p)
    m = p.stderr_match(r"beating to \S+ every (\S+)\.\.(\S+) \(ttl (\S+)\)")
    assert m.groups() == ("667ms", "667ms", "2s"), m.group(0)
