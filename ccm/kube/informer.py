"""List+watch cache of one resource, the way client-go's reflector keeps one.

The cache is replaced atomically by every (re)list and then kept current by the watch. Watches
ask for bookmarks so a quiet resource still advances its resourceVersion; a 410 Gone (history
expired) triggers a relist whose diff against the old cache reports every change that happened
in the gap, deletions included. While a gap is open `fresh` is cleared so that callers can avoid
acting on a cache that is known to miss events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, MutableMapping

from ccm.kube.backoff import Backoff
from ccm.kube.client import JSON, ApiError, KubeApi
from ccm.kube.packed import PackedCache
from ccm.kube.resources import Resource, object_key

log = logging.getLogger(__name__)

ChangeHandler = Callable[[str, JSON | None, JSON | None], None]
"""(key, old object or None, new object or None); called for every change, in order."""

Transform = Callable[[JSON], JSON]
"""Applied to every object as it enters the cache (client-go's SetTransform): keep only what
is read. It may change the object in place; it must keep metadata name/namespace/
resourceVersion."""


class Informer:
    def __init__(
        self,
        client: KubeApi,
        resource: Resource,
        on_change: ChangeHandler | None = None,
        *,
        namespace: str | None = None,
        watch_timeout: int = 300,
        transform: Transform | None = None,
        cache: MutableMapping[str, JSON] | None = None,
    ) -> None:
        self.client = client
        self.transform = transform
        self.resource = resource
        self.namespace = namespace
        self.watch_timeout = watch_timeout
        self.handlers: list[ChangeHandler] = [on_change] if on_change else []
        # any mapping: the controller keeps Services packed (ccm/kube/packed.py)
        self.cache: MutableMapping[str, JSON] = {} if cache is None else cache
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.fresh = asyncio.Event()
        self.last_progress = time.monotonic()
        self.relists = 0
        self.last_error: str | None = None

    def get(self, key: str) -> JSON | None:
        return self.cache.get(key)

    def add_handler(self, handler: ChangeHandler) -> None:
        self.handlers.append(handler)

    def _emit(self, key: str, old: JSON | None, new: JSON | None) -> None:
        for handler in self.handlers:
            handler(key, old, new)

    async def relist(self) -> None:
        # each item is transformed and stored as its page arrives: the whole list never
        # exists at once, untrimmed or trimmed (with a packed cache, not even unpacked)
        staged = self._empty()

        def enter(item: JSON) -> JSON:
            obj = self.transform(item) if self.transform is not None else item
            staged[object_key(obj)] = obj
            return _LISTED

        listing = await self.client.list_all(self.resource, self.namespace, transform=enter)
        version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        del listing
        changes: list[tuple[str, JSON | None, JSON | None]] = []
        for key in staged:
            before = self.cache.get(key)
            after = staged[key]
            if before is None or _rv(before) != _rv(after):
                changes.append((key, before, after))
        changes.extend((key, self.cache[key], None) for key in self.cache if key not in staged)
        # mutate in place: other components hold a reference to this mapping
        if isinstance(self.cache, PackedCache) and isinstance(staged, PackedCache):
            self.cache.take(staged)
        else:
            self.cache.clear()
            self.cache.update(staged)
        self.resource_version = version
        self.relists += 1
        for key, was, now in changes:
            self._emit(key, was, now)
        self.last_progress = time.monotonic()
        self.synced.set()
        self.fresh.set()

    def _empty(self) -> MutableMapping[str, JSON]:
        return PackedCache() if isinstance(self.cache, PackedCache) else {}

    def _apply(self, event: JSON) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "BOOKMARK":
            self.resource_version = rv or self.resource_version
            return
        key = object_key(obj)
        old = self.cache.get(key)
        if kind == "DELETED":
            self.cache.pop(key, None)
            self._emit(key, old, None)
        elif kind in {"ADDED", "MODIFIED"}:
            if self.transform is not None:
                obj = self.transform(obj)
            self.cache[key] = obj
            self._emit(key, old, obj)
        if rv:
            self.resource_version = rv

    async def run(self) -> None:
        """List, then watch forever; relist on 410, reconnect with backoff on anything else."""
        backoff = Backoff(base=0.2, cap=30.0)
        need_list = True
        while True:
            try:
                if need_list:
                    await self.relist()
                    need_list = False
                async for event in self.client.watch(
                    self.resource, self.resource_version, namespace=self.namespace,
                    timeout_seconds=self.watch_timeout,
                ):
                    self._apply(event)
                    self.last_progress = time.monotonic()
                    backoff.reset()
                # server closed the stream at its timeout: a normal end, watch again
                self.last_progress = time.monotonic()
            except ApiError as exc:
                self.last_error = str(exc)
                if exc.gone:
                    log.info("watch of %s expired (410); relisting", self.resource)
                    self.fresh.clear()
                    need_list = True
                    continue
                delay = exc.retry_after or backoff.next()
                log.warning("watch of %s failed: %s; retrying in %.2fs", self.resource, exc, delay)
                await asyncio.sleep(delay)
            except Exception as exc:
                # not an ApiError: e.g. json.JSONDecodeError from a stream closed in the middle
                # of a line; the loop must go on, or the cache silently stops following
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff.next()
                log.warning("watch of %s broke: %s; retrying in %.2fs", self.resource,
                            self.last_error, delay)
                await asyncio.sleep(delay)


_LISTED: JSON = {}  # what a listed item leaves in the listing: it is in `staged` already


def _rv(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
