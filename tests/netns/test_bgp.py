"""BGP on real kernels: ExaBGP driven by BGPSpeaker in a node, BIRD 2 as the router.

iBGP (both in AS 64512) is the main case because LOCAL_PREF only exists inside an AS: a router
ignores it from an eBGP peer (RFC 4271 §5.1.5), so only an iBGP session can show that the
advertisement's local preference arrived. The eBGP case (node in AS 64513) checks exactly that:
communities cross, local preference does not (BIRD applies its default, 100).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.bird import Bird, BirdNeighbor
from tests.netns.lab import Agent, Lab, pid_alive, wait_for

pytestmark = pytest.mark.netns

ROUTER_ASN = 64512
PASSWORD = "vipam-test"
V4 = "203.0.113.10/32"
V6 = "2001:db8:1::10/128"


def _start(lab: Lab, tmp_path: Path, node_asn: int) -> tuple[Bird, Agent]:
    node = lab.nodes[0]
    bird = Bird(lab, tmp_path, ROUTER_ASN, [BirdNeighbor("node1", node, node_asn)], PASSWORD)
    agent = Agent(lab, node)
    peer = {
        "address": lab.router.ipv4,
        "asn": ROUTER_ASN,
        "local_asn": node_asn,
        "hold_time": 9,
        "password": PASSWORD,
        "source_address": node.ipv4,
    }
    started = time.monotonic()
    options = {"router_id": node.ipv4, "workdir": str(tmp_path / "exabgp")}
    agent.call("bgp_start", peers=[peer], options=options)
    wait_for(lambda: bird.established("node1"), timeout=10, what="BGP session established")
    print(f"\nsession established {time.monotonic() - started:.2f}s after start")
    return bird, agent


def _announce_both(lab: Lab, agent: Agent) -> None:
    node = lab.nodes[0]
    agent.call(
        "bgp_announce", prefix=V4, next_hop=node.ipv4,
        communities=["64512:100", "64512:200"], local_pref=200,
    )
    agent.call(
        "bgp_announce", prefix=V6, next_hop=node.ipv6, communities=["64512:300"], local_pref=150
    )


def _wait_routes(bird: Bird, prefixes: set[str], what: str) -> float:
    started = time.monotonic()
    wait_for(lambda: set(bird.bgp_routes()) == prefixes, timeout=10, what=what)
    return time.monotonic() - started


@pytest.fixture
def ibgp(bgp_lab: Lab, tmp_path: Path) -> Iterator[tuple[Lab, Bird, Agent]]:
    bird, agent = _start(bgp_lab, tmp_path, node_asn=ROUTER_ASN)
    yield bgp_lab, bird, agent


def test_ibgp_routes_carry_communities_and_local_preference(
    ibgp: tuple[Lab, Bird, Agent],
) -> None:
    lab, bird, agent = ibgp
    _announce_both(lab, agent)
    took = _wait_routes(bird, {V4, V6}, "both routes at BIRD")
    print(f"routes at BIRD {took * 1000:.0f} ms after announce")
    routes = bird.bgp_routes()
    assert agent.call("bgp_peer_states") == {lab.router.ipv4: "up"}
    assert routes[V4]["BGP.next_hop"] == lab.nodes[0].ipv4
    assert routes[V4]["BGP.local_pref"] == "200"
    assert routes[V4]["BGP.community"] == "(64512,100) (64512,200)"
    assert routes[V6]["BGP.next_hop"] == lab.nodes[0].ipv6
    assert routes[V6]["BGP.local_pref"] == "150"
    assert routes[V6]["BGP.community"] == "(64512,300)"
    assert agent.call("bgp_announced") == sorted([V4, V6])

    # re-announcing with other attributes replaces them
    agent.call("bgp_announce", prefix=V4, next_hop=lab.nodes[0].ipv4, local_pref=50)
    wait_for(
        lambda: bird.bgp_routes().get(V4, {}).get("BGP.local_pref") == "50",
        timeout=5, what="updated local preference",
    )
    assert "BGP.community" not in bird.bgp_routes()[V4]


def test_withdraw_then_stop_remove_the_routes(ibgp: tuple[Lab, Bird, Agent]) -> None:
    lab, bird, agent = ibgp
    _announce_both(lab, agent)
    _wait_routes(bird, {V4, V6}, "both routes at BIRD")

    agent.call("bgp_withdraw", prefix=V4)
    took = _wait_routes(bird, {V6}, "the withdrawn route to go")
    print(f"withdrawn at BIRD after {took * 1000:.0f} ms")
    assert agent.call("bgp_announced") == [V6]

    exabgp = agent.call("bgp_pid")
    agent.call("bgp_stop")
    took = _wait_routes(bird, set(), "every route to go on stop")
    print(f"stop: routes gone at BIRD after {took * 1000:.0f} ms")
    assert not pid_alive(exabgp)
    assert not bird.established("node1")
    agent.close()


def test_exabgp_crash_is_restarted_and_routes_replayed(ibgp: tuple[Lab, Bird, Agent]) -> None:
    lab, bird, agent = ibgp
    _announce_both(lab, agent)
    _wait_routes(bird, {V4, V6}, "both routes at BIRD")

    crashed = agent.call("bgp_pid")
    os.kill(crashed, signal.SIGKILL)
    started = time.monotonic()
    # the session drops (BIRD sees the TCP connection close) and comes back with the routes
    wait_for(lambda: agent.call("bgp_pid") not in (None, crashed), timeout=10,
             what="a new ExaBGP process")
    wait_for(lambda: bird.established("node1"), timeout=10, what="session re-established")
    _wait_routes(bird, {V4, V6}, "routes replayed after the restart")
    print(f"routes back {time.monotonic() - started:.2f}s after ExaBGP was killed")
    assert bird.bgp_routes()[V4]["BGP.local_pref"] == "200"
    agent.call("bgp_stop")
    agent.close()


def test_killed_speaker_takes_exabgp_and_its_routes_with_it(
    ibgp: tuple[Lab, Bird, Agent],
) -> None:
    lab, bird, agent = ibgp
    _announce_both(lab, agent)
    _wait_routes(bird, {V4, V6}, "both routes at BIRD")
    exabgp = agent.call("bgp_pid")

    agent.kill()
    took = _wait_routes(bird, set(), "routes to go after the speaker was killed")
    print(f"speaker killed: routes gone at BIRD after {took * 1000:.0f} ms")
    wait_for(lambda: not pid_alive(exabgp), timeout=5, what="ExaBGP to exit with its parent")


def test_ebgp_carries_communities_but_not_local_preference(
    bgp_lab: Lab, tmp_path: Path
) -> None:
    bird, agent = _start(bgp_lab, tmp_path, node_asn=64513)
    _announce_both(bgp_lab, agent)
    _wait_routes(bird, {V4, V6}, "both routes at BIRD")
    routes = bird.bgp_routes()
    assert routes[V4]["BGP.as_path"] == "64513"
    assert routes[V4]["BGP.community"] == "(64512,100) (64512,200)"
    assert routes[V6]["BGP.community"] == "(64512,300)"
    # LOCAL_PREF from an external peer is ignored; BIRD sets its default
    assert routes[V4]["BGP.local_pref"] == "100"
    agent.call("bgp_stop")
    agent.close()


def test_ipv6_session_carries_the_ipv6_route(bgp_lab: Lab, tmp_path: Path) -> None:
    """An IPv6-only peering (no IPv4 source address): the router id must come from config."""
    node = bgp_lab.nodes[0]
    bird = Bird(bgp_lab, tmp_path, ROUTER_ASN,
                [BirdNeighbor("node1", node, ROUTER_ASN, over_ipv6=True)], PASSWORD)
    agent = Agent(bgp_lab, node)
    peer = {"address": bgp_lab.router.ipv6, "asn": ROUTER_ASN, "local_asn": ROUTER_ASN,
            "hold_time": 9, "password": PASSWORD, "source_address": node.ipv6}
    options = {"router_id": node.ipv4, "workdir": str(tmp_path / "exabgp")}
    agent.call("bgp_start", peers=[peer], options=options)
    wait_for(lambda: bird.established("node1"), timeout=10, what="IPv6 BGP session")
    agent.call("bgp_announce", prefix=V6, next_hop=node.ipv6, communities=["64512:300"],
               local_pref=150)
    _wait_routes(bird, {V6}, "the IPv6 route over the IPv6 session")
    route = bird.bgp_routes()[V6]
    assert (route["BGP.next_hop"], route["BGP.local_pref"]) == (node.ipv6, "150")
    agent.call("bgp_withdraw", prefix=V6)
    _wait_routes(bird, set(), "the withdrawal")
    agent.call("bgp_stop")
    agent.close()
