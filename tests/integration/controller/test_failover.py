"""Two controllers, one Lease: random kills during churn never duplicate or leak an address."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

from ccm.controller.manager import Controller
from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import LEASES, SERVICES
from devkit.emulator import Emulator
from tests.integration.controller.harness import (
    ROOT,
    create_pool,
    create_service,
    ingress_ips,
    start_controller,
    wait_for,
)
from tests.integration.controller.invariants import DuplicateWatcher


async def _holder(kube: KubeClient) -> str:
    try:
        lease = await kube.get(LEASES, "kube-system", "vipam-controller")
    except ApiError:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


async def test_only_one_replica_writes_and_standby_takes_over_on_release(
    emu: Emulator, kube: KubeClient, kubeconfig: Path
) -> None:
    await create_pool(kube, "p", addresses=["192.0.2.0/28"])
    a = await start_controller(kubeconfig, identity="a")
    b = await start_controller(kubeconfig, identity="b")
    await wait_for(lambda: a.restored.is_set() or b.restored.is_set(), 10, "a leader")
    leader, standby = (a, b) if a.restored.is_set() else (b, a)
    assert not standby.elector.is_leader()
    await create_service(kube, "one")
    await wait_for(lambda: ingress_ips(emu.get_object("v1/services", "default", "one")), 5)
    started = time.monotonic()
    await leader.stop()  # graceful: releases the lease
    await wait_for(lambda: standby.restored.is_set(), 5, "standby takeover")
    takeover = time.monotonic() - started
    assert takeover < standby.settings.retry_period * 3
    await create_service(kube, "two")
    await wait_for(lambda: ingress_ips(emu.get_object("v1/services", "default", "two")), 5)
    assert await _holder(kube) == standby.settings.identity
    await standby.stop()


async def test_random_kills_during_churn_never_duplicate_or_leak(
    emu: Emulator, kube: KubeClient, kubeconfig: Path
) -> None:
    rng = random.Random(7)
    await create_pool(kube, "p", addresses=["198.51.100.0/26"])  # 64 addresses
    replicas: dict[str, Controller | None] = {"a": None, "b": None}

    async def ensure_running() -> None:
        for ident, c in replicas.items():
            if c is None:
                replicas[ident] = await start_controller(kubeconfig, identity=ident)

    await ensure_running()
    alive: set[str] = set()
    serial = 0
    with DuplicateWatcher(emu) as watcher:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            action = rng.random()
            if action < 0.55 and len(alive) < 50:
                name = f"s{serial}"
                serial += 1
                await create_service(kube, name)
                alive.add(name)
            elif action < 0.85 and alive:
                name = rng.choice(sorted(alive))
                await kube.delete(SERVICES, "default", name)
                alive.discard(name)
            else:
                victim = rng.choice(sorted(replicas))
                c = replicas[victim]
                if c is not None:
                    await c.stop(release=rng.random() < 0.5)  # crash or graceful
                    replicas[victim] = None
                await ensure_running()
            await asyncio.sleep(rng.uniform(0, 0.1))

        def settled() -> bool:
            services = [s for s in emu.list_objects("services", "default")
                        if s["spec"].get("type") == "LoadBalancer"]
            names_now = {s["metadata"]["name"] for s in services}
            return names_now == alive and all(ingress_ips(s) for s in services)

        await wait_for(settled, 30, "every remaining Service served, deleted ones gone")
    assert watcher.samples > 100
    assert watcher.violations == []
    shown = [ip for s in emu.list_objects("services", "default") for ip in ingress_ips(s)]
    assert len(shown) == len(set(shown)) == len(alive)

    # none leaked: the leader's own count, written to the pool status, matches what Services show
    def pool_allocated() -> str | None:
        pool = emu.get_object("vipam.io/v1alpha1/ippools", None, "p") or {}
        return pool.get("status", {}).get("ipv4", {}).get("allocated")

    await wait_for(lambda: pool_allocated() == str(len(alive)), 10, "pool count == served")
    for c in replicas.values():
        if c is not None:
            await c.stop()


async def test_killed_controller_process_is_replaced_within_the_lease(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, tmp_path: Path
) -> None:
    """A real `vipam controller` process, SIGKILLed; the in-process standby takes over."""
    await create_pool(kube, "p", addresses=["192.0.2.0/28"])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [
        sys.executable, "-m", "ccm", "controller", "--kubeconfig", str(kubeconfig),
        "--namespace", "kube-system", "--identity", "proc", "--health-port", "0",
        "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5",
        "--log-format", "text",
    ]
    log = (tmp_path / "controller.log").open("wb")
    proc = await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stderr=log)
    standby: Controller | None = None
    try:
        await wait_for(lambda: _holder(kube), 20, "process takes the lease")
        assert await _holder(kube) == "proc"
        standby = await start_controller(kubeconfig, identity="standby")
        await create_service(kube, "before")
        await wait_for(lambda: ingress_ips(emu.get_object("v1/services", "default", "before")), 10)
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        await wait_for(lambda: standby.restored.is_set(), 10, "standby takeover after SIGKILL")
        elapsed = time.monotonic() - killed
        assert elapsed < 3 + 2 * 0.5 + 1.0, elapsed  # lease duration + retry jitter
        await create_service(kube, "after")
        await wait_for(lambda: ingress_ips(emu.get_object("v1/services", "default", "after")), 5)
        assert ingress_ips(emu.get_object("v1/services", "default", "before")) == ("192.0.2.0",)
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
        log.close()
        if standby is not None:
            await standby.stop()
