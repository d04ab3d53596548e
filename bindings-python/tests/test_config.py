"""Arguments: a bad value is a ConfigError naming the argument; a wrong type a TypeError."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import heartbeater
from heartbeater import Client, ConfigError, Monitor, Watcher

UDP = "udp://127.0.0.1:9"


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Client("udp//nowhere", service="api"), "endpoint"),
        (lambda: Client("udp://host", service="api"), "endpoint"),
        (lambda: Client(UDP, service="a/b"), "service"),
        (lambda: Client(UDP, service="api", instance_id="has space"), "instance_id"),
        (lambda: Client(UDP, service="api", ttl=-1), "ttl"),
        (lambda: Client(UDP, service="api", ttl=float("nan")), "ttl"),
        (lambda: Client(UDP, service="api", interval=0.001), "interval"),
        (lambda: Client(UDP, service="api", interval=(30.0, 1.0)), "interval"),
        (lambda: Client(UDP, service="api", ttl=3, interval=2.0), "interval"),
        (lambda: Client(UDP, service="api", labels={"bad key": "v"}), "label key"),
        (lambda: Client(UDP, service="api", labels={"k": "x" * 200}), "label k"),
        (lambda: Client(UDP, service="api", auth_key="short"), "auth_key"),
        (lambda: Client(UDP, service="api", auth_key=b"\xff" * 3), "auth_key"),
        (lambda: Client(UDP, service="api", detector="oracle"), "detector"),
        (lambda: Client("udp://127.0.0.1:9,etcd://127.0.0.1:2379/p", service="api"), "endpoint"),
        (lambda: Monitor("udp//x"), "listen"),
        (lambda: Monitor("etcd://127.0.0.1:2379/p"), "listen"),
        (lambda: Monitor("udp://127.0.0.1:7946", max_peers=0), "max_peers"),
        (lambda: Monitor("udp://127.0.0.1:7946", listen_threads=0), "listen_threads"),
        (lambda: Monitor("udp://127.0.0.1:7946", listen_threads=17), "listen_threads"),
        (lambda: Monitor("udp://127.0.0.1:7946", metrics_addr="nope"), "metrics_addr"),
        (lambda: Monitor("udp://127.0.0.1:7946", false_dead_rate="1/fortnight"), "false_dead_rate"),
        (lambda: Monitor("udp://127.0.0.1:7946", false_dead_rate="1/h"), "false_suspect_rate"),
        (lambda: Monitor("udp://127.0.0.1:7946", detector="phi", false_suspect_rate="1/h"), "false_suspect_rate"),
        (lambda: Watcher("udp://127.0.0.1:9"), "endpoint"),
        (lambda: Client("etcd://127.0.0.1:2379/p", service="api", etcd_cert_file="/c.pem"), "etcd_cert_file"),
        (lambda: Watcher("etcd://127.0.0.1:2379/p", etcd_username="root"), "etcd_username"),
        (lambda: Monitor("tls://127.0.0.1:0", tls_ca_file="/ca.pem", tls_cert_file="/m.pem"), "tls_key_file"),
        (lambda: Monitor("tls://127.0.0.1:0", tls_ca_file="/n/ca.pem", tls_cert_file="/m", tls_key_file="/k"), "tls_ca_file"),
        (lambda: Client("tls://127.0.0.1:9", service="api", tls_server_name="not a name"), "tls_server_name"),
        (lambda: Client(UDP, service="api", tls_ca_file="/ca.pem"), "tls_ca_file"),
    ],
)
def test_bad_values_name_the_argument(make: Callable[[], Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.field == field
    assert str(info.value).startswith(field), str(info.value)
    assert "expected" in str(info.value)


def test_secrets_never_show_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        Client(UDP, service="api", auth_key="tiny-secret")
    assert "tiny-secret" not in str(info.value)
    assert "11 bytes" in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Client(42, service="api"),  # type: ignore[arg-type]
        lambda: Client(UDP, service=42),  # type: ignore[arg-type]
        lambda: Client(UDP, service="api", ttl="15s"),  # type: ignore[arg-type]
        lambda: Client(UDP, service="api", ttl=True),  # bool is an int to mypy, not a duration
        lambda: Client(UDP, service="api", interval=[1, 2]),  # type: ignore[arg-type]
        lambda: Client(UDP, service="api", labels={"k": 1}),  # type: ignore[dict-item]
        lambda: Client(UDP, service="api", labels=["k=v"]),  # type: ignore[arg-type]
        lambda: Client(UDP, service="api", auth_key=12345),  # type: ignore[arg-type]
        lambda: Monitor("udp://127.0.0.1:7946", max_peers="10"),  # type: ignore[arg-type]
        lambda: Monitor("udp://127.0.0.1:7946", max_peers=1.5),  # type: ignore[arg-type]
        lambda: Client("etcd://127.0.0.1:2379/p", service="api", etcd_ca_file=42),  # type: ignore[arg-type]
        lambda: Client(UDP, service="api", options={"ttl": 15}),  # type: ignore[dict-item]
        lambda: Client(UDP, service="api", options="ttl=15s"),  # type: ignore[arg-type]
        lambda: Client(UDP, service="api", options=[("ttl",)]),  # type: ignore[list-item]
        lambda: Monitor(options=[("listen", b"udp://127.0.0.1:0")]),  # type: ignore[list-item]
    ],
)
def test_wrong_types_are_type_errors(make: Callable[[], Any]) -> None:
    with pytest.raises(TypeError):
        make()


def test_good_arguments_are_accepted() -> None:
    c = Client(
        ["udp://127.0.0.1:9", "tcp://127.0.0.1:9"],
        service="api",
        instance_id="w-1",
        ttl=3,
        interval=(0.2, 1.0),
        labels={"region": "eu,west", "tier": "a=b"},
        auth_key=b"0123456789abcdef",
        detector="phi",
    )
    assert (c.service, c.instance_id) == ("api", "w-1")
    assert c.state == "unknown"
    Monitor("udp://127.0.0.1:7946,tcp://127.0.0.1:7946", auth_key="0123456789abcdef", max_peers=10, detector="adaptive")
    Monitor("udp://127.0.0.1:7946", false_dead_rate="1/y", false_suspect_rate="2/h")
    Watcher("etcd://127.0.0.1:2379/services", connect_timeout=1.5)


def test_wrong_types_reach_the_native_layer_as_type_errors_too() -> None:
    with pytest.raises(TypeError):
        heartbeater._heartbeater.Client("udp://127.0.0.1:9")  # type: ignore[arg-type]


def test_generic_options_reach_the_engine_after_the_keyword_arguments() -> None:
    c = Client(options={"endpoint": UDP, "service": "gen", "instance_id": "g-1", "stop_timeout": "300ms"})
    assert (c.service, c.instance_id) == ("gen", "g-1")
    # Pairs apply in order, after the keyword arguments: the last word is theirs.
    c = Client(UDP, service="kw", instance_id="kw-1", options=[("instance_id", "a"), ("instance_id", "b")])
    assert (c.service, c.instance_id) == ("kw", "b")
    Monitor(options=[("listen", "udp://127.0.0.1:0"), ("event_capacity", "16"), ("ack", "false")])
    Watcher(options={"endpoint": "etcd://127.0.0.1:2379/services", "stop_timeout": "1s"})


@pytest.mark.parametrize(
    "make, field, start",
    [
        (lambda: Client(UDP, service="api", options={"no_such_option": "1"}), "option", 'option "no_such_option"'),
        (lambda: Client(UDP, service="api", options={"stop_timeout": "soon"}), "stop_timeout", "stop_timeout"),
        (lambda: Monitor(options={"listen": "udp//x"}), "listen", "listen"),
        (lambda: Client(UDP, service="api", options={"ack": "maybe"}), "ack", "ack"),
    ],
)
def test_generic_options_errors_are_the_engines(make: Callable[[], Any], field: str, start: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.field == field
    assert str(info.value).startswith(start), str(info.value)
