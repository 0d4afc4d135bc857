"""L2 failover on a real kernel: the router's neighbour table follows the announcing node."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import pytest

from tests.netns.lab import REPO, Agent, Lab, addresses, run, wait_for

pytestmark = pytest.mark.netns

VIPS = {4: "192.0.2.10", 6: "2001:db8::10"}


def _announce_and_wait(lab: Lab, agent: Agent, vip: str) -> float:
    """Announce from ``agent``'s node; seconds until the router maps the VIP to that node."""
    started = time.monotonic()
    call = agent.call("announce", ip=vip, interface="eth0")
    wait_for(
        lambda: lab.neighbour(vip) == agent.node.mac,
        timeout=3,
        what=f"router to map {vip} to {agent.node.name} ({agent.node.mac})",
    )
    elapsed = time.monotonic() - started
    print(
        f"\n{vip}: announce call {call['seconds'] * 1000:.0f} ms, router entry -> "
        f"{agent.node.name} after {elapsed * 1000:.0f} ms"
    )
    return elapsed


@pytest.mark.parametrize("family", [4, 6])
def test_withdraw_then_other_node_takes_over(lab: Lab, family: int) -> None:
    vip = VIPS[family]
    node1, node2 = Agent(lab, lab.nodes[0]), Agent(lab, lab.nodes[1])
    assert lab.neighbour(vip) is None

    _announce_and_wait(lab, node1, vip)
    assert vip in addresses(node1.node.name)
    assert node1.call("announced") == [vip]

    node1.call("withdraw", ip=vip)
    assert vip not in addresses(node1.node.name)
    assert node1.call("announced") == []

    _announce_and_wait(lab, node2, vip)
    assert vip in addresses(node2.node.name)
    node1.close()
    node2.close()
    # a clean shutdown withdraws: the address is gone from the node
    assert vip not in addresses(node2.node.name)


@pytest.mark.parametrize("family", [4, 6])
def test_killed_owner_is_replaced_and_its_leftover_reclaimed(lab: Lab, family: int) -> None:
    vip = VIPS[family]
    node1, node2 = Agent(lab, lab.nodes[0]), Agent(lab, lab.nodes[1])
    _announce_and_wait(lab, node1, vip)

    node1.kill()
    _announce_and_wait(lab, node2, vip)
    # the router's entry survives its next confirmation probe: it must still be node2's
    # (the kernel may probe node2's MAC by unicast; node1 never gets to answer)
    assert lab.neighbour(vip) == node2.node.mac

    # the killed speaker left its address behind; its restarted successor removes it
    assert vip in addresses(node1.node.name)
    restarted = Agent(lab, lab.nodes[0])
    assert restarted.call("reclaim") == [vip]
    assert vip not in addresses(node1.node.name)
    # reclaim touches only what vipam added: the node's own address stays
    assert lab.nodes[0].ipv4 in addresses(node1.node.name)
    restarted.close()
    node2.close()


def test_address_configured_by_someone_else_is_refused(lab: Lab) -> None:
    """An allocated VIP that is already a node's own address is a conflict, not ours to take."""
    node1 = Agent(lab, lab.nodes[0])
    with pytest.raises(RuntimeError, match="not by vipam"):
        node1.call("announce", ip=lab.nodes[0].ipv4, interface="eth0")
    node1.close()
    assert lab.nodes[0].ipv4 in addresses(node1.node.name)


def test_unknown_interface_is_reported(lab: Lab) -> None:
    node1 = Agent(lab, lab.nodes[0])
    with pytest.raises(RuntimeError, match="no interface named"):
        node1.call("announce", ip=VIPS[4], interface="nope0")
    assert node1.call("announced") == []
    node1.close()


def _capture(lab: Lab, seconds: float) -> subprocess.Popen[str]:
    capture = lab.spawn(
        lab.router.name,
        [sys.executable, "-m", "tests.netns.capture", "eth0", str(seconds)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert capture.stdout is not None
    assert capture.stdout.readline().strip() == "ready"
    return capture


def _frames(capture: subprocess.Popen[str], vip: str) -> list[dict[str, object]]:
    out, _ = capture.communicate(timeout=10)
    frames = [json.loads(line) for line in out.splitlines()]
    return [frame for frame in frames if frame["ip"] == vip]


@pytest.mark.parametrize("family", [4, 6])
def test_announcement_is_repeated_and_spaced(lab: Lab, family: int) -> None:
    vip = VIPS[family]
    node1 = Agent(lab, lab.nodes[0])
    capture = _capture(lab, seconds=1.6)
    node1.call("announce", ip=vip, interface="eth0")
    frames = _frames(capture, vip)
    per_burst = 2 if family == 4 else 1  # gratuitous ARP request + reply; one NA
    assert len(frames) == 3 * per_burst, frames
    times = [float(str(frame["t"])) for frame in frames[::per_burst]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(0.4 < gap < 0.8 for gap in gaps), gaps
    node1.close()


def test_withdraw_stops_the_repeats(lab: Lab) -> None:
    vip = VIPS[4]
    node1 = Agent(lab, lab.nodes[0])
    capture = _capture(lab, seconds=1.6)
    node1.call("announce", ip=vip, interface="eth0")
    node1.call("withdraw", ip=vip)
    frames = _frames(capture, vip)
    assert [frame["kind"] for frame in frames] == ["arp-1", "arp-2"]
    node1.close()


def test_address_lifetime_fences_a_dead_speaker_and_refresh_keeps_a_live_one(lab: Lab) -> None:
    vip = VIPS[4]
    live, dead = Agent(lab, lab.nodes[0]), Agent(lab, lab.nodes[1])
    for agent in (live, dead):
        agent.call("l2_options", address_lifetime=2)
        agent.call("announce", ip=vip, interface="eth0")
    dead.kill()
    started = time.monotonic()
    # the live speaker renews its lease every second and refreshes; the dead one cannot. The
    # kernel checks IPv4 lifetimes on a rounded timer, so expiry may come a few seconds late.
    while time.monotonic() - started < 10 and vip in addresses(dead.node.name):
        live.call("refresh")
        time.sleep(0.5)
    assert vip not in addresses(dead.node.name)  # the kernel expired it: no code of ours ran
    assert time.monotonic() - started >= 1.5  # and not before its lifetime
    assert vip in addresses(live.node.name)
    live.close()


@pytest.mark.parametrize("family", [4, 6])
def test_a_refresh_never_brings_back_an_address_withdrawn_meanwhile(lab: Lab,
                                                                     family: int) -> None:
    """A refresh walks the announced addresses one netlink call at a time; an address withdrawn
    meanwhile (a handover ending) must stay withdrawn. It did not: the refresh re-added it, and
    the node answered beside the new owner until the re-added address's lifetime ran out."""
    base = "192.0.2." if family == 4 else "2001:db8::"
    vips = [f"{base}{20 + i}" for i in range(40)]
    agent = Agent(lab, lab.nodes[0])
    agent.call("l2_options", address_lifetime=30)
    for vip in vips:
        agent.call("announce", ip=vip, interface="eth0")
    last = vips[-1]  # the refresh reaches it after 39 others: the withdrawal comes first
    agent.call("withdraw_during_refresh", ip=last)
    assert last not in agent.call("announced")
    assert last not in addresses(agent.node.name)
    assert set(vips[:-1]) <= addresses(agent.node.name)
    agent.close()
    assert not set(vips) & addresses(agent.node.name)


def test_interface_is_chosen_by_subnet_then_by_route(lab: Lab) -> None:
    node = lab.nodes[0]
    run("ip", "-n", node.name, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
    run("ip", "-n", node.name, "addr", "add", "198.51.100.2/24", "dev", "eth1")
    run("ip", "-n", node.name, "link", "set", "eth1", "up")
    run("ip", "-n", node.name, "link", "set", "eth1p", "up")
    agent = Agent(lab, node)
    assert agent.call("interface_for", ip="192.0.2.10") == "eth0"
    assert agent.call("interface_for", ip="198.51.100.10") == "eth1"
    assert agent.call("interface_for", ip="2001:db8::10") == "eth0"
    # outside every subnet and without a route: nowhere to announce
    assert agent.call("interface_for", ip="203.0.113.10") is None
    run("ip", "-n", node.name, "route", "add", "default", "via", lab.router.ipv4)
    assert agent.call("interface_for", ip="203.0.113.10") == "eth0"
    # the advertisement's interface list filters
    assert agent.call("interface_for", ip="192.0.2.10", allowed=["eth1"]) is None
    # an address vipam added (a /32) does not make its interface a segment for others
    agent.call("announce", ip="203.0.113.20", interface="eth1")
    assert agent.call("interface_for", ip="203.0.113.20", allowed=["eth1"]) is None
    agent.close()


def test_announcing_again_restores_an_address_removed_by_hand(lab: Lab) -> None:
    node = Agent(lab, lab.nodes[0])
    node.call("announce", ip=VIPS[6], interface="eth0")
    run("ip", "-n", node.node.name, "addr", "del", f"{VIPS[6]}/128", "dev", "eth0")
    assert VIPS[6] not in addresses(node.node.name)
    node.call("announce", ip=VIPS[6], interface="eth0")
    assert VIPS[6] in addresses(node.node.name)
    node.close()
    assert VIPS[6] not in addresses(node.node.name)
