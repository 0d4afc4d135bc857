"""Watch semantics: resourceVersion start points, bookmarks, 410, timeouts, selectors, and a
controller-style resume after dropped connections and expired history."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiException, CoreV1Api

from devkit.emulator import Emulator


async def raw_watch(emu: Emulator, path: str, **params: str) -> list[dict[str, Any]]:
    """Read a whole watch stream over plain HTTP (it must end: pass timeoutSeconds)."""
    async with aiohttp.ClientSession() as session, session.get(emu.url + path,
                                                               params=params) as response:
        assert response.status == 200
        return [json.loads(line) async for line in response.content if line.strip()]


async def cm(core: CoreV1Api, name: str, namespace: str = "default", **labels: str) -> str:
    created = await core.create_namespaced_config_map(namespace, {"metadata": {
        "name": name, "labels": labels}})
    return str(created.metadata.resource_version)


async def test_watch_without_version_lists_then_follows(core: CoreV1Api) -> None:
    await cm(core, "before")
    events: list[tuple[str, str]] = []
    stream = watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=2)

    async def consume() -> None:
        async for event in stream:
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await cm(core, "after")
    await asyncio.wait_for(task, 5)
    assert events == [("ADDED", "before"), ("ADDED", "after")]


async def test_watch_from_exact_version_replays_later_changes(core: CoreV1Api) -> None:
    start = await cm(core, "one")
    await core.patch_namespaced_config_map("one", "default", {"data": {"k": "v"}})
    await cm(core, "two")
    await core.delete_namespaced_config_map("one", "default")
    seen = [(e["type"], e["object"].metadata.name, int(e["object"].metadata.resource_version))
            async for e in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                resource_version=start, timeout_seconds=1)]
    assert [(t, n) for t, n, _ in seen] == [("MODIFIED", "one"), ("ADDED", "two"),
                                            ("DELETED", "one")]
    versions = [rv for _, _, rv in seen]
    assert versions == sorted(versions) and versions[0] > int(start)


@pytest.mark.parametrize("flag", ["true", "1", "True"])
async def test_watch_flag_spellings(emulator: Emulator, core: CoreV1Api, flag: str) -> None:
    await cm(core, "x")
    events = await raw_watch(emulator, "/api/v1/namespaces/default/configmaps",
                             watch=flag, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "x")]


async def test_bookmarks_carry_a_safe_resume_version(emulator: Emulator,
                                                     core: CoreV1Api) -> None:
    rv = await cm(core, "b")
    await core.create_namespaced_service("default", {"metadata": {"name": "s"}, "spec": {
        "ports": [{"port": 80}]}})  # another resource moves the global version on
    events = await raw_watch(emulator, "/api/v1/namespaces/default/configmaps", watch="1",
                             resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="1")
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks and all(e["object"]["kind"] == "ConfigMap" for e in bookmarks)
    assert bookmarks[-1]["object"]["metadata"]["resourceVersion"] == str(emulator.store.rv)
    assert [e for e in events if e["type"] != "BOOKMARK"] == []


async def test_no_bookmarks_unless_asked(emulator: Emulator, core: CoreV1Api) -> None:
    rv = await cm(core, "nb")
    events = await raw_watch(emulator, "/api/v1/namespaces/default/configmaps", watch="1",
                             resourceVersion=rv, timeoutSeconds="1")
    assert events == []


async def test_timeout_seconds_ends_the_stream(emulator: Emulator) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(raw_watch(emulator, "/api/v1/configmaps", watch="1",
                                     timeoutSeconds="1"), 10)
    assert loop.time() - began >= 0.9


async def test_old_version_past_history_gets_410_error_event(tmp_path: Any) -> None:
    async with Emulator(history_size=3) as emu:
        from tests.integration.emulator.conftest import make_client

        async with await make_client(emu, tmp_path) as api:
            core = CoreV1Api(api)
            first = await cm(core, "h0")
            for i in range(1, 5):
                await cm(core, f"h{i}")
            events = await raw_watch(emu, "/api/v1/namespaces/default/configmaps", watch="1",
                                     resourceVersion=first, timeoutSeconds="1")
            assert len(events) == 1 and events[0]["type"] == "ERROR"
            status = events[0]["object"]
            assert (status["kind"], status["code"], status["reason"]) == ("Status", 410,
                                                                          "Expired")
            with pytest.raises(ApiException) as caught:
                async for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                    resource_version=first, timeout_seconds=1):
                    pass
            assert caught.value.status == 410
            # versions still in the window are fine
            recent = str(int(first) + 2)
            names = [e["object"]["metadata"]["name"] for e in await raw_watch(
                emu, "/api/v1/namespaces/default/configmaps", watch="1",
                resourceVersion=recent, timeoutSeconds="1")]
            assert names == ["h3", "h4"]


async def test_expire_history_forces_410_for_older_versions(emulator: Emulator,
                                                            core: CoreV1Api) -> None:
    old = await cm(core, "e1")
    now = await cm(core, "e2")
    emulator.faults.expire_history()
    expired = await raw_watch(emulator, "/api/v1/configmaps", watch="1", resourceVersion=old,
                              timeoutSeconds="1")
    assert expired[0]["type"] == "ERROR" and expired[0]["object"]["code"] == 410
    current = await raw_watch(emulator, "/api/v1/configmaps", watch="1", resourceVersion=now,
                              timeoutSeconds="1")
    assert current == []


async def test_namespace_scope_and_label_selector(emulator: Emulator, core: CoreV1Api) -> None:
    await core.create_namespace({"metadata": {"name": "other"}})
    start = str(emulator.store.rv)
    await cm(core, "here", tier="web")
    await cm(core, "there", "other", tier="web")
    await cm(core, "db", tier="db")
    # relabel: web -> db leaves the selector (DELETED), db -> web enters it (ADDED)
    await core.patch_namespaced_config_map("here", "default", {"metadata": {"labels": {
        "tier": "db"}}})
    await core.patch_namespaced_config_map("db", "default", {"metadata": {"labels": {
        "tier": "web"}}})
    scoped = await raw_watch(emulator, "/api/v1/namespaces/default/configmaps", watch="1",
                             resourceVersion=start, labelSelector="tier=web",
                             timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in scoped] == [
        ("ADDED", "here"), ("DELETED", "here"), ("ADDED", "db")]
    everywhere = await raw_watch(emulator, "/api/v1/configmaps", watch="1",
                                 resourceVersion=start, fieldSelector="metadata.name=there",
                                 timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in everywhere] == [
        ("ADDED", "other")]


async def test_resume_after_dropped_connections_misses_and_repeats_nothing(
        emulator: Emulator, core: CoreV1Api) -> None:
    """A controller-style loop: remember the last resourceVersion, rewatch on any break."""
    start = str(emulator.store.rv)
    total = 30
    seen: list[str] = []

    async def writer() -> None:
        for i in range(total):
            await cm(core, f"r{i:02d}")
            if i % 10 == 5:
                emulator.faults.drop_watches()
            await asyncio.sleep(0.01)

    async def follower() -> int:
        rv, breaks = start, 0
        while len(seen) < total:
            try:
                async for event in watch.Watch().stream(
                        core.list_namespaced_config_map, "default", resource_version=rv,
                        timeout_seconds=30):
                    seen.append(event["object"].metadata.name)
                    rv = event["object"].metadata.resource_version
                    if len(seen) == total:
                        break
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError):
                breaks += 1
        return breaks

    follow = asyncio.create_task(follower())
    await writer()
    breaks = await asyncio.wait_for(follow, 20)
    assert breaks >= 1  # the drops really cut live streams
    assert seen == [f"r{i:02d}" for i in range(total)]


async def test_relist_recovers_after_410(emulator: Emulator, core: CoreV1Api) -> None:
    """After a 410 a controller relists; the list reflects changes made while it was away
    and its resourceVersion is a valid start for the next watch."""
    rv = await cm(core, "keep")
    await cm(core, "drop")
    await core.delete_namespaced_config_map("drop", "default")
    await cm(core, "new")
    emulator.faults.expire_history()
    with pytest.raises(ApiException) as caught:
        async for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                            resource_version=rv, timeout_seconds=1):
            pass
    assert caught.value.status == 410
    listing = await core.list_namespaced_config_map("default")
    assert sorted(i.metadata.name for i in listing.items) == ["keep", "new"]
    follow = watch.Watch().stream(core.list_namespaced_config_map, "default",
                                  resource_version=listing.metadata.resource_version,
                                  timeout_seconds=2)

    async def first_event() -> tuple[str, str]:
        async for event in follow:
            return event["type"], event["object"].metadata.name
        return ("", "")

    task = asyncio.create_task(first_event())
    await asyncio.sleep(0.1)
    await cm(core, "after")
    assert await asyncio.wait_for(task, 5) == ("ADDED", "after")


async def test_graceful_drop_ends_stream_cleanly(emulator: Emulator) -> None:
    reader = asyncio.create_task(raw_watch(emulator, "/api/v1/configmaps", watch="1",
                                           resourceVersion=str(emulator.store.rv)))
    await asyncio.sleep(0.2)
    assert emulator.faults.drop_watches(graceful=True) == 1
    assert await asyncio.wait_for(reader, 5) == []


async def test_watch_from_a_future_version_skips_changes_up_to_it(emulator: Emulator,
                                                                  core: CoreV1Api) -> None:
    future = emulator.store.rv + 2
    reader = asyncio.create_task(raw_watch(emulator, "/api/v1/namespaces/default/configmaps",
                                           watch="1", resourceVersion=str(future),
                                           timeoutSeconds="2"))
    await asyncio.sleep(0.2)
    for name in ("f1", "f2", "f3"):
        await cm(core, name)
    events = await asyncio.wait_for(reader, 10)
    assert [e["object"]["metadata"]["name"] for e in events] == ["f3"]
