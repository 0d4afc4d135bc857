"""Fault injection, restarts that keep data and port, and request statistics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiException, CoreV1Api

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import lb_service, make_client, reason, status_body


@pytest.fixture
def core(emulator_core: CoreV1Api) -> CoreV1Api:
    """Emulator only: this module tests its own knobs (faults, restarts, its request
    counter), which a real server has not; its client talks to the emulator."""
    return emulator_core


async def test_fail_next_counts_and_filters(emulator: Emulator, core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service("f"))
    emulator.faults.fail_next(2, 500, methods=["PATCH"], path_contains="/services/f")
    await core.read_namespaced_service("f", "default")  # GET does not match the filter
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            await core.patch_namespaced_service("f", "default", {"metadata": {"labels": {
                "a": "b"}}})
        assert caught.value.status == 500 and reason(caught.value) == "InternalError"
    patched = await core.patch_namespaced_service("f", "default", {"metadata": {"labels": {
        "a": "b"}}})
    assert patched.metadata.labels == {"a": "b"}


async def test_fail_next_429_carries_retry_after(emulator: Emulator) -> None:
    emulator.faults.fail_next(1, 429, retry_after=2)
    async with aiohttp.ClientSession() as session:
        async with session.get(emulator.url + "/api/v1/services") as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "2"
            body = await response.json()
            assert body["reason"] == "TooManyRequests"
            assert body["details"]["retryAfterSeconds"] == 2
        async with session.get(emulator.url + "/api/v1/services") as response:
            assert response.status == 200


async def test_clear_removes_planned_failures_and_latency(emulator: Emulator,
                                                          core: CoreV1Api) -> None:
    emulator.faults.fail_next(5, 503)
    emulator.faults.set_latency(10)
    emulator.faults.clear()
    # neither a 503 nor a 10 s delay may remain
    assert (await asyncio.wait_for(core.list_namespace(), 5)).items


async def test_latency_delays_responses(emulator: Emulator, core: CoreV1Api) -> None:
    loop = asyncio.get_running_loop()
    emulator.faults.set_latency(0.3)
    began = loop.time()
    await core.list_namespace()
    assert loop.time() - began >= 0.3
    emulator.faults.set_latency(0)


async def test_restart_keeps_data_and_port_and_cuts_watches(tmp_path: Path) -> None:
    emu = Emulator()
    await emu.start()
    try:
        port = emu.port
        async with await make_client(emu, tmp_path) as api:
            core = CoreV1Api(api)
            svc = await core.create_namespaced_service("default", lb_service("persist"))
            stream = watch.Watch().stream(core.list_namespaced_service, "default",
                                          resource_version=svc.metadata.resource_version)

            async def read_one() -> None:
                async for _ in stream:
                    pass

            reader = asyncio.create_task(read_one())
            await asyncio.sleep(0.2)
            await emu.stop()
            with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                                aiohttp.ClientOSError)):
                await asyncio.wait_for(reader, 5)
            with pytest.raises(aiohttp.ClientConnectionError):
                await core.read_namespaced_service("persist", "default")
            await emu.start()
            assert emu.port == port
            again = await core.read_namespaced_service("persist", "default")
            assert again.metadata.uid == svc.metadata.uid
            assert again.metadata.resource_version == svc.metadata.resource_version
    finally:
        await emu.stop()


async def test_stats_count_verbs_and_writes(emulator: Emulator, core: CoreV1Api) -> None:
    emulator.reset_stats()
    await core.create_namespaced_service("default", lb_service("s"))
    await core.read_namespaced_service("s", "default")
    await core.list_namespaced_service("default")
    await core.patch_namespaced_service_status("s", "default", {"status": {}})
    await core.replace_namespaced_service("s", "default",
                                          await core.read_namespaced_service("s", "default"))
    await core.delete_namespaced_service("s", "default")
    async for _ in watch.Watch().stream(core.list_namespaced_service, "default",
                                        timeout_seconds=1):
        pass
    stats = emulator.stats
    assert stats.count("create", "services") == 1
    assert stats.count("get", "services") == 2
    assert stats.count("list", "services") == 1
    assert stats.count("watch", "services") == 1
    assert stats.count("patch", "services/status") == 1
    assert stats.count("patch", "services") == 1  # the resource name covers its subresources
    assert stats.count("update") == 1 and stats.count("delete") == 1
    assert stats.writes == 4
    emulator.reset_stats()
    assert stats.writes == 0 and stats.total == 0


async def test_failed_requests_are_still_counted(emulator: Emulator, core: CoreV1Api) -> None:
    emulator.reset_stats()
    emulator.faults.fail_next(1, 500)
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("default", lb_service("x"))
    assert status_body(caught.value)["code"] == 500
    assert emulator.stats.writes == 1


async def test_restart_with_expired_history_forces_relist(emulator: Emulator,
                                                          core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    await core.create_namespaced_config_map("default", {"metadata": {"name": "y"}})
    await emulator.restart(expire_history=True)
    with pytest.raises(ApiException) as caught:
        async for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                            resource_version=created.metadata.resource_version,
                                            timeout_seconds=1):
            pass
    assert caught.value.status == 410
    listing = await core.list_namespaced_config_map("default")
    assert [i.metadata.name for i in listing.items] == ["x", "y"]
