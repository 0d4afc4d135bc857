"""A watcher that samples the emulator's Services and records every invariant violation."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from ccm.contract import names
from devkit.emulator import Emulator
from tests.integration.controller.harness import ingress_ips


class DuplicateWatcher:
    """Fails if two Services ever show one address without sharing the same key."""

    def __init__(self, emu: Emulator, interval: float = 0.01) -> None:
        self.emu = emu
        self.interval = interval
        self.violations: list[str] = []
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def check_once(self) -> None:
        holders: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for svc in self.emu.list_objects("services"):
            key = (svc["metadata"].get("annotations") or {}).get(names.ANN_SHARING_KEY)
            for ip in ingress_ips(svc):
                holders[ip].append((svc["metadata"]["name"], key))
        for ip, owners in holders.items():
            keys = {k for _, k in owners}
            if len(owners) > 1 and (None in keys or len(keys) > 1):
                self.violations.append(f"{ip} held by {owners}")
        self.samples += 1

    async def _run(self) -> None:
        # sampled in a thread: a blocking read must not stall the controllers on this loop
        while True:
            await asyncio.to_thread(self.check_once)
            await asyncio.sleep(self.interval)

    def __enter__(self) -> DuplicateWatcher:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.check_once()
