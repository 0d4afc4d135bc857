"""Allocator benchmark: cost per operation must not grow with allocations or pool size.

Run: ``.venv/bin/python -m bench.allocator`` (or ``python bench/allocator.py``); ``--quick``
uses smaller sizes. Prints one JSON document, then a table.

For an IPv4 /8 and an IPv6 /64 it fills the pool to 1k, 10k and 100k Services and at each
size times a batch of further allocations and their releases; it times the whole 100k fill,
a restore of the 100k snapshot into a fresh allocator, a batch on a pool fragmented by
releasing every other address, and measures the memory the allocator holds per allocation
with tracemalloc (in a separate run, since tracing slows everything down).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pools.addresses import Family
from pools.allocator import Allocator, ServiceRequest
from pools.model import Pool, parse_pool

SPACES: dict[str, tuple[str, Family]] = {
    "IPv4 /8": ("10.0.0.0/8", "IPv4"),
    "IPv6 /64": ("2001:db8::/64", "IPv6"),
}
PORTS = frozenset({("TCP", 80)})


def _request(index: int, family: Family) -> ServiceRequest:
    return ServiceRequest(
        key=f"bench/svc-{index}",
        uid=f"uid-{index}",
        created=float(index),
        namespace="bench",
        families=(family,),
        ports=PORTS,
    )


def _pool(cidr: str) -> Pool:
    return parse_pool("bench", {"addresses": [cidr]})


def _fill(allocator: Allocator, start: int, stop: int, family: Family) -> float:
    requests = [_request(index, family) for index in range(start, stop)]
    began = time.perf_counter()
    for request in requests:
        allocator.allocate(request)
    return time.perf_counter() - began


def _batch(allocator: Allocator, base: int, batch: int, family: Family) -> tuple[float, float]:
    """Seconds per allocation and per release for ``batch`` extra Services."""
    requests = [_request(base + 10_000_000 + index, family) for index in range(batch)]
    began = time.perf_counter()
    for request in requests:
        allocator.allocate(request)
    allocated = time.perf_counter() - began
    began = time.perf_counter()
    for request in requests:
        allocator.release(request.key)
    released = time.perf_counter() - began
    return allocated / batch, released / batch


def bench_space(cidr: str, family: Family, sizes: list[int], batch: int) -> dict[str, object]:
    gc.collect()
    allocator = Allocator([_pool(cidr)])
    per_size: dict[str, dict[str, float]] = {}
    filled = 0
    fill_seconds = 0.0
    for size in sizes:
        fill_seconds += _fill(allocator, filled, size, family)
        filled = size
        allocate_each, release_each = _batch(allocator, size, batch, family)
        per_size[str(size)] = {"allocate_us": allocate_each * 1e6, "release_us": release_each * 1e6}
    largest = sizes[-1]
    snapshot = allocator.snapshot()
    fresh = Allocator([_pool(cidr)])
    began = time.perf_counter()
    report = fresh.restore(snapshot)
    restore_seconds = time.perf_counter() - began
    assert len(report.restored) == largest and not report.conflicts
    # Fragment: release every other Service, then allocate into the holes.
    for index in range(0, largest, 2):
        allocator.release(f"bench/svc-{index}")
    fragmented_allocate, fragmented_release = _batch(allocator, largest, batch, family)
    ratio = per_size[str(largest)]["allocate_us"] / per_size[str(sizes[0])]["allocate_us"]
    return {
        "pool": cidr,
        "batch": batch,
        "per_size": per_size,
        "fill_total_s": fill_seconds,
        "fill_count": largest,
        "restore_s": restore_seconds,
        "restore_count": largest,
        "fragmented_allocate_us": fragmented_allocate * 1e6,
        "fragmented_release_us": fragmented_release * 1e6,
        "allocate_ratio_largest_vs_smallest": ratio,
    }


def bench_memory(cidr: str, family: Family, count: int) -> dict[str, float]:
    """Bytes the allocator keeps per allocation (requests built beforehand are not counted,
    since the controller owns them anyway; the allocator keeps a reference to each)."""
    requests = [_request(index, family) for index in range(count)]
    gc.collect()
    tracemalloc.start()
    allocator = Allocator([_pool(cidr)])
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    for request in requests:
        allocator.allocate(request)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    empty = Allocator([_pool(cidr)])
    del empty
    return {
        "count": count,
        "bytes_per_allocation": (current - before) / count,
        "peak_bytes_per_allocation": (peak - before) / count,
        "peak_mib": peak / 2**20,
    }


def bench_empty_pool_memory() -> dict[str, int]:
    """Bytes an allocator with one empty pool holds: a /30 and a /48 should cost the same."""
    result = {}
    for cidr in ("192.0.2.0/30", "2001:db8::/48"):
        gc.collect()
        tracemalloc.start()
        allocator = Allocator([_pool(cidr)])
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result[cidr] = current
        del allocator
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 100/1k/10k instead")
    args = parser.parse_args(argv)
    sizes = [100, 1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    batch = 200 if args.quick else 2_000
    results: dict[str, object] = {"sizes": sizes, "python": sys.version.split()[0]}
    spaces = {name: bench_space(cidr, fam, sizes, batch) for name, (cidr, fam) in SPACES.items()}
    results["spaces"] = spaces
    results["memory"] = {
        name: bench_memory(cidr, fam, sizes[-1]) for name, (cidr, fam) in SPACES.items()
    }
    results["empty_pool_bytes"] = bench_empty_pool_memory()
    print(json.dumps(results, indent=2))
    print()
    _table(results, sizes)
    return 0


def _table(results: dict[str, object], sizes: list[int]) -> None:
    spaces = results["spaces"]
    memory = results["memory"]
    assert isinstance(spaces, dict) and isinstance(memory, dict)
    header = f"{'pool':<10}" + "".join(f"{'alloc@' + _short(s):>12}" for s in sizes)
    header += f"{'release':>10}{'fragm.':>9}{'fill':>9}{'restore':>9}{'B/alloc':>9}"
    print(header)
    for name, data in spaces.items():
        per_size = data["per_size"]
        row = f"{name:<10}" + "".join(f"{per_size[str(s)]['allocate_us']:>10.1f}us" for s in sizes)
        row += f"{per_size[str(sizes[-1])]['release_us']:>8.1f}us"
        row += f"{data['fragmented_allocate_us']:>7.1f}us"
        row += f"{data['fill_total_s']:>8.2f}s{data['restore_s']:>8.2f}s"
        row += f"{memory[name]['bytes_per_allocation']:>9.0f}"
        print(row)
    print(f"empty pool bytes: {results['empty_pool_bytes']}")


def _short(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 else str(size)


if __name__ == "__main__":
    raise SystemExit(main())
