"""Kubernetes Events about the objects we act on, written off the sync path.

Shaped like client-go's event broadcaster: `emit` only puts the Event on a bounded queue and
returns, so a Service's address never waits for an Event POST; one task of the recorder's own
drains the queue under a token bucket of its own. Repeats are aggregated twice over:

* while an Event is still queued, the same (object, reason, message) only raises its pending
  count (no request at all);
* once written, the same Event within `window` seconds becomes a PATCH of `count` on the
  existing Event instead of a new one, so a Service stuck in a failure loop makes one Event.

Events give way to the work they describe (`busy`: the controller's work queue has Services
waiting or being synced). While the owner is busy, and until it has been idle for `quiet`
seconds, the drain holds Events back, each for at most `max_defer` seconds: on a server short
of CPU every Event POST competes with the writes that bring addresses (a burst of 1,000
Services wrote ~540 Events while it ran), so the addresses go first and their Events follow. The
cap keeps a steady stream of work from starving Events. A repeat of a held-back Event folds into
it, as for any queued Event.

A full queue drops the new Event and counts it (`dropped`), as client-go does: Events are advice
to humans, and a flood of them must neither grow memory nor slow allocations. Nothing here ever
raises into the caller; an Event that cannot be written is logged and counted (`failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ccm.kube.client import JSON, ApiError, KubeApi, TokenBucket
from ccm.kube.leader import micro_time
from ccm.kube.resources import EVENTS

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
Ident = tuple[str, str, str, str]  # (uid, namespace, reason, message)

MAX_QUEUED = 1000  # client-go's broadcaster queue length (maxQueuedEvents)
EVENT_QPS = 50.0
EVENT_BURST = 100
MAX_DEFER = 10.0  # seconds an Event may be held back while its owner is busy
QUIET = 0.5  # seconds the owner must have been idle before held-back Events go
DEFER_POLL = 0.05  # how often a held-back drain looks again


@dataclass
class _Pending:
    involved: JSON  # involvedObject, copied at emit time (the object may change later)
    namespace: str
    event_type: EventType
    reason: str
    message: str
    repeats: int = 1
    queued_at: float = field(default_factory=time.monotonic)


class EventRecorder:
    def __init__(
        self,
        client: KubeApi,
        component: str,
        *,
        host: str | None = None,
        window: float = 600.0,
        allowed: Callable[[], bool] = lambda: True,
        max_tracked: int = 4096,
        max_queued: int = MAX_QUEUED,
        qps: float = EVENT_QPS,
        burst: int = EVENT_BURST,
        busy: Callable[[], bool] = lambda: False,
        max_defer: float = MAX_DEFER,
        quiet: float = QUIET,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host or os.environ.get("NODE_NAME") or os.uname().nodename
        self.window = window
        self.allowed = allowed
        self.busy = busy
        self.max_defer = max_defer
        self.quiet = quiet
        self._busy_at = float("-inf")  # when `busy` last said yes
        self._recent: OrderedDict[Ident, tuple[str, int, float]] = OrderedDict()
        self._max = max_tracked
        self._queue: OrderedDict[Ident, _Pending] = OrderedDict()
        self._max_queued = max(1, max_queued)
        self._bucket = TokenBucket(qps, burst)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._stopped = False
        # counted apart from the sync's writes: requests written, repeats folded, drops, failures
        self.recorded = 0  # Events written (create or count patch)
        self.aggregated = 0  # repeats folded into a queued Event: no request of their own
        self.dropped = 0  # queue full (or recorder stopped)
        self.failed = 0  # the API refused or was unreachable

    # -- producer side: never suspends --------------------------------------------------------

    def emit(
        self, obj: Mapping[str, Any], event_type: EventType, reason: str, message: str
    ) -> None:
        """Queue an Event about `obj`; returns at once."""
        if not self.allowed():
            return
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        message = message[:1024]
        ident = (str(meta.get("uid", "")), namespace, reason, message)
        queued = self._queue.get(ident)
        if queued is not None:
            queued.repeats += 1
            self.aggregated += 1
            return
        if self._stopped or len(self._queue) >= self._max_queued:
            self.dropped += 1
            log.debug("event queue full; dropped %s on %s", reason, meta.get("name"))
            return
        self._queue[ident] = _Pending(
            _involved(obj), namespace, event_type, reason, message
        )
        self._wake.set()
        self._ensure_task()

    async def record(
        self, obj: Mapping[str, Any], event_type: EventType, reason: str, message: str
    ) -> None:
        """`emit` for callers that await; it does not wait for the Event to be written."""
        self.emit(obj, event_type, reason, message)

    @property
    def pending(self) -> int:
        """Events queued or being written."""
        return len(self._queue) + self._in_flight

    # -- consumer side ------------------------------------------------------------------------

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: start() or the next emit inside one starts the drain
            self._task = loop.create_task(self._drain(), name=f"events-{self.component}")

    def start(self) -> None:
        self._stopped = False
        self._ensure_task()

    async def _drain(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._held_back():
                await asyncio.sleep(DEFER_POLL)
                continue
            await self._bucket.take()
            ident, item = self._queue.popitem(last=False)
            self._in_flight += 1
            try:
                await self._write(ident, item)
            finally:
                self._in_flight -= 1

    def _held_back(self) -> bool:
        """The owner is busy, or was within `quiet` s, and the oldest queued Event may wait
        longer. Never once stopping: what is queued then is written at once."""
        if self._stopped:
            return False
        now = time.monotonic()
        if self.busy():
            self._busy_at = now
        oldest = next(iter(self._queue.values()))
        return now - self._busy_at < self.quiet and now - oldest.queued_at < self.max_defer

    async def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop the drain task."""
        self._stopped = True
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            if self._task is None or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._queue:
            self.dropped += len(self._queue)
            self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _write(self, ident: Ident, item: _Pending) -> None:
        previous = self._recent.get(ident)
        try:
            if previous and time.monotonic() - previous[2] < self.window:
                name, count, _ = previous
                try:
                    await self.client.patch(EVENTS, item.namespace, name, {
                        "count": count + item.repeats, "lastTimestamp": _seconds(),
                    })
                    self._remember(ident, (name, count + item.repeats, time.monotonic()))
                    self.recorded += 1
                    return
                except ApiError as exc:
                    if not exc.not_found:
                        raise
                    self._recent.pop(ident, None)  # expired or deleted: write a new one
            created = await self.client.create(EVENTS, item.namespace, self._event(item))
            self._remember(ident, (str(created["metadata"]["name"]), item.repeats,
                                   time.monotonic()))
            self.recorded += 1
        except ApiError as exc:
            self.failed += 1
            log.warning("event %s on %s not recorded: %s", item.reason,
                        item.involved.get("name"), exc)
        except Exception as exc:  # e.g. the owner closed the client: the drain must go on
            self.failed += 1
            log.warning("event %s on %s not recorded: %s: %s", item.reason,
                        item.involved.get("name"), type(exc).__name__, exc)

    def _remember(self, ident: Ident, value: tuple[str, int, float]) -> None:
        self._recent[ident] = value
        self._recent.move_to_end(ident)
        while len(self._recent) > self._max:
            self._recent.popitem(last=False)

    def _event(self, item: _Pending) -> JSON:
        seconds = _seconds()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{item.involved.get('name') or 'object'}.",
                "namespace": item.namespace,
            },
            "involvedObject": item.involved,
            "reason": item.reason,
            "message": item.message,
            "type": item.event_type,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": f"vipam.io/{self.component}",
            "reportingInstance": self.host,
            "firstTimestamp": seconds,
            "lastTimestamp": seconds,
            "eventTime": None,
            "count": item.repeats,
        }


def _involved(obj: Mapping[str, Any]) -> JSON:
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion", "v1"),
        "kind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }


def _seconds() -> str:
    return micro_time()[:19] + "Z"
