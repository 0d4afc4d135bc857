"""Serving one watch over HTTP: the initial state or history replay, live changes, bookmarks,
timeoutSeconds, and the abrupt or graceful ends that fault injection asks for.

Like the apiserver, a watch that starts too far back is answered 200 with a single ERROR event
carrying a 410 Status, not with an HTTP error.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from devkit.emulator import conversion, tables
from devkit.emulator.errors import ApiError, bad_request
from devkit.emulator.resources import ResourceType
from devkit.emulator.routing import ResourceRoute
from devkit.emulator.store import Store
from devkit.emulator.watch import ABORT, GRACEFUL, Predicate, WatchHub

TRUE_WORDS = ("true", "1", "True", "TRUE", "yes")
INITIAL_EVENTS_END = "INITIAL_EVENTS_END"


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def _start_version(text: str) -> int | None:
    """None for "" and "0" (send the current state first), else the exact version."""
    if text in ("", "0"):
        return None
    if not text.isdigit():
        raise bad_request(f"invalid resourceVersion {text!r}")
    return int(text)


async def serve_watch(request: web.Request, route: ResourceRoute, accept: Predicate,
                      store: Store, hub: WatchHub, bookmark_interval: float
                      ) -> web.StreamResponse:
    rt, query = route.rt, request.query
    if route.name is not None:  # .../kind/name?watch=1 or legacy /watch/.../kind/name
        by_name = accept
        accept = lambda o: by_name(o) and o["metadata"]["name"] == route.name  # noqa: E731
    since = _start_version(query.get("resourceVersion", ""))
    # The streaming list (kubectl 1.3x's watch-list): the current state as ADDED events, then a
    # bookmark annotated k8s.io/initial-events-end, then live changes.
    initial_events = query.get("sendInitialEvents", "") in TRUE_WORDS
    if initial_events:
        since = None
    stream = _Stream(request, rt, store, bookmark_interval,
                     as_table=tables.wants_table(request.headers.get("Accept", "")),
                     include=query.get("includeObject", "Metadata"),
                     bookmarks=query.get("allowWatchBookmarks", "") in TRUE_WORDS)
    lifetime = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    try:
        watcher = hub.subscribe(rt.storage_key, accept, since)
    except ApiError as error:
        await response.prepare(request)
        await response.write(_line({"type": "ERROR", "object": error.status()}))
        await response.write_eof()
        return response
    if since is None:
        for obj in store.select(rt, accept):
            watcher.queue.put_nowait(("ADDED", obj))
    if initial_events:
        watcher.queue.put_nowait(
            (INITIAL_EVENTS_END, {"metadata": {"resourceVersion": str(store.rv)}}))
    try:
        await response.prepare(request)
        await stream.pump(response, watcher.queue, lifetime)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(watcher)
    return response


class _Stream:
    def __init__(self, request: web.Request, rt: ResourceType, store: Store,
                 bookmark_interval: float, *, as_table: bool, include: str,
                 bookmarks: bool) -> None:
        self.request = request
        self.rt = rt
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.as_table = as_table
        self.include = include
        self.bookmarks = bookmarks

    async def pump(self, response: web.StreamResponse, queue: asyncio.Queue[Any],
                   lifetime: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + lifetime if lifetime else None
        next_bookmark = loop.time() + self.bookmark_interval
        while True:
            now = loop.time()
            wait = 1.0  # wake up now and then to notice clients that went away
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self.bookmarks:
                wait = min(wait, next_bookmark - now)
            try:
                item = await asyncio.wait_for(queue.get(), max(wait, 0.0))
            except TimeoutError:
                item = None
            if item == ABORT:
                if self.request.transport is not None:
                    self.request.transport.abort()
                raise ConnectionResetError("watch dropped by fault injection")
            if item == GRACEFUL:
                break
            transport = self.request.transport
            if transport is None or transport.is_closing():
                return
            if item is not None and item[0] == INITIAL_EVENTS_END:
                bookmark = self._bookmark()  # at the version of the state just sent
                bookmark["object"]["metadata"]["resourceVersion"] = (
                    item[1]["metadata"]["resourceVersion"])
                bookmark["object"]["metadata"]["annotations"] = {
                    "k8s.io/initial-events-end": "true"}
                await response.write(_line(bookmark))
                continue
            if item is not None:
                kind, obj = item
                await response.write(_line({"type": kind, "object": self._render(obj)}))
                continue
            now = loop.time()
            if deadline is not None and now >= deadline:
                if self.bookmarks:
                    await response.write(_line(self._bookmark()))
                break
            if self.bookmarks and now >= next_bookmark:
                await response.write(_line(self._bookmark()))
                next_bookmark = now + self.bookmark_interval
        await response.write_eof()

    def _render(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = conversion.served(obj, self.rt)
        if self.as_table:
            return tables.to_table(self.rt, [obj], obj["metadata"]["resourceVersion"],
                                   self.include)
        return obj

    def _bookmark(self) -> dict[str, Any]:
        """Sent only when the queue is empty, so every change up to now was delivered: a safe
        version to resume from."""
        return {"type": "BOOKMARK", "object": {
            "kind": self.rt.kind, "apiVersion": self.rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)}}}
