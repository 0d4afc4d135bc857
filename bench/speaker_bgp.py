"""BGP benchmark on real kernels (root): how fast a route reaches and leaves a BIRD 2 router.

Run: ``sudo .venv/bin/python -m bench.speaker_bgp`` (``--trials N``, default 10). Prints one
JSON document, then a table.

Uses the netns lab of tests/netns: BIRD in the router namespace (iBGP, AS 64512, TCP-MD5) and
``BGPSpeaker`` (ExaBGP) in a node namespace. Times, each seen from BIRD's ``show route``:
session establishment after ``start``; announce -> route present; withdraw -> route gone;
``stop`` -> routes gone; ExaBGP SIGKILLed -> routes back (supervised restart and replay).
Polling birdc bounds the resolution to a few ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.netns.bird import Bird, BirdNeighbor
from tests.netns.lab import Agent, Lab, wait_for

ASN = 64512
V4 = "203.0.113.10/32"


def _timed(action: Callable[[], object], done: Callable[[], bool]) -> float:
    started = time.perf_counter()
    action()
    wait_for(done, timeout=20, what="BIRD to see the change", poll=0.002)
    return time.perf_counter() - started


def run_trials(trials: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {
        "establish": [], "announce": [], "withdraw": [], "stop": [], "exabgp_killed": [],
    }
    lab = Lab.create(node_count=1)
    workdir = Path(tempfile.mkdtemp(prefix="vipam-bench-"))
    try:
        node = lab.nodes[0]
        bird = Bird(lab, workdir, ASN, [BirdNeighbor("node1", node, ASN)], "bench")
        agent = Agent(lab, node)
        peer = {"address": lab.router.ipv4, "asn": ASN, "local_asn": ASN, "hold_time": 9,
                "password": "bench", "source_address": node.ipv4}
        options = {"router_id": node.ipv4, "workdir": str(workdir / "exabgp")}

        def routes() -> set[str]:
            return set(bird.bgp_routes())

        def announce() -> None:
            agent.call("bgp_announce", prefix=V4, next_hop=node.ipv4, communities=["64512:1"],
                       local_pref=200)

        for _ in range(trials):
            samples["establish"].append(_timed(
                lambda: agent.call("bgp_start", peers=[peer], options=options),
                lambda: bird.established("node1"),
            ))
            samples["announce"].append(_timed(announce, lambda: V4 in routes()))
            samples["withdraw"].append(_timed(
                lambda: agent.call("bgp_withdraw", prefix=V4), lambda: V4 not in routes()
            ))
            announce()
            wait_for(lambda: V4 in routes(), 10, "route")
            exabgp = agent.call("bgp_pid")
            os.kill(exabgp, signal.SIGKILL)
            wait_for(lambda: V4 not in routes(), 20, "session loss")  # BIRD sees the TCP close
            started = time.perf_counter()
            wait_for(lambda: V4 in routes(), 20, "replay", poll=0.002)
            samples["exabgp_killed"].append(time.perf_counter() - started)
            samples["stop"].append(_timed(
                lambda: agent.call("bgp_stop"), lambda: not routes()
            ))
        agent.close()
    finally:
        lab.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    samples = run_trials(args.trials)
    results = []
    for name, values in samples.items():
        ms = sorted(v * 1000 for v in values)
        results.append({"step": name, "trials": len(ms),
                        "median_ms": round(statistics.median(ms), 1), "max_ms": round(ms[-1], 1)})
    print(json.dumps({"benchmark": "speaker_bgp", "results": results}, indent=2))
    print(f"{'step':<14} {'trials':>6} {'median ms':>9} {'max ms':>8}")
    for r in results:
        print(f"{r['step']:<14} {r['trials']:>6} {r['median_ms']:>9} {r['max_ms']:>8}")


if __name__ == "__main__":
    main()
