"""Allocator benchmark: cost per operation must not grow with allocations or pool size.

Run: ``.venv/bin/python -m bench.allocator`` (or ``python bench/allocator.py``); ``--quick``
uses smaller sizes. Prints one JSON document, then a table.

For an IPv4 /8 and an IPv6 /64 it fills the pool to 1k, 10k and 100k Services and at each
size times a batch of further allocations and their releases; it times the whole 100k fill,
a restore of the 100k snapshot into a fresh allocator (as after a restart), a batch on that
pool fragmented by releasing every other address, and measures the memory kept per
allocation with tracemalloc (in a separate run, since tracing slows everything down).
A bulk restore runs with the cyclic collector off; the full collection that catches up on
what it created is timed with it, so its cost does not land in a later figure instead.

Many pools: the cost of an allocation with 1,000 pools that each select one namespace, against
1 such pool (target: within 2x), and a restore of 100,000 assignments spread over those 1,000
pools (target: under 1.5 s of CPU time).
Times are wall and CPU (process) time: on a shared machine the CPU figure is the steadier, so
both targets are judged on it; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
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


class Clock:
    """Wall and CPU time of a block: the machine is shared, so CPU time is the steadier figure."""

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def _fill(allocator: Allocator, start: int, stop: int, family: Family) -> Clock:
    requests = [_request(index, family) for index in range(start, stop)]
    with Clock() as clock:
        for request in requests:
            allocator.allocate(request)
    return clock


def _batch(allocator: Allocator, base: int, batch: int, family: Family) -> dict[str, float]:
    """Microseconds per allocation and per release for ``batch`` extra Services."""
    requests = [_request(base + 10_000_000 + index, family) for index in range(batch)]
    with Clock() as allocated:
        for request in requests:
            allocator.allocate(request)
    with Clock() as released:
        for request in requests:
            allocator.release(request.key)
    return {
        "allocate_us": allocated.wall / batch * 1e6,
        "allocate_cpu_us": allocated.cpu / batch * 1e6,
        "release_us": released.wall / batch * 1e6,
        "release_cpu_us": released.cpu / batch * 1e6,
    }


def bench_space(cidr: str, family: Family, sizes: list[int], batch: int) -> dict[str, object]:
    gc.collect()
    allocator = Allocator([_pool(cidr)])
    per_size: dict[str, dict[str, float]] = {}
    filled = 0
    fill_wall = fill_cpu = 0.0
    for size in sizes:
        clock = _fill(allocator, filled, size, family)
        fill_wall += clock.wall
        fill_cpu += clock.cpu
        filled = size
        per_size[str(size)] = _batch(allocator, size, batch, family)
    largest = sizes[-1]
    # A restarted controller has the Services, not the old allocator: drop it before timing.
    snapshot = allocator.snapshot()
    del allocator
    gc.collect()
    allocator = Allocator([_pool(cidr)])
    with Clock() as restore:
        report = allocator.restore(snapshot)
        gc.collect()  # the collector work a bulk restore defers is part of its cost
    assert len(report.restored) == largest and not report.conflicts
    del report, snapshot
    # Fragment: release every other Service, then allocate into the holes.
    for index in range(0, largest, 2):
        allocator.release(f"bench/svc-{index}")
    fragmented = _batch(allocator, largest, batch, family)
    small, large = per_size[str(sizes[0])], per_size[str(largest)]
    return {
        "pool": cidr,
        "batch": batch,
        "per_size": per_size,
        "fill_count": largest,
        "fill_total_s": fill_wall,
        "fill_total_cpu_s": fill_cpu,
        "restore_count": largest,
        "restore_s": restore.wall,
        "restore_cpu_s": restore.cpu,
        "fragmented": fragmented,
        "allocate_ratio_largest_vs_smallest": large["allocate_us"] / small["allocate_us"],
        "allocate_cpu_ratio_largest_vs_smallest": large["allocate_cpu_us"]
        / small["allocate_cpu_us"],
    }


def _namespaced_pools(count: int) -> list[Pool]:
    """``count`` /20 pools in 10.0.0.0/8, pool i selecting only namespace ns-i."""
    return [
        parse_pool(f"pool-{i}", {
            "addresses": [f"10.{i // 16}.{(i % 16) * 16}.0/20"],
            "serviceAllocation": {"namespaces": [f"ns-{i}"]},
        })
        for i in range(count)
    ]


def _namespaced_request(index: int, namespaces: int) -> ServiceRequest:
    namespace = f"ns-{index % namespaces}"
    return ServiceRequest(
        key=f"{namespace}/svc-{index}", uid=f"uid-{index}", created=float(index),
        namespace=namespace, families=("IPv4",), ports=PORTS,
    )


def bench_many_pools(batch: int, restore_count: int, rounds: int = 5) -> dict[str, object]:
    """Allocation cost with 1 vs 1,000 namespace-selecting pools; restore across 1,000 pools.

    A batch takes tens of milliseconds, so one load spike on a shared machine can double it:
    the two pool counts are measured in alternating rounds (fresh allocators each time) and
    the median round is reported; the restore, a second or less, is repeated three times into
    fresh allocators and its median reported. Every round is in the JSON.
    """
    pool_sets = {count: _namespaced_pools(count) for count in (1, 1000)}
    rounds_cpu: dict[int, list[float]] = {1: [], 1000: []}
    rounds_wall: dict[int, list[float]] = {1: [], 1000: []}
    for _ in range(rounds):
        for count, pools in pool_sets.items():
            gc.collect()
            allocator = Allocator(pools)
            requests = [_namespaced_request(index, count) for index in range(batch)]
            with Clock() as clock:
                for request in requests:
                    allocator.allocate(request)
            assert all(allocator.lookup(r.key) is not None for r in requests)
            rounds_cpu[count].append(clock.cpu / batch * 1e6)
            rounds_wall[count].append(clock.wall / batch * 1e6)
    per_pools = {
        str(count): {
            "allocate_us": statistics.median(rounds_wall[count]),
            "allocate_cpu_us": statistics.median(rounds_cpu[count]),
            "allocate_cpu_us_rounds": rounds_cpu[count],
        }
        for count in pool_sets
    }
    pools = pool_sets[1000]
    filled = Allocator(pools)
    for index in range(restore_count):
        filled.allocate(_namespaced_request(index, 1000))
    snapshot = filled.snapshot()
    del filled
    restores: list[Clock] = []
    for _ in range(3):
        gc.collect()
        fresh = Allocator(pools)
        with Clock() as restore:
            report = fresh.restore(snapshot)
            gc.collect()  # see bench_space: what the restore defers is counted
        assert len(report.restored) == restore_count and not report.conflicts
        restores.append(restore)
        del fresh, report
    ratio = per_pools["1000"]["allocate_cpu_us"] / per_pools["1"]["allocate_cpu_us"]
    restore_cpu = statistics.median(clock.cpu for clock in restores)
    return {
        "batch": batch,
        "rounds": rounds,
        "per_pool_count": per_pools,
        "allocate_cpu_ratio_1000_vs_1": ratio,
        "allocate_target_met": ratio <= 2.0,
        "restore_pools": 1000,
        "restore_count": restore_count,
        "restore_s": statistics.median(clock.wall for clock in restores),
        "restore_cpu_s": restore_cpu,
        "restore_cpu_s_runs": [clock.cpu for clock in restores],
        "restore_target_met": restore_cpu < 1.5,
    }


def bench_memory(cidr: str, family: Family, count: int) -> dict[str, float]:
    """Bytes kept per allocation: by the allocator alone (requests are built untraced first:
    the controller owns them, the allocator keeps a reference), and with the requests too."""
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
    del allocator, requests
    gc.collect()
    tracemalloc.start()
    with_requests = Allocator([_pool(cidr)])
    start, _ = tracemalloc.get_traced_memory()
    for index in range(count):
        with_requests.allocate(_request(index, family))
    total, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "count": count,
        "bytes_per_allocation": (current - before) / count,
        "peak_bytes_per_allocation": (peak - before) / count,
        "bytes_per_allocation_with_requests": (total - start) / count,
        "peak_mib": peak / 2**20,
    }


def bench_empty_pool_memory() -> dict[str, int]:
    """Bytes an allocator with one empty pool holds: a /30 and a /48 should cost the same.

    Each is built once untraced first, so one-time caches (pydantic, netaddr) are not counted.
    """
    result = {}
    for cidr in ("192.0.2.0/30", "2001:db8::/48"):
        Allocator([_pool(cidr)])
        gc.collect()
        tracemalloc.start()
        allocator = Allocator([_pool(cidr)])
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result[cidr] = current
        del allocator
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 100/1k/10k instead")
    parser.add_argument(
        "--many-pools", action="store_true",
        help="only the many-pools figures (allocation with 1 vs 1,000 pools, restore)",
    )
    args = parser.parse_args(argv)
    sizes = [100, 1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    batch = 200 if args.quick else 2_000
    results: dict[str, object] = {"sizes": sizes, "python": sys.version.split()[0]}
    if not args.many_pools:
        results["spaces"] = {
            name: bench_space(cidr, fam, sizes, batch) for name, (cidr, fam) in SPACES.items()
        }
        results["memory"] = {
            name: bench_memory(cidr, fam, sizes[-1]) for name, (cidr, fam) in SPACES.items()
        }
        results["empty_pool_bytes"] = bench_empty_pool_memory()
    results["many_pools"] = bench_many_pools(batch, 10_000 if args.quick else 100_000)
    results["load_average"] = _load_average()
    print(json.dumps(results, indent=2))
    print()
    if not args.many_pools:
        _table(results, sizes)
    _many_pools_table(results)
    return 0


def _load_average() -> list[float]:
    """1, 5 and 15 minute load averages at the end of the run: what the times shared."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:  # not available on every platform
        return []


def _table(results: dict[str, object], sizes: list[int]) -> None:
    spaces = results["spaces"]
    memory = results["memory"]
    assert isinstance(spaces, dict) and isinstance(memory, dict)
    print("wall/cpu; alloc, release: microseconds per operation; fill, restore: seconds;")
    print("B/alloc: bytes kept per allocation by the allocator / including the requests")
    header = f"{'pool':<9}" + "".join(f"{'alloc@' + _short(s):>14}" for s in sizes)
    header += f"{'release':>12}{'fragm.':>12}{'fill':>12}{'restore':>12}{'B/alloc':>10}"
    print(header)
    for name, data in spaces.items():
        per_size = data["per_size"]
        row = f"{name:<9}" + "".join(
            _pair(per_size[str(s)]["allocate_us"], per_size[str(s)]["allocate_cpu_us"], 14)
            for s in sizes
        )
        last = per_size[str(sizes[-1])]
        row += _pair(last["release_us"], last["release_cpu_us"], 12)
        row += _pair(data["fragmented"]["allocate_us"], data["fragmented"]["allocate_cpu_us"], 12)
        row += _pair(data["fill_total_s"], data["fill_total_cpu_s"], 12)
        row += _pair(data["restore_s"], data["restore_cpu_s"], 12)
        kept = memory[name]
        alone, total = kept["bytes_per_allocation"], kept["bytes_per_allocation_with_requests"]
        row += f"{alone:.0f}/{total:.0f}".rjust(10)
        print(row)
    print(f"empty pool bytes: {results['empty_pool_bytes']}")
    print()


def _many_pools_table(results: dict[str, object]) -> None:
    many = results["many_pools"]
    assert isinstance(many, dict)
    print("many pools (each selects one namespace): alloc wall/cpu us per operation, "
          f"median of {many['rounds']} alternating rounds")
    print(f"{'pools':>6}{'alloc':>16}")
    for count, figures in many["per_pool_count"].items():
        print(f"{count:>6}" + _pair(figures["allocate_us"], figures["allocate_cpu_us"], 16))
    print(f"cpu ratio 1000 vs 1: {many['allocate_cpu_ratio_1000_vs_1']:.2f} (target <= 2: "
          f"{'met' if many['allocate_target_met'] else 'MISSED'})")
    print(f"restore {many['restore_count']} assignments over {many['restore_pools']} pools "
          f"(median of 3): "
          f"{many['restore_s']:.2f}/{many['restore_cpu_s']:.2f} s (target < 1.5 s CPU: "
          f"{'met' if many['restore_target_met'] else 'MISSED'})")
    print(f"load average at the end (1/5/15 min): {results['load_average']}")


def _pair(wall: float, cpu: float, width: int) -> str:
    return f"{wall:.2f}/{cpu:.2f}".rjust(width)


def _short(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 else str(size)


if __name__ == "__main__":
    raise SystemExit(main())
