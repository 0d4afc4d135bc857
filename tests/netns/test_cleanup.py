"""The harness leaves nothing behind: namespaces by name, processes by pid, even orphans."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.netns.bird import Bird, BirdNeighbor
from tests.netns.lab import Agent, Lab, namespaces, pid_alive, run, wait_for

pytestmark = pytest.mark.netns


def test_everything_started_is_gone_after_destroy(bird_available: None, tmp_path: Path) -> None:
    lab = Lab.create(node_count=1)
    try:
        node = lab.nodes[0]
        bird = Bird(lab, tmp_path, 64512, [BirdNeighbor("node1", node, 64512)])
        agent = Agent(lab, node)
        agent.call("announce", ip="192.0.2.10", interface="eth0")
        agent.call(
            "bgp_start",
            peers=[{"address": lab.router.ipv4, "asn": 64512, "local_asn": 64512,
                    "source_address": node.ipv4}],
            options={"router_id": node.ipv4, "workdir": str(tmp_path / "exabgp")},
        )
        wait_for(lambda: bird.established("node1"), timeout=10, what="BGP session")
        exabgp = agent.call("bgp_pid")
        inside = lab.processes_inside()
        # BIRD, the agent, ExaBGP and its relay all run in our namespaces
        assert {bird.pid, agent.pid, exabgp} <= inside
        assert len(inside) >= 4
    finally:
        strays = lab.destroy()
    assert strays == set()
    assert not set(lab.all_namespaces()) & namespaces()
    for pid in inside:
        assert not pid_alive(pid), f"pid {pid} survived"


def test_orphans_in_our_namespaces_are_found_and_killed(privileged: None) -> None:
    lab = Lab.create(node_count=1)
    try:
        # a double fork: the shell exits at once, the sleep is nobody's child of ours
        run("ip", "netns", "exec", lab.nodes[0].name, "sh", "-c",
            "sleep 300 >/dev/null 2>&1 &")
        orphans = wait_for(lab.processes_inside, timeout=5, what="the orphan to appear")
    finally:
        strays = lab.destroy()
    assert strays == orphans
    wait_for(lambda: not any(pid_alive(pid) for pid in orphans), timeout=5,
             what="the orphan to be killed")
    assert not set(lab.all_namespaces()) & namespaces()


def test_a_failed_build_removes_what_it_made_and_only_that(privileged: None) -> None:
    """A name clash halfway through: our namespaces go, the one we did not create stays."""
    prefix = f"vp{os.getpid()}-clash"
    squatter = f"{prefix}-node1"
    run("ip", "netns", "add", squatter)
    try:
        with pytest.raises(subprocess.CalledProcessError):
            Lab.create(node_count=1, prefix=prefix)
        left = {ns for ns in namespaces() if ns.startswith(prefix)}
        assert left == {squatter}
    finally:
        run("ip", "netns", "del", squatter, check=False)
