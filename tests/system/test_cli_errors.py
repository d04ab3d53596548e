"""Bad input: exit code 2 and the library's precise message naming the field."""

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
    (["beat", "--endpoint", "udp://127.0.0.1:9", "--service", "s", "--id", "i", "--auth-key-file", "/nonexistent/key"],
     'auth_key_file "/nonexistent/key": expected a readable file'),
    (["monitor", "--listen", "http://127.0.0.1:1"], 'endpoint "http://127.0.0.1:1": expected'),
    (["monitor", "--listen", "udp://127.0.0.1:0", "--detector", "magic"], 'detector "magic": expected adaptive or phi'),
    (["monitor", "--listen", "udp://127.0.0.1:0", "--metrics-addr", "nowhere"], 'metrics_addr "nowhere": expected ip:port'),
    (["watch", "udp://127.0.0.1:1"], "expected one etcd://host:port"),
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
