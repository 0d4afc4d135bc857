"""Watch fan-out and the bounded event history behind resourceVersion semantics.

The history is kept per resource (like the apiserver's watch cache); once an event has been
evicted, or `expire()` was called, resuming from an older resourceVersion yields 410 Expired,
which is exactly the case a controller's relist logic exists for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devkit.emulator.errors import gone

StorageKey = tuple[str, str]
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


# What a watcher's queue carries: an (event type, object) pair, or a control word.
GRACEFUL = "close"
ABORT = "abort"
QueueItem = tuple[str, dict[str, Any]] | str


@dataclass(eq=False)
class Watcher:
    key: StorageKey
    accept: Predicate
    since: int = 0  # changes at or below this version were already seen by the client
    queue: asyncio.Queue[QueueItem] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        """Queue the change as this watcher sees it: objects entering or leaving its selector
        arrive as ADDED or DELETED, as from the apiserver's watch cache."""
        if change.rv <= self.since:
            return
        now = self.accept(change.obj)
        before = change.old is not None and self.accept(change.old)
        if change.type == "MODIFIED":
            if now and before:
                self.queue.put_nowait(("MODIFIED", change.obj))
            elif now:
                self.queue.put_nowait(("ADDED", change.obj))
            elif before and change.old is not None:
                gone_obj = {**change.old, "metadata": {**change.old["metadata"],
                                                        "resourceVersion": str(change.rv)}}
                self.queue.put_nowait(("DELETED", gone_obj))
        elif now:
            self.queue.put_nowait((change.type, change.obj))


class WatchHub:
    def __init__(self, history_size: int) -> None:
        self.history_size = history_size
        self._history: dict[StorageKey, deque[Change]] = {}
        self._floor: dict[StorageKey, int] = {}  # resuming below this RV gets 410
        self._global_floor = 0
        self._watchers: set[Watcher] = set()

    def record(self, key: StorageKey, change: Change) -> None:
        history = self._history.setdefault(key, deque())
        if len(history) >= self.history_size:
            evicted = history.popleft()
            self._floor[key] = evicted.rv
        history.append(change)
        for watcher in self._watchers:
            if watcher.key == key:
                watcher.offer(change)

    def subscribe(self, key: StorageKey, accept: Predicate, since: int | None) -> Watcher:
        """Register a watcher; with `since`, replay the retained history after that RV first.

        Replay and registration happen without yielding to the loop, so no change can fall
        between them.
        """
        watcher = Watcher(key, accept, since or 0)
        if since is not None:
            floor = max(self._floor.get(key, 0), self._global_floor)
            if since < floor:
                raise gone(f"too old resource version: {since} ({floor})")
            for change in self._history.get(key, ()):
                watcher.offer(change)
        self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def expire(self, current_rv: int) -> None:
        """Forget all history: any resourceVersion below `current_rv` is now too old."""
        self._global_floor = current_rv
        self._history.clear()

    def too_old(self, key: StorageKey, rv: int) -> bool:
        return rv < max(self._floor.get(key, 0), self._global_floor)

    def close_all(self, how: str) -> int:
        """End every watch: GRACEFUL finishes the chunked stream, ABORT drops the connection."""
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.queue.put_nowait(how)
        self._watchers.clear()
        return len(watchers)

    @property
    def open_watches(self) -> int:
        return len(self._watchers)
