"""Benchmark: the speaker's planner alone, in this process, on synthetic clusters (no server).

``bench.speaker_scale`` measures a real speaker on a real kube-apiserver with one pool and the
Cluster traffic policy. This one varies what that cannot cheaply vary: the shape of the
Services. For S Services over N live nodes (one L2Advertisement selecting every node) and this
node, ``node-007``:

* ``cluster``: every Service single-stack, ``externalTrafficPolicy: Cluster`` (one field);
* ``dual``: every Service with two addresses (as a dual-stack Service shows them);
* ``local``: every Service ``Local`` with ready endpoints on 3 nodes of its own choosing, so
  most Services have a candidate set of their own (thousands of fields).

Reported per shape, S and N, as thread CPU time, best of 5 (6 for a re-election): ``make_plan``;
the ``Planner``'s full rebuild; its update after one Service changed; its update after another
speaker left, and after it came back, with how many addresses this node gained or lost and
how many Services it was told to check the annotation of; with ``--memory``, what the
planner holds after a rebuild, a leave and a rejoin (tracemalloc: every allocation it made
and kept; the view itself is not counted). Prints JSON, then a table.

    .venv/bin/python -m bench.speaker_planner [--services 1000 10000] [--nodes 20 100] [--memory]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccm.contract import names
from ccm.speaker.plan import ClusterView, make_plan
from ccm.speaker.planner import Planner

NODE = "node-007"
SHAPES = ("cluster", "dual", "local")


def node_name(i: int) -> str:
    return f"node-{i:03d}"


def view_of(shape: str, services: int, nodes: int) -> ClusterView:
    rng = random.Random(services * 1000 + nodes)
    node_objs = {node_name(i): {"metadata": {"name": node_name(i)}} for i in range(nodes)}
    svcs: dict[str, Any] = {}
    slices: dict[str, Any] = {}
    for i in range(services):
        ips = [f"2001:db8:1::{i:x}"]  # (a second family: the documentation v4 ranges are small)
        if shape == "dual":
            ips.append(f"2001:db8:2::{i:x}")
        spec: dict[str, Any] = {"type": "LoadBalancer"}
        if shape == "local":
            spec["externalTrafficPolicy"] = "Local"
            slices[f"default/s{i}-1"] = {
                "metadata": {"name": f"s{i}-1", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": f"s{i}"}},
                "endpoints": [{"nodeName": node, "conditions": {"ready": True}}
                              for node in rng.sample(sorted(node_objs), 3)]}
        svcs[f"default/s{i}"] = {
            "metadata": {"name": f"s{i}", "namespace": "default",
                         "annotations": {names.ANN_ALLOCATED_FROM: "a"}},
            "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}
    return ClusterView(
        services=svcs, pools={"a": {"metadata": {"name": "a"}}},
        l2_advertisements={"all": {"metadata": {"name": "all"}, "spec": {}}},
        bgp_advertisements={}, peers={}, nodes=node_objs, endpoint_slices=slices)


def best(runs: int, work: Any) -> float:
    fastest = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        work()
        fastest = min(fastest, time.thread_time() - started)
    return fastest


def measure(shape: str, services: int, nodes: int) -> dict[str, Any]:
    view = view_of(shape, services, nodes)
    live = frozenset(view.nodes)
    make_plan_s = best(5, lambda: make_plan(view, NODE, live))
    planner = Planner(NODE)

    def rebuild() -> None:
        planner.everything_changed()
        planner.update(view, live)

    rebuild_s = best(5, rebuild)
    keys = iter(list(view.services)[:5])

    def one_service() -> None:
        planner.service_changed(next(keys))
        assert not planner.update(view, live).full

    incremental_s = best(5, one_service)
    result: dict[str, Any] = {
        "shape": shape, "services": services, "nodes": nodes,
        "fields": len(planner._rolls),
        "owned": sum(duty.mine for duty in planner.plan.l2.values()),
        "make_plan_ms": round(make_plan_s * 1000, 2),
        "rebuild_ms": round(rebuild_s * 1000, 2),
        "one_service_ms": round(incremental_s * 1000, 3)}
    others = sorted(live - {NODE})
    for step in ("leave", "rejoin"):
        fastest, flipped, annotations = float("inf"), [], []
        for other in others[:6]:
            before, after = (live, live - {other}) if step == "leave" else (live - {other}, live)
            planner.update(view, before)
            started = time.thread_time()
            changes = planner.update(view, after)
            fastest = min(fastest, time.thread_time() - started)
            assert changes.re_elected and not changes.full
            flipped.append(len(changes.addresses))
            annotations.append(len(changes.services))
        result[f"{step}_ms"] = round(fastest * 1000, 3)
        result[f"{step}_flipped"] = flipped
        result[f"{step}_services"] = max(annotations)
    assert planner.plan.l2 == make_plan(view, NODE, live).l2
    return result


def held_bytes(shape: str, services: int, nodes: int) -> int:
    view = view_of(shape, services, nodes)
    live = frozenset(view.nodes)
    gc.collect()
    tracemalloc.start()
    try:
        planner = Planner(NODE)
        for members in (live, live - {node_name(nodes // 2)}, live):
            planner.update(view, members)
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--nodes", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--memory", action="store_true",
                        help="also what the planner holds (a separate, traced run)")
    args = parser.parse_args()
    results = [measure(shape, services, nodes) for shape in args.shapes
               for services in args.services for nodes in args.nodes]
    if args.memory:
        for r in results:
            r["planner_mb"] = round(held_bytes(r["shape"], r["services"], r["nodes"]) / 1e6, 1)
    print(json.dumps(results, indent=2))
    print(f"\n{'shape':>8} {'services':>8} {'nodes':>5} {'fields':>6} {'owned':>5} "
          f"{'make_plan':>9} {'rebuild':>8} {'1 Service':>9} {'leave':>7} {'rejoin':>7} "
          f"{'moved (max)':>11} {'MB held':>7}")
    for r in results:
        moved = max(r["leave_flipped"] + r["rejoin_flipped"])
        print(f"{r['shape']:>8} {r['services']:>8} {r['nodes']:>5} {r['fields']:>6} "
              f"{r['owned']:>5} {r['make_plan_ms']:>9} {r['rebuild_ms']:>8} "
              f"{r['one_service_ms']:>9} {r['leave_ms']:>7} {r['rejoin_ms']:>7} {moved:>11} "
              f"{r.get('planner_mb', '-'):>7}")
    print("(ms of thread CPU, best of 5 or 6; moved: addresses this node gained or lost in one "
          "re-election)")


if __name__ == "__main__":
    main()
