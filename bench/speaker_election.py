"""Rendezvous election benchmark: the cost of deciding who announces what, and how much moves.

Run: ``.venv/bin/python -m bench.speaker_election`` (``--quick`` for smaller sizes). Prints one
JSON document, then a table.

For 1k and 10k addresses over 3, 10 and 100 nodes it times a full ``owned_by`` pass for one
node (what each speaker recomputes whenever Services, nodes or endpoints change), cold (name
hashes not cached yet, as at start-up) and warm (best of 5), and reports the
spread (largest and smallest share relative to the mean), and the fraction of addresses that
change owner when one node leaves (ideal: 1/nodes; anything more is needless re-announcing).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccm.speaker.election import _digest, owned_by, owner


def _addresses(count: int) -> list[str]:
    """The IPv4 documentation ranges (768 addresses), the rest from 2001:db8::/64."""
    v4 = [
        str(address)
        for network in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
        for address in ipaddress.ip_network(network)
    ][: count // 2]
    v6 = ipaddress.ip_network("2001:db8::/64")
    return v4 + [str(v6[i]) for i in range(count - len(v4))]


def _timed(function: Callable[..., object], *arguments: object) -> float:
    started = time.perf_counter()
    function(*arguments)
    return time.perf_counter() - started


def measure(address_count: int, node_count: int) -> dict[str, float | int]:
    addresses = _addresses(address_count)
    nodes = [f"node-{i:03d}" for i in range(node_count)]
    _digest.cache_clear()
    started = time.perf_counter()
    mine = owned_by(nodes[0], addresses, nodes)
    cold_seconds = time.perf_counter() - started
    pass_seconds = min(_timed(owned_by, nodes[0], addresses, nodes) for _ in range(5))

    owners = {address: owner(address, nodes) for address in addresses}
    counts = Counter(owners.values())
    mean = address_count / node_count
    leaving = nodes[-1]
    remaining = nodes[:-1]
    moved = sum(1 for address in addresses if owner(address, remaining) != owners[address])
    return {
        "addresses": address_count,
        "nodes": node_count,
        "owned_by_cold_ms": round(cold_seconds * 1000, 2),
        "owned_by_ms": round(pass_seconds * 1000, 2),
        "per_address_us": round(pass_seconds / address_count * 1e6, 2),
        "node0_share": len(mine),
        "max_share_vs_mean": round(max(counts[n] for n in nodes) / mean, 3),
        "min_share_vs_mean": round(min(counts[n] for n in nodes) / mean, 3),
        "moved_when_one_leaves": round(moved / address_count, 4),
        "ideal_moved": round(counts[leaving] / address_count, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [1000, 10_000]
    results = [measure(a, n) for a in sizes for n in (3, 10, 100)]
    print(json.dumps({"benchmark": "speaker_election", "python": sys.version.split()[0],
                      "results": results}, indent=2))
    header = f"{'addresses':>9} {'nodes':>5} {'cold ms':>8} {'owned_by ms':>11} {'us/addr':>7} " \
             f"{'max/mean':>8} {'min/mean':>8} {'moved':>7} {'ideal':>7}"
    print(header)
    for r in results:
        print(f"{r['addresses']:>9} {r['nodes']:>5} {r['owned_by_cold_ms']:>8} "
              f"{r['owned_by_ms']:>11} "
              f"{r['per_address_us']:>7} {r['max_share_vs_mean']:>8} {r['min_share_vs_mean']:>8} "
              f"{r['moved_when_one_leaves']:>7} {r['ideal_moved']:>7}")


if __name__ == "__main__":
    main()
