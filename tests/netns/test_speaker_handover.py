"""Handovers of an L2 address between real speakers, as a host that resolves afresh sees them.

On the whole-path site (tests/netns/site.py: a real kube-apiserver and controller, a speaker
with the shipped timing defaults on each of three nodes), a probe host sends an ARP request and
a neighbour solicitation for each VIP of Service ``web`` every 50 ms from raw sockets, so no
neighbour cache hides a gap or a second answer. What the issue asked to be true:

* a node never makes a VIP its own source address (the VIP only receives);
* a speaker that rejoins, and a rolling restart of every speaker, leave no round unanswered
  (make-before-break: the old owner answers until the new owner's announcement is heard, so
  both answer for the few milliseconds it takes to hear it; the tests print how long);
* after a SIGKILL, no round gets two different answers, and another node answers within 2 s.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from functools import partial

import pytest

from tests.netns.lab import Member, run, wait_for
from tests.netns.probing import Probe, RequestLoop, first_answer, judge, outage
from tests.netns.site import Site


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Figures that belong in the test output whether or not the test fails."""
    with capsys.disabled():
        print(text)

pytestmark = pytest.mark.netns

PERIOD = 0.05
# The longest a live handover may show two answers: the old owner hears the new owner's first
# announcement (or the answer to its own probe); missing both, the repeat 0.5 s later
HANDOVER_OVERLAP = 0.5


def settled(site: Site, probe: Probe, since: float = 0.0) -> bool:
    """Every VIP of ``web`` answered by exactly its elected owner among the running speakers,
    in a round that started at or after ``since``."""
    return all(probe.answered_by(ip, site.owner_of(ip).mac, since) for ip in site.vips["web"])


def _probe(site: Site) -> tuple[Probe, float]:
    """A running probe, and the time from which every VIP is answered by its owner."""
    site.wait_speakers_ready()
    probe = Probe(site.lab, site.probe, site.vips["web"], PERIOD)
    wait_for(partial(settled, site, probe), 15, "every VIP answered by its elected owner")
    return probe, probe.now()


def _source_seen_by_peer(site: Site, node: Member, family: int) -> str:
    """Connect from ``node`` to the probe host over TCP; the peer address the server saw."""
    peer = site.probe.ipv4 if family == 4 else site.probe.ipv6
    server = site.lab.spawn(site.probe.name, [sys.executable, "-c", (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_INET{'6' if family == 6 else ''})\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('{peer}',8099));s.listen();print('ready',flush=True)\n"
        "c,a=s.accept();print(a[0],flush=True)\n"
    )], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    run("ip", "netns", "exec", node.name, sys.executable, "-c",
        f"import socket;socket.create_connection(('{peer}',8099),timeout=5).close()")
    seen: str = server.stdout.readline().strip()
    server.wait(timeout=5)
    return seen


def test_a_vip_is_never_the_nodes_source_address(site: Site) -> None:
    """A /128 VIP beats the node's /64 address for any peer on the segment (longest match,
    RFC 6724 rule 8): unless deprecated, the node sources its own traffic from it."""
    probe, _ = _probe(site)
    probe.stop()
    seen: dict[str, tuple[str, str, str]] = {}
    for ip in sorted(site.vips["web"], key=lambda ip: ":" not in ip):  # IPv6 first: the defect
        family = 6 if ":" in ip else 4
        holder = site.owner_of(ip)
        peer = site.probe.ipv6 if family == 6 else site.probe.ipv4
        (route,) = json.loads(run("ip", "-j", "-n", holder.name, "route", "get", peer).stdout)
        seen[ip] = (holder.ipv6 if family == 6 else holder.ipv4, route.get("prefsrc", ""),
                    _source_seen_by_peer(site, holder, family))
        print(f"\n{holder.name} holds {ip}: own address, route src, TCP peer saw: {seen[ip]}")
    for ip, (own, route_source, peer_saw) in seen.items():
        assert peer_saw == own, f"{ip}'s holder sourced a connection from {peer_saw}, not {own}"
        assert route_source == own
    for ip in site.vips["web"]:  # still answered for (the probe above), only deprecated
        holder = site.owner_of(ip)
        links = json.loads(run("ip", "-j", "-n", holder.name, "addr", "show", "to", ip).stdout)
        (info,) = [a for link in links for a in link["addr_info"] if a.get("local") == ip]
        assert info.get("preferred_life_time") == 0, info


def test_rejoin_and_rolling_restart_leave_no_unanswered_moment(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 1: a rejoining speaker used to withdraw-then-wait, leaving ~1.5 s unanswered."""
    probe, since = _probe(site)
    loop = RequestLoop(site.lab, site.client, site.vips["web"])
    started = loop.now()
    try:
        marks: list[str] = []
        for node in site.lab.nodes:  # a DaemonSet rollout: the next node once this one is ready
            site.stop_speaker(node, signal.SIGTERM)
            stopped = probe.now()
            marks.append(f"{node.name} stopped {stopped:.2f}")
            wait_for(partial(settled, site, probe, stopped), 10, f"hand-over from {node.name}")
            site.start_speaker(node)
            wait_for(partial(site.speaker_ready, node), 60, f"{node.name} ready", poll=0.1)
            ready = probe.now()
            marks.append(f"ready {ready:.2f}")
            wait_for(partial(settled, site, probe, ready), 15, f"{node.name} to rejoin")
            time.sleep(0.3)  # a late second answer would show here
    finally:
        requests = loop.stop()
        rounds = probe.stop()
        site.restore()
    lines = []
    for ip in site.vips["web"]:
        verdict = judge(rounds, ip, start=since)
        seen = outage(requests, ip, started)
        lines.append(f"  {verdict}\n  client: {seen}")
        assert verdict.rounds > 100
        assert verdict.silent == [], f"nobody answered for {ip}: {verdict}"
        # make-before-break: both answer from the new owner's announcement until the old owner
        # hears it (milliseconds; more on a loaded machine), never past the next repeat
        assert verdict.longest_double < HANDOVER_OVERLAP, (
            f"two nodes answered for {ip}: {verdict}; {marks}\nspeakers:\n"
            + site.speaker_timeline([ip], probe.wall_started, since))
        # the client: the old owner keeps the address HANDOVER_GRACE after hearing the new one,
        # for requests sent with the old neighbour entry in that instant (without it: timeouts).
        # What remains (1 request of ~200 in about 1 run of 5, before and after the grace): a
        # connection opened through the old owner whose next packet reaches the new one, reset
        assert seen.lost_only_at_a_switch(), f"{seen}; probe: {verdict}; {marks}"
    report(capsys, f"\nrolling restart ({', '.join(marks)}):\n" + "\n".join(lines))


def test_sigkill_takeover_never_gives_two_answers(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 3: the killed speaker's addresses used to answer beside the new owner's."""
    probe, _ = _probe(site)
    loop = RequestLoop(site.lab, site.client, site.vips["web"])
    victim = site.owner_of(site.vips["web"][0])
    moved = [ip for ip in site.vips["web"] if site.owner_of(ip) == victim]
    survivors = [node for node in site.lab.nodes if node != victim]
    try:
        time.sleep(0.5)
        killed, killed_loop = probe.now(), loop.now()
        site.stop_speaker(victim, signal.SIGKILL)
        for ip in moved:
            heir = site.owner_of(ip, survivors)
            wait_for(partial(probe.answered_by, ip, heir.mac, killed), 5,
                     f"{heir.name} alone to answer for {ip}")
        time.sleep(1.0)  # the killed node's addresses would still answer here if they outlived
        restarted, restarted_loop = probe.now(), loop.now()
        site.start_speaker(victim)
        wait_for(partial(site.speaker_ready, victim), 60, f"{victim.name} ready", poll=0.1)
        wait_for(partial(settled, site, probe, probe.now()), 15, f"{victim.name} to rejoin")
        time.sleep(0.3)
    finally:
        requests = loop.stop()
        rounds = probe.stop()
        site.restore()
    lines = []
    for ip in moved:
        heir = site.owner_of(ip, survivors)
        verdict = judge(rounds, ip, start=killed, end=restarted)
        takeover = first_answer(rounds, ip, heir.mac, killed)
        seen = outage(requests, ip, killed_loop, restarted_loop)
        lines.append(f"  {ip} answered by {heir.name} after "
                     f"{None if takeover is None else round(takeover - killed, 3)} s; "
                     f"probe: {verdict}\n  client: {seen}")
        assert verdict.double == [], f"two nodes answered for {ip} after the SIGKILL: {verdict}"
        assert takeover is not None and takeover - killed < 2.0, lines[-1]
        assert seen.gap is not None and seen.gap < 2.0, lines[-1]
    for ip in site.vips["web"]:
        rejoin = judge(rounds, ip, start=restarted)
        seen = outage(requests, ip, restarted_loop)
        lines.append(f"  {victim.name} rejoins: {rejoin}\n  client: {seen}")
        assert rejoin.silent == [] and rejoin.longest_double < HANDOVER_OVERLAP, (
            f"{rejoin}\nspeakers:\n"
            + site.speaker_timeline([ip], probe.wall_started, restarted))
        assert seen.lost_only_at_a_switch(), f"{seen}; probe: {rejoin}"
    report(capsys, f"\nSIGKILL of {victim.name}'s speaker:\n" + "\n".join(lines))
