"""L2 takeover benchmark on real kernels (root): announce -> router's neighbour entry switched.

Run: ``sudo .venv/bin/python -m bench.speaker_l2_failover`` (``--trials N``, default 20). Prints
one JSON document, then a table.

Builds the netns lab of tests/netns (a router with arp_accept / accept_untracked_na and two
nodes on one bridge) and moves 192.0.2.10 and 2001:db8::10 back and forth between the nodes.
Each trial times, from the new owner's ``L2Announcer.announce`` call (issued by the test-side
agent), until the router's neighbour table maps the address to the new owner's MAC. Two
modes: the previous owner withdrew first (clean handover), or it still holds the address and
stays silent (as after SIGKILL). Polling ``ip neigh`` bounds the resolution to a few ms.

Batch: a node announces many addresses at once (what a node inherits when another fails):
200 IPv4 and 500 IPv6 addresses of the segment move from node1 (silent, still holding them)
to node2; it times node2's announce loop and the moment the router maps all of them to it.

This is the network half of failover; noticing that the owner is gone (its Lease expiring)
comes on top and is measured with the Kubernetes side.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.netns.lab import Agent, Lab, wait_for

VIPS = {"IPv4": "192.0.2.10", "IPv6": "2001:db8::10"}
BATCHES = {
    "IPv4": [str(ipaddress.ip_address("192.0.2.20") + i) for i in range(200)],
    "IPv6": [str(ipaddress.ip_address("2001:db8::1:0") + i) for i in range(500)],
}


def _all_at(lab: Lab, ips: list[str], mac: str) -> bool:
    table = lab.neighbours()  # one dump per poll
    return all(table.get(ip) == mac for ip in ips)


def run_batches(lab: Lab, agents: list[Agent]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    old, new = agents
    for family, ips in BATCHES.items():
        old.call("announce_many", ips=ips, interface="eth0")
        wait_for(lambda ips=ips: _all_at(lab, ips, old.node.mac),
                 timeout=30, what="first owner everywhere", poll=0.05)
        time.sleep(1.5)  # let the first owner's repeats finish: it is silent from here on
        started = time.perf_counter()
        call = new.call("announce_many", ips=ips, interface="eth0")
        wait_for(lambda ips=ips: _all_at(lab, ips, new.node.mac),
                 timeout=30, what="every address moved", poll=0.005)
        moved = time.perf_counter() - started
        for agent in agents:
            agent.call("withdraw_all")
        results.append({
            "family": family,
            "addresses": len(ips),
            "announce_loop_ms": round(call["seconds"] * 1000, 1),
            "per_address_ms": round(call["seconds"] * 1000 / len(ips), 2),
            "all_moved_ms": round(moved * 1000, 1),
        })
    return results


def _takeover(lab: Lab, new: Agent, vip: str) -> float:
    started = time.perf_counter()
    new.call("announce", ip=vip, interface="eth0")
    wait_for(lambda: lab.neighbour(vip) == new.node.mac, timeout=5, what="takeover", poll=0.002)
    return time.perf_counter() - started


def run_trials(trials: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    results: list[dict[str, object]] = []
    lab = Lab.create(node_count=2)
    try:
        agents = [Agent(lab, node) for node in lab.nodes]
        for family, vip in VIPS.items():
            for mode in ("withdrawn", "silent holder"):
                samples = []
                agents[0].call("announce", ip=vip, interface="eth0")
                first = agents[0].node.mac
                wait_for(lambda v=vip, m=first: lab.neighbour(v) == m, 5, "first owner")
                owner = 0
                for _ in range(trials):
                    new = 1 - owner
                    if mode == "withdrawn":
                        agents[owner].call("withdraw", ip=vip)
                    samples.append(_takeover(lab, agents[new], vip))
                    if mode == "silent holder":
                        agents[owner].call("withdraw", ip=vip)  # reset for the next trial
                    owner = new
                agents[owner].call("withdraw", ip=vip)
                ms = sorted(s * 1000 for s in samples)
                results.append({
                    "family": family,
                    "mode": mode,
                    "trials": trials,
                    "median_ms": round(statistics.median(ms), 1),
                    "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 1),
                    "max_ms": round(ms[-1], 1),
                })
        batches = run_batches(lab, agents)
        for agent in agents:
            agent.close()
    finally:
        lab.destroy()
    return results, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    results, batches = run_trials(args.trials)
    print(json.dumps(
        {"benchmark": "speaker_l2_failover", "results": results, "batches": batches}, indent=2
    ))
    print(f"{'family':<6} {'mode':<14} {'trials':>6} {'median ms':>9} {'p95 ms':>7} {'max ms':>7}")
    for r in results:
        print(f"{r['family']:<6} {r['mode']:<14} {r['trials']:>6} {r['median_ms']:>9} "
              f"{r['p95_ms']:>7} {r['max_ms']:>7}")
    print(f"\n{'family':<6} {'addresses':>9} {'loop ms':>8} {'ms/addr':>7} {'all moved ms':>12}")
    for b in batches:
        print(f"{b['family']:<6} {b['addresses']:>9} {b['announce_loop_ms']:>8} "
              f"{b['per_address_ms']:>7} {b['all_moved_ms']:>12}")


if __name__ == "__main__":
    main()

