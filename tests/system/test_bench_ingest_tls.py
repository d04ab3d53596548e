"""`heartbeater bench ingest --transport tls`: a short run with few peers (a few seconds),
checking that every beat sent over the per-peer mutual-TLS connections reaches the monitor
and that the figures land in the table and the JSON."""

import json
import subprocess


def test_tls_ingest_counts_every_beat(heartbeater_bin, tmp_path):
    out = tmp_path / "ingest.json"
    r = subprocess.run(
        [heartbeater_bin, "bench", "ingest", "--transport", "tls", "--peers", "50", "--rates", "500",
         "--duration", "1s", "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "tls peers" in r.stdout
    [result] = json.loads(out.read_text())
    assert result["peers"] == 50 and result["all_in_bytes_per_peer"] > 0
    [step] = result["steps"]
    assert step["sent"] > 0 and step["received"] == step["sent"], step
    assert step["cpu_us_per_beat"] > 0


def test_an_unknown_transport_is_a_usage_error(heartbeater_bin):
    r = subprocess.run([heartbeater_bin, "bench", "ingest", "--transport", "quic"],
                       capture_output=True, text=True, timeout=10, check=False)
    assert r.returncode == 2
    assert 'transport "quic": expected udp and/or tls' in r.stderr
