"""The whole path of a VIP on real parts: client -> ARP/NDP or BGP -> node -> kube-proxy -> pod.

On the site of tests/netns/site.py (a real kube-apiserver, our controller and speakers, a real
kube-proxy v1.36 per node, pods as namespaces), for each kube-proxy mode:

* L2, IPv4 and IPv6: the client reaches a pod through the VIP, with
  ``externalTrafficPolicy: Cluster`` (both pods answer; the client is masqueraded) and
  ``Local`` (only the node with the endpoint announces; the pod sees the client's own
  address), and when the endpoint moves to another node the announcement follows it;
* ``loadBalancerSourceRanges``: the client in the range gets an answer, a host outside does not;
* the node's iptables-save / nft lines for each VIP are printed as evidence.

Then, once: failover as a client sees it when the owner's link goes down, measured from the
client's requests and from a host that resolves afresh (a SIGKILL and a rolling restart are
measured the same way in tests/netns/test_speaker_handover.py); and BGP with ECMP through
BIRD 2.
"""

from __future__ import annotations

import itertools
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.netns.bird import Bird, BirdNeighbor
from tests.netns.lab import Member, run, wait_for
from tests.netns.probing import Probe, RequestLoop, judge, outage
from tests.netns.site import BGP_OBJECTS, Pod, Site, next_hops, wait_rules

pytestmark = pytest.mark.netns

ASN = 64512
REQUESTS = 24


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Evidence that belongs in the test output whether or not the test fails."""
    with capsys.disabled():
        print(text)


def answers(site: Site, ns: str, ip: str, count: int = REQUESTS) -> list[str]:
    got = [site.get_once(ns, ip) for _ in range(count)]
    assert all(got), f"{ip}: {got.count(None)} of {count} requests from {ns} got no answer"
    return [answer for answer in got if answer]


def announcer_of(site: Site, probe: Probe, ip: str) -> Member | None:
    found = probe.latest(ip)
    if not found or len(found) != 1:
        return None
    return next((node for node in site.lab.nodes if node.mac == found[0]), None)


def announced_from(site: Site, probe: Probe, ips: list[str], node: Member) -> bool:
    return all(announcer_of(site, probe, ip) is node for ip in ips)


def answered_by_pod(site: Site, ips: list[str], pod: Pod, tries: int = 1) -> bool:
    for ip in ips * tries:
        got = site.get_once(site.client.name, ip)
        if not got or got.split()[0] != pod.name:
            return False
    return True


def ipvs_missing() -> str | None:
    """Why kube-proxy's IPVS mode cannot run here, or None."""
    if not Path("/proc/net/ip_vs").exists() and not Path("/sys/module/ip_vs").exists():
        return ("the kernel has no IP_VS (not built in, and no module loading in this "
                "sandbox); kube-proxy's IPVS mode cannot program a virtual server")
    return None


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_l2_path(site: Site, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    if mode == "ipvs" and (why := ipvs_missing()):
        pytest.skip(why)
    site.use_proxies(mode)
    for name in ("web", "web-local", "web-ranged"):
        for ip in site.vips[name]:
            rules = wait_rules(site, ip, timeout=30)
            node = site.lab.nodes[0]
            report(capsys, f"\n[{mode}] {name} {ip} on {node.name}:\n  "
                   + "\n  ".join(rules[node.name]))
    for ip in site.vips["web"]:
        got = answers(site, site.client.name, ip)
        pods = {answer.split()[0] for answer in got}
        assert pods == {"web-a", "web-b"}, f"Cluster policy spreads over both pods: {got}"
        seen = {answer.split()[1] for answer in got}
        assert site.client.ipv4 not in seen and site.client.ipv6 not in seen, \
            f"Cluster policy masquerades the client: {seen}"
    for ip in site.vips["web-local"]:
        got = answers(site, site.client.name, ip)
        own = site.client.ipv6 if ":" in ip else site.client.ipv4
        assert set(got) == {f"local-a {own}"}, f"Local: one pod, client address kept: {got}"
    for ip in site.vips["web-ranged"]:
        answers(site, site.client.name, ip, count=3)
        assert site.get_once(site.probe.name, ip) is None, f"{ip} answered outside its ranges"
    local_follows_its_endpoint(site, mode, capsys)


def local_follows_its_endpoint(site: Site, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Move web-local's only endpoint to another node and back: the announcement follows and
    the client keeps reaching the Service; the gap is measured from the client."""
    ips = site.vips["web-local"]
    probe = Probe(site.lab, site.probe, ips)
    loop = RequestLoop(site.lab, site.client, ips)
    try:
        third, first = site.lab.nodes[2], site.lab.nodes[0]
        wait_for(partial(announced_from, site, probe, ips, third), 10,
                 "web-local announced by the node with its endpoint")
        moved = site.pods.get("local-b") or site.add_pod("local-b", first)
        events = []
        for target, pods in ((first, [moved]), (third, [site.pods["local-a"]])):
            time.sleep(1.0)
            events.append((target, loop.now(), probe.now()))
            site.set_endpoints("web-local", pods)
            wait_for(partial(announced_from, site, probe, ips, target), 15,
                     f"web-local to follow its endpoint to {target.name}")
            wait_for(partial(answered_by_pod, site, ips, pods[0]), 15,
                     f"answers from {pods[0].name}")
        time.sleep(0.5)
        events.append((first, loop.now(), probe.now()))  # the end of the last move
    finally:
        requests = loop.stop()
        rounds = probe.stop()
    for ip in ips:
        for (target, at, probed), (_, end, probe_end) in itertools.pairwise(events):
            seen = outage(requests, ip, at, end)
            verdict = judge(rounds, ip, start=probed, end=probe_end)
            report(capsys, f"[{mode}] web-local endpoint to {target.name}: {seen}; probe: "
                   f"{verdict}")
            assert seen.gap is not None and seen.gap < 3.0, seen


@dataclass
class Episode:
    """One failover event, as times on the request loop's and the probe's clocks."""

    name: str
    kind: str  # "takeover" (the owner died: a gap is expected) or "handover" (no gap allowed)
    loop_at: float
    probe_at: float
    loop_end: float = 0.0
    probe_end: float = 0.0


class Recorder:
    def __init__(self, probe: Probe, loop: RequestLoop) -> None:
        self.probe, self.loop = probe, loop
        self.episodes: list[Episode] = []

    def begin(self, name: str, kind: str) -> Episode:
        episode = Episode(name, kind, self.loop.now(), self.probe.now())
        self.episodes.append(episode)
        return episode

    def end(self, episode: Episode) -> None:
        episode.loop_end, episode.probe_end = self.loop.now(), self.probe.now()


def test_l2_failover_when_the_owner_loses_its_link(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """The owner's link goes down (its speaker, cut off from the API, fences itself): another
    node answers within 2 s, never beside it; when the link is back, the node wins its
    addresses back without a moment unanswered or a failed request. (SIGKILL and a rolling
    restart, measured the same way: tests/netns/test_speaker_handover.py.)"""
    if not site.proxy_mode:
        site.use_proxies("nftables")
    ips = site.vips["web"]
    site.wait_speakers_ready()
    probe = Probe(site.lab, site.probe, ips)
    loop = RequestLoop(site.lab, site.client, ips)
    record = Recorder(probe, loop)
    try:
        wait_for(partial(answered_by_owners, site, probe, ips, 0.0), 15,
                 "web announced by its elected owners")
        time.sleep(0.5)
        unplug_the_owner(site, record, ips)
    finally:
        requests = loop.stop()
        rounds = probe.stop()
        site.restore()
    lines, failures = [], []
    for episode in record.episodes:
        for ip in ips:
            seen = outage(requests, ip, episode.loop_at, episode.loop_end)
            verdict = judge(rounds, ip, episode.probe_at, episode.probe_end)
            gap = "none" if seen.gap is None else f"{seen.gap:.2f} s"
            line = (f"  {episode.name:34} {ip:14} client gap {gap}, {seen.failed}/{seen.sent} "
                    f"failed | probe: no answer {verdict.silent_seconds:.2f} s, two answers "
                    f"{verdict.double_seconds:.2f} s (longest {verdict.longest_double:.2f} s)")
            lines.append(line)
            if episode.kind == "takeover":
                bad = bool(verdict.double) or seen.gap is None or seen.gap >= 2.0
            else:
                # a handover: nobody silent, two answers briefly, and a request lost only
                # to a reset at the client's neighbour switch (probing.Outage)
                bad = (not seen.lost_only_at_a_switch() or bool(verdict.silent)
                       or verdict.longest_double >= 0.5)
            if bad:
                failures.append(line)
    report(capsys, "\nL2 failover, shipped defaults (client: a new connection every 50 ms; "
           "probe: fresh ARP/NDP every 50 ms):\n" + "\n".join(lines))
    assert not failures, "\n".join(failures)


def answered_by_owners(site: Site, probe: Probe, ips: list[str], since: float) -> bool:
    return all(probe.answered_by(ip, site.owner_of(ip).mac, since) for ip in ips)


def unplug_the_owner(site: Site, record: Recorder, ips: list[str]) -> None:
    victim = site.owner_of(ips[0])
    # a pod on the unplugged node would be lost too, until something marked it not ready (no
    # kubelet here): leave the endpoints on the other nodes, to measure the VIP's path alone
    elsewhere = [pod for pod in (site.pods["web-a"], site.pods["web-b"]) if pod.node != victim]
    site.set_endpoints("web", elsewhere)
    if len(elsewhere) == 1:
        wait_for(partial(answered_by_pod, site, ips, elsewhere[0], 6), 15,
                 f"kube-proxy to send web only to {elsewhere[0].name}")
    time.sleep(1.0)
    episode = record.begin(f"link down at {victim.name}", "takeover")
    site.unplug(victim)
    try:
        survivors = [node for node in site.lab.nodes if node != victim]
        wait_for(lambda: all(record.probe.answered_by(ip, site.owner_of(ip, survivors).mac,
                                                      episode.probe_at) for ip in ips),
                 10, "the survivors to take over")
        time.sleep(1.5)
    finally:
        record.end(episode)
        site.plug(victim)
    # the unplugged speaker fenced itself; with the link back it renews again: a rejoin
    episode = record.begin(f"link up at {victim.name}", "handover")
    wait_for(partial(site.speaker_ready, victim), 30, f"{victim.name} back", poll=0.1)
    wait_for(partial(answered_by_owners, site, record.probe, ips, record.probe.now()), 15,
             f"{victim.name} to win its addresses back")
    time.sleep(0.5)
    record.end(episode)
    site.set_endpoints("web", [site.pods["web-a"], site.pods["web-b"]])


HOLD = 3  # BIRD's minimum: the bound on a BGP failover that no speaker can report


def has_next_hops(site: Site, ip: str, wanted: set[str]) -> bool:
    return next_hops(site, ip) == wanted


def lacks_next_hop(site: Site, ip: str, gone: str) -> bool:
    hops = next_hops(site, ip)
    return bool(hops) and gone not in hops


def test_bgp_ecmp(site: Site, bird_available: None, capsys: pytest.CaptureFixture[str],
                  tmp_path: Path) -> None:
    """BIRD learns each VIP from every node and installs one multipath route; requests spread
    over the nodes; a stopped speaker withdraws its path and requests keep succeeding; an
    unplugged node is dropped after the hold time, which bounds what a client sees."""
    if not site.proxy_mode:
        site.use_proxies("nftables")
    nodes = site.lab.nodes
    bird = Bird(site.lab, tmp_path, ASN, [
        BirdNeighbor(f"{node.name.rsplit('-', 1)[-1]}v{family}", node, ASN, family == 6)
        for node in nodes for family in (4, 6)
    ], hold=HOLD, ecmp=True)
    site.apply(BGP_OBJECTS.format(v4=site.client.ipv4, v6=site.client.ipv6, asn=ASN, hold=HOLD))
    site.set_endpoints("web-bgp", [site.pods["web-a"], site.pods["web-b"]])
    ips = site.wait_service_ips("web-bgp", 2, timeout=60)
    try:
        for ip in ips:
            family = {node.ipv6 if ":" in ip else node.ipv4 for node in nodes}
            try:
                wait_for(partial(has_next_hops, site, ip, family), 60,
                         f"an ECMP route for {ip} through every node")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{bird.birdc('show', 'route', 'all')}\n"
                                     + run("ip", "-6", "-n", site.client.name, "route").stdout
                                     ) from None
        report(capsys, "\nBGP: BIRD's paths and the client's kernel route for each VIP:\n"
               + "".join(bird.birdc("show", "route", f"{ip}/{128 if ':' in ip else 32}")
                         + run("ip", "-6" if ":" in ip else "-4", "-n", site.client.name,
                               "route", "show", ip).stdout for ip in ips))
        for ip in ips:
            # ECMP hashes a new connection to any node: each node's kube-proxy must have synced
            # its rules for the VIP (minSyncPeriod ~1 s) before every request can be answered
            for node in nodes:
                wait_for(partial(site.rules, node, ip), 20, f"kube-proxy rules for {ip} on "
                         f"{node.name}")
            wait_for(partial(site.get_once, site.client.name, ip), 20, f"{ip} answers")
            got = answers(site, site.client.name, ip, count=30)
            entered = sorted({node.name for answer in got
                              if (node := site.ingress_node(answer.split()[1]))})
            report(capsys, f"BGP {ip}: 30 requests entered through {entered}")
            assert len(entered) >= 2, f"ECMP spreads requests over nodes: {got}"

        loop = RequestLoop(site.lab, site.client, ips)
        try:
            # node3 runs none of web-bgp's pods: unplugging it tests the path, not a lost pod
            stopped, unplugged = nodes[0], nodes[2]
            at_stop = loop.now()
            site.stop_speaker(stopped, signal.SIGTERM)
            for ip in ips:
                gone = stopped.ipv6 if ":" in ip else stopped.ipv4
                wait_for(partial(lacks_next_hop, site, ip, gone), 15,
                         f"{stopped.name}'s path withdrawn")
            withdrawn = loop.now()
            time.sleep(1.0)
            at_unplug = loop.now()
            site.unplug(unplugged)
            for ip in ips:
                gone = unplugged.ipv6 if ":" in ip else unplugged.ipv4
                wait_for(partial(lacks_next_hop, site, ip, gone), HOLD + 10,
                         f"{unplugged.name} dropped")
            dropped = loop.now()
            time.sleep(1.0)
        finally:
            requests = loop.stop()
            site.restore()
        lines = []
        for ip in ips:
            mine = [r for r in requests if r.target == ip]
            stop = [r for r in mine if at_stop <= r.sent < at_unplug and not r.ok]
            unplug = [r for r in mine if at_unplug <= r.sent and not r.ok]
            window = (max(r.sent for r in unplug) - min(r.sent for r in unplug)) if unplug else 0
            lines.append(
                f"  {ip}: speaker stopped: path withdrawn after {withdrawn - at_stop:.2f} s, "
                f"{len(stop)} requests failed (in flight as the route changed); node unplugged: "
                f"path dropped after {dropped - at_unplug:.2f} s (hold time {HOLD} s), "
                f"{len(unplug)} requests failed over {window:.2f} s")
            # a route change can break connections in flight (ECMP rehashes), never later ones
            assert all(r.sent < withdrawn + 0.5 for r in stop), lines[-1]
            assert all(r.sent < dropped + 0.5 for r in unplug), lines[-1]
            assert window <= HOLD + 1.0, lines[-1]
        report(capsys, "BGP failover:\n" + "\n".join(lines))
    finally:
        site.api.kubectl("delete", "--ignore-not-found", "service/web-bgp",
                         "bgppeers/router-v4", "bgppeers/router-v6", "bgpadvertisements/routed",
                         "ippools/routed")
        bird.process.terminate()
        bird.process.wait(timeout=10)
