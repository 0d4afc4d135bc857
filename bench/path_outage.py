"""What a client sees when the node carrying a VIP loses its link: the outage distribution.

Run (root, with a real kube-apiserver and kube-proxy, see tests/netns/site.py)::

    KUBEBUILDER_ASSETS=.k8s-bin .venv/bin/python -m bench.path_outage --trials 5

Builds the whole-path site of tests/netns (a real kube-apiserver, our controller and speakers
with the shipped defaults, a real kube-proxy per node, pods, a client that is also a BIRD 2
router) and, N times each:

* L2 IPv4 and L2 IPv6: unplugs the node that announces the VIP of Service ``web`` (its speaker,
  cut off from the API, fences itself; another node takes over); the client opens a new
  connection every 50 ms, and a probe host resolves the VIP afresh every 50 ms;
* BGP (both families at once, ECMP over three nodes, hold time 3 s): unplugs a node; only the
  connections the router hashes to it fail, until BIRD drops its path.

The pods are kept off the unplugged node, so what is measured is the VIP's path, not a lost
pod. Prints one JSON document, then a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devkit.apiserver import assets_dir, missing_reason
from tests.netns.bird import Bird, BirdNeighbor
from tests.netns.lab import Member, wait_for
from tests.netns.probing import Probe, RequestLoop, judge, outage
from tests.netns.site import BGP_OBJECTS, Site, kube_proxy_binary, next_hops

HOLD = 3
ASN = 64512
def _announcer(site: Site, probe: Probe, ip: str) -> Member | None:
    found = probe.latest(ip)
    if not found or len(found) != 1:
        return None
    return next((node for node in site.lab.nodes if node.mac == found[0]), None)


def l2_trial(site: Site, ip: str) -> dict[str, Any]:
    """Unplug the node announcing ``ip``; the client's and the probe's view of it."""
    victim = site.owner_of(ip)
    elsewhere = [pod for pod in (site.pods["web-a"], site.pods["web-b"]) if pod.node != victim]
    site.set_endpoints("web", elsewhere)
    time.sleep(2.0)  # kube-proxy's 1 s minSyncPeriod, everywhere
    probe = Probe(site.lab, site.probe, [ip])
    loop = RequestLoop(site.lab, site.client, [ip])
    try:
        wait_for(lambda: _announcer(site, probe, ip) == victim, 15, f"{victim.name} announces")
        time.sleep(0.5)
        at, probed = loop.now(), probe.now()
        site.unplug(victim)
        survivors = [node for node in site.lab.nodes if node != victim]
        heir = site.owner_of(ip, survivors)
        wait_for(lambda: probe.answered_by(ip, heir.mac, probed), 15, "the takeover")
        time.sleep(1.5)
        end, probe_end = loop.now(), probe.now()
    finally:
        site.plug(victim)
        requests = loop.stop()
        rounds = probe.stop()
    site.restore()
    site.set_endpoints("web", [site.pods["web-a"], site.pods["web-b"]])
    seen = outage(requests, ip, at, end)
    verdict = judge(rounds, ip, probed, probe_end)
    return {"node": victim.name, "outage_s": seen.gap, "failed": seen.failed, "sent": seen.sent,
            "probe_no_answer_s": round(verdict.silent_seconds, 3),
            "probe_two_answers_s": round(verdict.double_seconds, 3)}


def _every_path(site: Site, ips: list[str]) -> bool:
    return all(next_hops(site, ip) == {n.ipv6 if ":" in ip else n.ipv4 for n in site.lab.nodes}
               for ip in ips)


def bgp_trial(site: Site, ips: list[str]) -> dict[str, Any]:
    victim = site.lab.nodes[2]  # runs none of the pods
    wait_for(lambda: _every_path(site, ips), 60, "an ECMP route through every node")
    loop = RequestLoop(site.lab, site.client, ips)
    try:
        time.sleep(1.0)
        at = loop.now()
        site.unplug(victim)
        wait_for(lambda: all(victim.ipv4 not in next_hops(site, ip)
                             and victim.ipv6 not in next_hops(site, ip) for ip in ips),
                 HOLD + 10, "the path dropped")
        dropped = loop.now() - at
        time.sleep(1.0)
    finally:
        site.plug(victim)
        requests = loop.stop()
    site.restore()
    result: dict[str, Any] = {"node": victim.name, "path_dropped_s": round(dropped, 3)}
    for ip in ips:
        failed = [r for r in requests if r.target == ip and r.sent >= at and not r.ok]
        # the share of new connections lost while the dead node's path was still installed
        sent = [r for r in requests if r.target == ip and at <= r.sent < at + dropped]
        result[ip] = {
            "failed": len(failed), "sent_until_dropped": len(sent),
            "failing_for_s": round(max(r.sent for r in failed) - min(r.sent for r in failed), 3)
            if failed else 0.0,
        }
    return result


def summary(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--proxy-mode", default="nftables", choices=["iptables", "nftables"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("bird") is None:
        print("needs BIRD 2 (Debian package bird2)", file=sys.stderr)
        return 2
    if (why := missing_reason()) is not None:
        print(why, file=sys.stderr)
        return 2
    assets = assets_dir()
    proxy = kube_proxy_binary(assets) if assets else None
    if proxy is None:
        print("no kube-proxy: scripts/k8s-assets, or VIPAM_KUBE_PROXY", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="vipam-path-outage-"))
    site = Site.build(workdir, proxy)
    results: dict[str, Any] = {"trials": args.trials, "proxy_mode": args.proxy_mode,
                               "kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        site.populate()
        site.use_proxies(args.proxy_mode)
        site.wait_speakers_ready()
        for family, ip in zip(("L2 IPv4", "L2 IPv6"), site.vips["web"], strict=True):
            results[family] = [l2_trial(site, ip) for _ in range(args.trials)]
        bird = Bird(site.lab, workdir, ASN, [
            BirdNeighbor(f"{node.name.rsplit('-', 1)[-1]}v{family}", node, ASN, family == 6)
            for node in site.lab.nodes for family in (4, 6)
        ], hold=HOLD, ecmp=True)
        site.apply(BGP_OBJECTS.format(v4=site.client.ipv4, v6=site.client.ipv6, asn=ASN,
                                      hold=HOLD))
        site.set_endpoints("web-bgp", [site.pods["web-a"], site.pods["web-b"]])
        bgp_ips = site.wait_service_ips("web-bgp", 2, timeout=60)
        results["BGP"] = [bgp_trial(site, bgp_ips) for _ in range(args.trials)]
        bird.process.terminate()
        bird.process.wait(timeout=10)
    finally:
        strays = site.destroy()
    if strays:
        print(f"processes left in the namespaces (killed): {strays}", file=sys.stderr)
    for family in ("L2 IPv4", "L2 IPv6"):
        trials = results[family]
        results[f"{family} summary"] = {
            "outage_s": summary([t["outage_s"] for t in trials if t["outage_s"] is not None]),
            "probe_no_answer_s": summary([t["probe_no_answer_s"] for t in trials]),
            "probe_two_answers_s": summary([t["probe_two_answers_s"] for t in trials]),
        }
    bgp = results["BGP"]
    results["BGP summary"] = {
        "path_dropped_s": summary([t["path_dropped_s"] for t in bgp]),
        "failing_for_s": summary([t[ip]["failing_for_s"] for t in bgp for ip in bgp_ips]),
        "failed_share": summary([t[ip]["failed"] / max(1, t[ip]["sent_until_dropped"])
                                 for t in bgp for ip in bgp_ips]),
    }
    print(json.dumps(results, indent=1))
    print("\n| path | trials | client outage (min / median / max) | fresh resolver: no answer "
          "| two answers |")
    print("|---|---|---|---|---|")
    for family in ("L2 IPv4", "L2 IPv6"):
        s = results[f"{family} summary"]
        print(f"| {family} | {args.trials} | {s['outage_s']['min']:.2f} / "
              f"{s['outage_s']['median']:.2f} / {s['outage_s']['max']:.2f} s | "
              f"{s['probe_no_answer_s']['median']:.2f} s (max {s['probe_no_answer_s']['max']:.2f})"
              f" | {s['probe_two_answers_s']['max']:.2f} s |")
    s = results["BGP summary"]
    print(f"| BGP, ECMP over 3 nodes (hold {HOLD} s) | {args.trials} | some connections fail "
          f"for {s['failing_for_s']['min']:.2f} / {s['failing_for_s']['median']:.2f} / "
          f"{s['failing_for_s']['max']:.2f} s (median share "
          f"{s['failed_share']['median'] * 100:.0f}%); path dropped after "
          f"{s['path_dropped_s']['median']:.2f} s | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
