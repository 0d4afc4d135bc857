"""A reference IPAM server on 127.0.0.1 and an http backend pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devkit.reference_ipam import ReferenceServer
from pools.external.base import RetryPolicy
from pools.external.http import HTTPBackend

TOKEN = "test-token-0123456789"
POOLS = {
    "default": ["198.51.100.0/28", "2001:db8::/124"],
    "tiny": ["203.0.113.8/31"],
}


class RecordingSleep:
    """Stands in for asyncio.sleep in the retry policy: records the delays it was asked for, so
    tests check backoff and Retry-After exactly instead of by wall-clock time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[ReferenceServer]:
    srv = ReferenceServer(POOLS, token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def retry(sleeps: RecordingSleep) -> RetryPolicy:
    return RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0, total_seconds=30.0,
                       sleep=sleeps)


@pytest.fixture
async def backend(server: ReferenceServer, retry: RetryPolicy) -> AsyncIterator[HTTPBackend]:
    client = HTTPBackend(server.url, TOKEN, timeout=2.0, retry=retry)
    yield client
    await client.close()
