"""A work queue of object keys with client-go's guarantees.

* A key is processed by one worker at a time; a key added while it is being processed is queued
  again once that worker is done, so no change is lost and no key runs twice at once.
* A key queued several times before a worker takes it runs once (changes coalesce).
* Failures retry with per-key exponential backoff and jitter (milliseconds up to minutes),
  reset by `forget` after a success.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ccm.kube.backoff import Backoff


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._backoffs: dict[str, Backoff] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._base = base_delay
        self._max = max_delay

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether a worker is processing a key right now."""
        return bool(self._processing)

    @property
    def depth(self) -> int:
        return len(self._queue) + len(self._timers)

    def add(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    def retry(self, key: str, delay: float | None = None) -> float:
        """Queue `key` again after its backoff (or `delay`: a Retry-After); returns the wait."""
        backoff = self._backoffs.setdefault(key, Backoff(self._base, self._max))
        wait = backoff.next() if delay is None else delay
        self.add_after(key, wait)
        return wait

    def forget(self, key: str) -> None:
        self._backoffs.pop(key, None)

    def failures(self, key: str) -> int:
        backoff = self._backoffs.get(key)
        return backoff.failures if backoff else 0

    async def get(self) -> str:
        while not self._queue:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif self._queue:
                    self._wake()  # pass the wake-up we consumed to another worker
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
