"""API priority and fairness: a 429 with Retry-After is waited out and sent again.

Against the API emulator's fault injection (a real HTTP server in this process): the server
counts every attempt, so the test sees that the request was sent again, not swallowed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import SERVICES
from devkit.emulator import Emulator


async def test_a_429_with_retry_after_is_retried_after_the_wait(tmp_path: Path) -> None:
    async with Emulator() as emu:
        client = await KubeClient.connect(str(emu.write_kubeconfig(tmp_path / "kc")), qps=0)
        try:
            await client.list(SERVICES, "default")
            emu.stats.clear()
            emu.faults.fail_next(2, 429, retry_after=0.3, methods={"GET"})
            started = time.monotonic()
            listing = await client.list(SERVICES, "default")
            waited = time.monotonic() - started
        finally:
            await client.close()
    # what the server holds: only its own default/kubernetes Service (as on a real cluster)
    assert [i["metadata"]["name"] for i in listing["items"]] == ["kubernetes"]
    assert client.throttled == 2
    assert emu.stats.count("list", "services") == 3  # two turned away, the third served
    assert waited >= 0.55  # the server's Retry-After was honoured, twice


async def test_a_429_without_retry_after_and_exhausted_retries_surface(tmp_path: Path) -> None:
    async with Emulator() as emu:
        client = await KubeClient.connect(
            str(emu.write_kubeconfig(tmp_path / "kc")), qps=0, throttle_retries=1
        )
        try:
            emu.faults.fail_next(1, 429, methods={"GET"})
            with pytest.raises(ApiError) as plain:
                await client.list(SERVICES, "default")
            emu.faults.fail_next(2, 429, retry_after=0.05, methods={"GET"})
            with pytest.raises(ApiError) as exhausted:
                await client.list(SERVICES, "default")
        finally:
            await client.close()
    assert plain.value.status == 429 and plain.value.retry_after is None
    assert exhausted.value.status == 429 and exhausted.value.retry_after is not None
    assert client.throttled == 1
