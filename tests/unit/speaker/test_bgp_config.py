"""ExaBGP configuration and API commands: validated input, and text ExaBGP itself accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccm.speaker.bgp.config import Peer, Route, announce_command, render_config, withdraw_command

RELAY = [sys.executable, "-m", "ccm.speaker.bgp.relay", "/run/vipam/api.sock"]


def test_rendered_config_is_accepted_by_exabgp(tmp_path: Path) -> None:
    peers = [
        Peer("192.0.2.1", asn=64512, local_asn=64513, hold_time=9, password='p"w;\n{x}',
             source_address="192.0.2.2"),
        Peer("2001:db8::1", asn=4200000000, local_asn=64513, port=1179),
    ]
    config = tmp_path / "exabgp.conf"
    config.write_text(render_config(peers, RELAY, router_id="192.0.2.2"))
    result = subprocess.run(
        [sys.executable, "-m", "exabgp", "validate", str(config)],
        capture_output=True, text=True, env={"exabgp_log_destination": "stdout"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = config.read_text()
    # the password is base64, so its quote, semicolon, newline and braces cannot break syntax
    assert "md5-base64 true;" in text
    assert 'p"w' not in text
    assert "connect 1179;" in text


def test_announce_command_carries_every_attribute() -> None:
    route = Route("203.0.113.10", "192.0.2.2", ("64512:100", "NO-EXPORT", "64512:1:2"), 200)
    assert route.prefix == "203.0.113.10/32"
    assert announce_command(route) == (
        "announce route 203.0.113.10/32 next-hop 192.0.2.2 local-preference 200"
        " community [64512:100 no-export] large-community [64512:1:2]"
    )
    assert withdraw_command(route) == "withdraw route 203.0.113.10/32"


def test_peer_selection_prefixes_the_command() -> None:
    route = Route("2001:db8:1::10", peers=("192.0.2.9", "192.0.2.1"))
    assert route.prefix == "2001:db8:1::10/128"
    assert announce_command(route) == (
        "neighbor 192.0.2.1, neighbor 192.0.2.9 announce route 2001:db8:1::10/128 next-hop self"
    )
    assert withdraw_command(route) == (
        "neighbor 192.0.2.1, neighbor 192.0.2.9 withdraw route 2001:db8:1::10/128"
    )


@pytest.mark.parametrize(
    "community",
    ["64512:100\nshutdown", "65536:1", "1:2:3:4", "no-such-name", "64512:100 ]", ""],
)
def test_malformed_communities_are_refused(community: str) -> None:
    with pytest.raises(ValueError):
        Route("203.0.113.10", communities=(community,))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prefix": "203.0.113.10", "next_hop": "2001:db8::2"}, "family"),
        ({"prefix": "203.0.113.10", "local_pref": -1}, "local preference"),
        ({"prefix": "203.0.113.10", "local_pref": 2**32}, "local preference"),
        ({"prefix": "203.0.113.10\nshutdown"}, "does not appear"),
    ],
)
def test_malformed_routes_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Route(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"asn": 0}, "AS number"),
        ({"local_asn": 2**32}, "AS number"),
        ({"hold_time": 2}, "hold time"),
        ({"password": "x" * 81}, "longer than 80"),
        ({"source_address": "2001:db8::2"}, "family"),
        ({"port": 0}, "port"),
    ],
)
def test_malformed_peers_are_refused(arguments: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"address": "192.0.2.1", "asn": 64512, "local_asn": 64513}
    with pytest.raises(ValueError, match=message):
        Peer(**(base | arguments))  # type: ignore[arg-type]


def test_internal_means_same_as() -> None:
    assert Peer("192.0.2.1", 64512, 64512).internal
    assert not Peer("192.0.2.1", 64512, 64513).internal


def test_unsafe_relay_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unsafe"):
        render_config([], ["/bin/relay", "a;b"])
