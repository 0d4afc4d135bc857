"""The Informer (list, then watch) on the in-memory client: order, transform, bookmarks, the 410
gap and its relist diff, and retries after other errors.

Requests are counted on tests/fakekube.py; nothing here infers a request from a resourceVersion.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import pytest

from ccm.kube.client import JSON, ApiError
from ccm.kube.informer import Informer, Transform
from ccm.kube.packed import PackedCache
from ccm.kube.resources import NAMESPACES, SERVICES
from tests.fakekube import FakeKube

Change = tuple[str, str | None, str | None]  # (key, old data["v"] or None, new data["v"] or None)

# the controller keeps Services packed (ccm/kube/packed.py); the other caches are plain dicts
CACHES = pytest.mark.parametrize("cache", [dict, PackedCache], ids=["dict", "packed"])


def body(name: str, value: str, namespace: str = "default") -> JSON:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {"v": value}},
            "spec": {"type": "ClusterIP"}}


async def put(kube: FakeKube, name: str, value: str) -> None:
    stored = kube.stored(SERVICES, "default", name)
    stored["metadata"]["labels"] = {"v": value}
    await kube.replace(SERVICES, "default", name, stored)


def _v(obj: JSON | None) -> str | None:
    return None if obj is None else obj["metadata"]["labels"]["v"]


class Seen:
    """A change handler that keeps what it was called with, and whether the cache was fresh."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.changes: list[Change] = []
        self.objects: list[tuple[JSON | None, JSON | None]] = []
        self.fresh_at_call: list[bool] = []
        informer.add_handler(self)

    def __call__(self, key: str, old: JSON | None, new: JSON | None) -> None:
        self.changes.append((key, _v(old), _v(new)))
        self.objects.append((old, new))
        self.fresh_at_call.append(self.informer.fresh.is_set())

    def take(self) -> list[Change]:
        changes, self.changes = self.changes, []
        return changes


async def until(probe: Callable[[], Any], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[Informer]:
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(5):
            await informer.synced.wait()
        yield informer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@CACHES
async def test_list_then_watch_reports_every_change_in_order_with_old_and_new(
    cache: Callable[[], MutableMapping[str, JSON]],
) -> None:
    kube = FakeKube()
    await kube.create(SERVICES, "default", body("a", "a1"))
    await kube.create(SERVICES, "default", body("b", "b1"))
    informer = Informer(kube, SERVICES, cache=cache())
    seen = Seen(informer)
    async with running(informer):
        assert seen.take() == [("default/a", None, "a1"), ("default/b", None, "b1")]
        assert informer.resource_version == str(kube.last_rv)
        # made without yielding: the watch must deliver all of them, in this order
        await kube.create(SERVICES, "default", body("c", "c1"))
        await put(kube, "a", "a2")
        await kube.delete(SERVICES, "default", "b")
        await put(kube, "a", "a3")
        await kube.delete(SERVICES, "default", "c")
        await until(lambda: len(seen.changes) == 5, "five watch events")
        assert seen.take() == [
            ("default/c", None, "c1"),
            ("default/a", "a1", "a2"),
            ("default/b", "b1", None),
            ("default/a", "a2", "a3"),
            ("default/c", "c1", None),
        ]
        assert set(informer.cache) == {"default/a"}
        assert informer.get("default/a") == kube.stored(SERVICES, "default", "a")
        assert informer.resource_version == str(kube.last_rv)
    assert kube.requests[("list", "services")] == 1
    assert kube.requests[("watch", "services")] == 1
    assert informer.relists == 1


async def test_a_slow_list_leaves_the_cache_unsynced_until_it_answers() -> None:
    kube = FakeKube()
    await kube.create(SERVICES, "default", body("a", "a1"))
    kube.latency["services"] = 0.4  # a slow server: every services request takes 0.4 s
    informer = Informer(kube, SERVICES)
    seen = Seen(informer)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.sleep(0.2)
        assert not informer.synced.is_set() and not informer.fresh.is_set()
        assert informer.cache == {} and seen.changes == []
        await until(informer.synced.is_set, "the slow list")
        assert informer.fresh.is_set()
        assert seen.take() == [("default/a", None, "a1")]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_transform_is_applied_on_list_and_on_watch() -> None:
    kube = FakeKube()
    await kube.create(SERVICES, "default", body("listed", "l1"))

    def trim(obj: JSON) -> JSON:
        obj.pop("spec", None)
        obj["metadata"]["annotations"] = {"trimmed": "yes"}
        return obj

    transform: Transform = trim
    informer = Informer(kube, SERVICES, transform=transform)
    seen = Seen(informer)
    async with running(informer):
        await kube.create(SERVICES, "default", body("watched", "w1"))
        await put(kube, "listed", "l2")
        await until(lambda: len(seen.objects) == 3, "list + two watch events")
    for key in ("default/listed", "default/watched"):
        cached = informer.cache[key]
        assert "spec" not in cached, key
        assert cached["metadata"]["annotations"] == {"trimmed": "yes"}, key
    for old, new in seen.objects:
        for obj in (old, new):
            assert obj is None or ("spec" not in obj and obj["metadata"]["annotations"])
    # the server still has the whole object: the transform works on the cache only
    assert kube.stored(SERVICES, "default", "watched")["spec"] == {"type": "ClusterIP"}


async def test_a_bookmark_advances_the_resource_version_so_a_rewatch_needs_no_relist() -> None:
    kube = FakeKube()
    await kube.create(SERVICES, "default", body("a", "a1"))
    informer = Informer(kube, SERVICES)
    seen = Seen(informer)
    async with running(informer):
        listed_at = informer.resource_version
        for index in range(3):  # another resource moves on; services stay quiet
            await kube.create(NAMESPACES, None, {"metadata": {"name": f"ns{index}"}})
        rv = kube.bookmark(SERVICES)
        await until(lambda: informer.resource_version == str(rv), "the bookmark")
        assert int(informer.resource_version) > int(listed_at)
        # history before the bookmark is gone, and the stream breaks: a watch from the
        # bookmarked version is still valid, a watch from the listed one would get 410
        kube.compact()
        kube.drop_watches()
        await until(lambda: kube.requests[("watch", "services")] >= 2, "the re-watch")
        await kube.create(SERVICES, "default", body("b", "b1"))
        await until(lambda: "default/b" in informer.cache, "b through the new watch")
        assert informer.relists == 1
        assert kube.requests[("list", "services")] == 1
        assert seen.take() == [("default/a", None, "a1"), ("default/b", None, "b1")]


async def test_a_dropped_stream_is_resumed_from_the_last_version_without_a_relist() -> None:
    kube = FakeKube()
    informer = Informer(kube, SERVICES)
    seen = Seen(informer)
    async with running(informer):
        await kube.create(SERVICES, "default", body("a", "a1"))
        await until(lambda: "default/a" in informer.cache, "a")
        kube.drop_watches(ApiError(0, "TransportError", "watch broken: connection reset"))
        await put(kube, "a", "a2")  # while the stream is broken
        await kube.create(SERVICES, "default", body("b", "b1"))
        await until(lambda: "default/b" in informer.cache, "b after the reconnect")
        assert informer.relists == 1
        assert kube.requests[("watch", "services")] == 2
        assert seen.take() == [
            ("default/a", None, "a1"), ("default/a", "a1", "a2"), ("default/b", None, "b1")
        ]
        assert informer.last_error is not None and "TransportError" in informer.last_error


async def test_a_stream_cut_in_the_middle_of_a_line_does_not_end_the_informer() -> None:
    """KubeClient.watch raises json.JSONDecodeError, not ApiError, when the stream closes in
    the middle of an event line (seen against a server that does that). The informer must
    reconnect as for any broken stream, or the cache silently stops following the server."""
    kube = FakeKube()
    informer = Informer(kube, SERVICES)
    seen = Seen(informer)
    task = asyncio.create_task(informer.run())
    try:
        await until(informer.synced.is_set, "the list")
        kube.drop_watches(json.JSONDecodeError("Unterminated string", '{"type": "MODIF', 10))
        await kube.create(SERVICES, "default", body("a", "a1"))
        await until(lambda: "default/a" in informer.cache or task.done(), "a, or the end")
        assert not task.done(), task.exception()
        assert seen.take() == [("default/a", None, "a1")]
        assert informer.last_error is not None and "JSONDecodeError" in informer.last_error
        assert informer.relists == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@CACHES
async def test_gone_relists_and_the_diff_reports_what_happened_in_the_gap(
    cache: Callable[[], MutableMapping[str, JSON]],
) -> None:
    kube = FakeKube()
    for name in ("same", "edited", "deleted"):
        await kube.create(SERVICES, "default", body(name, f"{name}1"))
    informer = Informer(kube, SERVICES, cache=cache())
    seen = Seen(informer)
    async with running(informer):
        seen.take()
        assert informer.fresh.is_set()
        # the first relist fails for a while, so the gap stays open long enough to look at it
        listing_failed = kube.fail_next(
            "list", "services", ApiError(503, "ServiceUnavailable", "etcd", retry_after=0.2)
        )
        # none of these yields: the watch sees them only after history is gone
        await put(kube, "edited", "edited2")
        await kube.delete(SERVICES, "default", "deleted")
        await kube.create(SERVICES, "default", body("added", "added1"))
        kube.compact()
        await until(lambda: listing_failed() == 1, "the 410 and a relist attempt")
        assert not informer.fresh.is_set(), "fresh during the gap"
        assert informer.synced.is_set()  # the cache is still there, only known to be stale
        assert seen.changes == []
        await until(informer.fresh.is_set, "the relist after Retry-After")
        assert sorted(seen.take()) == [
            ("default/added", None, "added1"),
            ("default/deleted", "deleted1", None),
            ("default/edited", "edited1", "edited2"),
        ]
        assert set(informer.cache) == {"default/same", "default/edited", "default/added"}
        assert informer.relists == 2
        # and it watches on from the relisted version
        await put(kube, "same", "same2")
        await until(lambda: seen.changes == [("default/same", "same1", "same2")], "watch after")
    assert kube.requests[("list", "services")] == 3  # first list, the failed one, the relist


async def test_other_errors_retry_after_the_servers_retry_after_without_a_relist() -> None:
    kube = FakeKube()
    attempts: list[float] = []

    def throttle(verb: str, label: str) -> ApiError | None:
        if (verb, label) != ("watch", "services"):
            return None
        attempts.append(time.monotonic())
        if len(attempts) <= 2:
            return ApiError(429, "TooManyRequests", "slow down", retry_after=0.3)
        return None

    kube.faults.append(throttle)
    informer = Informer(kube, SERVICES)
    seen = Seen(informer)
    async with running(informer):
        await until(lambda: len(attempts) == 3, "two throttled watches and a third", 5)
        await kube.create(SERVICES, "default", body("a", "a1"))
        await until(lambda: seen.changes == [("default/a", None, "a1")], "the event")
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.29 for gap in gaps), gaps
    assert informer.relists == 1
    assert kube.requests[("list", "services")] == 1


async def test_without_retry_after_the_retries_back_off_exponentially() -> None:
    kube = FakeKube()
    attempts: list[float] = []

    def unavailable(verb: str, label: str) -> ApiError | None:
        if (verb, label) != ("watch", "services"):
            return None
        attempts.append(time.monotonic())
        return ApiError(503, "ServiceUnavailable", "no") if len(attempts) <= 4 else None

    kube.faults.append(unavailable)
    informer = Informer(kube, SERVICES)
    async with running(informer):
        await until(lambda: len(attempts) == 5, "four failed watches and a fifth", 10)
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    # base 0.2 s doubling, each delay drawn from [bound/2, bound]
    for index, gap in enumerate(gaps):
        bound = 0.2 * 2**index
        assert gap >= bound / 2 - 0.01, (index, gaps)
    assert gaps[3] > gaps[0], gaps
    assert informer.relists == 1


async def test_a_successful_event_resets_the_backoff() -> None:
    kube = FakeKube()
    attempts: list[float] = []
    failing = True

    def unavailable(verb: str, label: str) -> ApiError | None:
        if (verb, label) != ("watch", "services"):
            return None
        attempts.append(time.monotonic())
        return ApiError(503, "ServiceUnavailable", "no") if failing else None

    kube.faults.append(unavailable)
    informer = Informer(kube, SERVICES)
    async with running(informer):
        await until(lambda: len(attempts) == 4, "three failures (backoff now 0.8 s)", 10)
        failing = False
        await until(lambda: len(attempts) == 5, "a working watch", 10)
        await kube.create(SERVICES, "default", body("a", "a1"))
        await until(lambda: "default/a" in informer.cache, "an event")
        dropped = time.monotonic()
        kube.drop_watches(ApiError(0, "TransportError", "reset"))
        await until(lambda: len(attempts) == 6, "the retry after the drop", 10)
    # after the event the retry waits within the base bound again (at most 0.2 s); without the
    # reset it would wait at least 1.6 s (the fifth delay, bound 3.2 s); 1 s leaves room for load
    assert attempts[5] - dropped < 1.0, attempts
