"""Watch semantics: resourceVersion start points, bookmarks, 410, timeouts, selectors, and a
controller-style resume after dropped connections and expired history.

The first group runs on both servers (`server`); the rest use emulator-only knobs (a small
history, expiring it or dropping watches on cue, a predictable next resourceVersion) and say so.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiException, CoreV1Api

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import Server


async def raw_watch(server: Server | Emulator, path: str, **params: str) -> list[dict[str, Any]]:
    """Read a whole watch stream over plain HTTP (it must end: pass timeoutSeconds)."""
    session = server.session() if isinstance(server, Server) else aiohttp.ClientSession()
    async with session, session.get(server.url + path, params=params) as response:
        assert response.status == 200
        return [json.loads(line) async for line in response.content if line.strip()]


async def cm(core: CoreV1Api, namespace: str, name: str, **labels: str) -> str:
    created = await core.create_namespaced_config_map(namespace, {"metadata": {
        "name": name, "labels": labels}})
    return str(created.metadata.resource_version)


async def test_watch_without_version_lists_then_follows(ns: str, core: CoreV1Api) -> None:
    await cm(core, ns, "before")
    events: list[tuple[str, str]] = []
    stream = watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=2)

    async def consume() -> None:
        async for event in stream:
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await cm(core, ns, "after")
    await asyncio.wait_for(task, 5)
    assert events == [("ADDED", "before"), ("ADDED", "after")]


async def test_watch_from_exact_version_replays_later_changes(ns: str, core: CoreV1Api) -> None:
    start = await cm(core, ns, "one")
    await core.patch_namespaced_config_map("one", ns, {"data": {"k": "v"}})
    await cm(core, ns, "two")
    await core.delete_namespaced_config_map("one", ns)
    seen = [(e["type"], e["object"].metadata.name, int(e["object"].metadata.resource_version))
            async for e in watch.Watch().stream(core.list_namespaced_config_map, ns,
                                                resource_version=start, timeout_seconds=1)]
    assert [(t, n) for t, n, _ in seen] == [("MODIFIED", "one"), ("ADDED", "two"),
                                            ("DELETED", "one")]
    versions = [rv for _, _, rv in seen]
    assert versions == sorted(versions) and versions[0] > int(start)


@pytest.mark.parametrize("flag", ["true", "1", "True"])
async def test_watch_flag_spellings(server: Server, core: CoreV1Api, flag: str) -> None:
    await cm(core, server.ns, "x")
    events = await raw_watch(server, f"/api/v1/namespaces/{server.ns}/configmaps",
                             watch=flag, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "x")]


async def test_no_bookmarks_unless_asked(server: Server, core: CoreV1Api) -> None:
    rv = await cm(core, server.ns, "nb")
    events = await raw_watch(server, f"/api/v1/namespaces/{server.ns}/configmaps", watch="1",
                             resourceVersion=rv, timeoutSeconds="1")
    assert events == []


async def test_timeout_seconds_ends_the_stream(server: Server) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(raw_watch(server, f"/api/v1/namespaces/{server.ns}/configmaps",
                                     watch="1", timeoutSeconds="1"), 10)
    assert loop.time() - began >= 0.9


async def test_namespace_scope_and_label_selector(server: Server, core: CoreV1Api) -> None:
    ns = server.ns
    other = server.unique("other")
    await core.create_namespace({"metadata": {"name": other}})
    start = str((await core.list_namespaced_config_map(ns)).metadata.resource_version)
    await cm(core, ns, "here", tier="web")
    await cm(core, other, "there", tier="web")
    await cm(core, ns, "db", tier="db")
    # relabel: web -> db leaves the selector (DELETED), db -> web enters it (ADDED)
    await core.patch_namespaced_config_map("here", ns, {"metadata": {"labels": {
        "tier": "db"}}})
    await core.patch_namespaced_config_map("db", ns, {"metadata": {"labels": {
        "tier": "web"}}})
    scoped = await raw_watch(server, f"/api/v1/namespaces/{ns}/configmaps", watch="1",
                             resourceVersion=start, labelSelector="tier=web",
                             timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in scoped] == [
        ("ADDED", "here"), ("DELETED", "here"), ("ADDED", "db")]
    everywhere = await raw_watch(server, "/api/v1/configmaps", watch="1",
                                 resourceVersion=start,
                                 fieldSelector=f"metadata.name=there,metadata.namespace={other}",
                                 timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in everywhere] == [
        ("ADDED", other)]
    await core.delete_namespaced_config_map("there", other)


async def test_watch_list_sends_the_state_then_a_bookmark(server: Server,
                                                          core: CoreV1Api) -> None:
    """A streaming list (sendInitialEvents, what kubectl 1.36 and client-go's reflector ask
    for): every current object as ADDED, then a BOOKMARK annotated initial-events-end."""
    for name in ("w1", "w2"):
        await cm(core, server.ns, name)
    events = await raw_watch(server, f"/api/v1/namespaces/{server.ns}/configmaps", watch="1",
                             sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                             allowWatchBookmarks="true", timeoutSeconds="1")
    if server.real and events and events[0]["type"] == "ERROR":
        message = events[0]["object"]["message"]
        assert "RequestWatchProgress" in message, events
        pytest.skip("the test server's etcd (Debian's 3.4.23) lacks progress notifications, "
                    "so kube-apiserver serves no watch-lists (clients fall back to list+watch): "
                    + message)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == [
        ("ADDED", "w1"), ("ADDED", "w2")]
    bookmark = events[2]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


# ------------------------------------------------------------------------- emulator only


async def test_bookmarks_carry_a_safe_resume_version(emulator: Emulator,
                                                     emulator_core: CoreV1Api) -> None:
    """Emulator only: it sends bookmarks every `bookmark_interval` (0.2 s here) and at the
    timeout; a real server sends them about once a minute (the watch cache's bookmark
    frequency), too seldom for a test."""
    core = emulator_core
    rv = await cm(core, "default", "b")
    await core.create_namespaced_service("default", {"metadata": {"name": "s"}, "spec": {
        "ports": [{"port": 80}]}})  # another resource moves the global version on
    events = await raw_watch(emulator, "/api/v1/namespaces/default/configmaps", watch="1",
                             resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="1")
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks and all(e["object"]["kind"] == "ConfigMap" for e in bookmarks)
    assert bookmarks[-1]["object"]["metadata"]["resourceVersion"] == str(emulator.store.rv)
    assert [e for e in events if e["type"] != "BOOKMARK"] == []


async def test_old_version_past_history_gets_410_error_event(tmp_path: Any) -> None:
    """Emulator only: `history_size` is its knob. A real server sizes its watch cache itself
    (and replays from far older versions than a test can outrun)."""
    async with Emulator(history_size=3) as emu:
        from tests.integration.emulator.conftest import make_client

        async with await make_client(emu, tmp_path) as api:
            core = CoreV1Api(api)
            first = await cm(core, "default", "h0")
            for i in range(1, 5):
                await cm(core, "default", f"h{i}")
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
                                                            emulator_core: CoreV1Api) -> None:
    """Emulator only: expiring history on cue is a fault knob."""
    core = emulator_core
    old = await cm(core, "default", "e1")
    now = await cm(core, "default", "e2")
    emulator.faults.expire_history()
    expired = await raw_watch(emulator, "/api/v1/configmaps", watch="1", resourceVersion=old,
                              timeoutSeconds="1")
    assert expired[0]["type"] == "ERROR" and expired[0]["object"]["code"] == 410
    current = await raw_watch(emulator, "/api/v1/configmaps", watch="1", resourceVersion=now,
                              timeoutSeconds="1")
    assert current == []


async def test_resume_after_dropped_connections_misses_and_repeats_nothing(
        emulator: Emulator, emulator_core: CoreV1Api) -> None:
    """A controller-style loop: remember the last resourceVersion, rewatch on any break.
    Emulator only: dropping live watches on cue is a fault knob."""
    core = emulator_core
    start = str(emulator.store.rv)
    total = 30
    seen: list[str] = []

    async def writer() -> None:
        for i in range(total):
            await cm(core, "default", f"r{i:02d}")
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


async def test_relist_recovers_after_410(emulator: Emulator, emulator_core: CoreV1Api) -> None:
    """After a 410 a controller relists; the list reflects changes made while it was away
    and its resourceVersion is a valid start for the next watch. Emulator only: the 410 is
    forced by expiring history on cue."""
    core = emulator_core
    rv = await cm(core, "default", "keep")
    await cm(core, "default", "drop")
    await core.delete_namespaced_config_map("drop", "default")
    await cm(core, "default", "new")
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
    await cm(core, "default", "after")
    assert await asyncio.wait_for(task, 5) == ("ADDED", "after")


async def test_graceful_drop_ends_stream_cleanly(emulator: Emulator) -> None:
    """Emulator only: a fault knob."""
    reader = asyncio.create_task(raw_watch(emulator, "/api/v1/configmaps", watch="1",
                                           resourceVersion=str(emulator.store.rv)))
    await asyncio.sleep(0.2)
    assert emulator.faults.drop_watches(graceful=True) == 1
    assert await asyncio.wait_for(reader, 5) == []


async def test_watch_from_a_future_version_skips_changes_up_to_it(
        emulator: Emulator, emulator_core: CoreV1Api) -> None:
    """Emulator only: it needs the next resourceVersions to be predictable (one counter that
    only the test moves); a real server's etcd revision moves with its own writes too."""
    core = emulator_core
    future = emulator.store.rv + 2
    reader = asyncio.create_task(raw_watch(emulator, "/api/v1/namespaces/default/configmaps",
                                           watch="1", resourceVersion=str(future),
                                           timeoutSeconds="2"))
    await asyncio.sleep(0.2)
    for name in ("f1", "f2", "f3"):
        await cm(core, "default", name)
    events = await asyncio.wait_for(reader, 10)
    assert [e["object"]["metadata"]["name"] for e in events] == ["f3"]
