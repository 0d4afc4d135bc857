"""A real NetBox (started by scripts/netbox) and per-test isolation inside it.

Each test gets its own VRF, so its prefixes and IP addresses never meet another test's, and the
database needs no reset between tests. Everything a test creates is deleted afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pools.external.base import RetryPolicy
from pools.external.netbox import NetBoxBackend
from pools.external.transport import JsonClient
from tests.integration.realfixtures import emu, kube, kubeconfig  # noqa: F401  (the controller tests)
from tests.prereq import require

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "netbox"


@dataclass(frozen=True)
class NetBoxEnv:
    url: str
    token: str


@pytest.fixture(scope="session")
def netbox_env() -> NetBoxEnv:
    require(os.geteuid() == 0, "scripts/netbox needs root (PostgreSQL runs as postgres)")
    waited = subprocess.run([str(SCRIPT), "wait", os.environ.get("NETBOX_WAIT", "900")],
                            capture_output=True, text=True)
    require(waited.returncode == 0,
            "NetBox is not up (scripts/netbox start-background; scripts/netbox wait): "
            + (waited.stdout + waited.stderr)[-1500:])
    values = dict(line.split("=", 1) for line in
                  (REPO / ".netbox" / "env").read_text().split() if "=" in line)
    return NetBoxEnv(values["NETBOX_URL"], values["NETBOX_TOKEN"])


@dataclass
class Sandbox:
    """A VRF of this test's own in NetBox, and an admin client to shape it."""

    admin: JsonClient
    vrf_id: int
    vrf_name: str
    created: list[str] = field(default_factory=list)  # API paths to delete afterwards

    async def create(self, kind: str, **fields: Any) -> dict[str, Any]:
        _, item = await self.admin.request("POST", f"/api/ipam/{kind}/", body=fields)
        self.created.append(f"/api/ipam/{kind}/{item['id']}/")
        return dict(item)

    async def prefix(self, cidr: str, **fields: Any) -> int:
        item = await self.create("prefixes", prefix=cidr, vrf=self.vrf_id, **fields)
        return int(item["id"])

    async def ip_range(self, start: str, end: str) -> int:
        item = await self.create("ip-ranges", start_address=start, end_address=end,
                                 vrf=self.vrf_id)
        return int(item["id"])

    async def addresses(self) -> list[dict[str, Any]]:
        """Every IP address object in this VRF, whoever made it."""
        _, page = await self.admin.request(
            "GET", "/api/ipam/ip-addresses/", params={"vrf_id": str(self.vrf_id),
                                                      "limit": "1000"})
        return list(page["results"])


@pytest.fixture
async def sandbox(netbox_env: NetBoxEnv) -> AsyncIterator[Sandbox]:
    admin = JsonClient(netbox_env.url, authorization=f"Token {netbox_env.token}", timeout=30)
    name = f"vipam-test-{uuid.uuid4().hex[:10]}"
    _, vrf = await admin.request("POST", "/api/ipam/vrfs/", body={"name": name})
    box = Sandbox(admin, int(vrf["id"]), name)
    try:
        yield box
    finally:
        for item in await box.addresses():
            await admin.request("DELETE", f"/api/ipam/ip-addresses/{item['id']}/")
        for path in reversed(box.created):
            await admin.request("DELETE", path)
        await admin.request("DELETE", f"/api/ipam/vrfs/{box.vrf_id}/")
        await admin.close()


@pytest.fixture
async def make_backend(netbox_env: NetBoxEnv) -> AsyncIterator[Callable[..., NetBoxBackend]]:
    """Build NetBox backends for this test; their sessions are closed at teardown."""
    made: list[NetBoxBackend] = []

    def build(token: str | None = None, **options: Any) -> NetBoxBackend:
        backend = NetBoxBackend(
            netbox_env.url, netbox_env.token if token is None else token,
            timeout=30, options=options,
            retry=RetryPolicy(attempts=3, base_delay=0.1, total_seconds=60),
        )
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.close()
