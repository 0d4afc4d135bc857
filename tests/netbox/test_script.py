"""scripts/netbox itself: what it tells the tests, and a reset from the template database."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid

import pytest

from pools.external.base import BackendError
from pools.external.transport import JsonClient
from tests.netbox.conftest import SCRIPT, NetBoxEnv

pytestmark = pytest.mark.netbox


def test_env_names_the_running_instance(netbox_env: NetBoxEnv) -> None:
    shown = subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True)
    values = dict(line.split("=", 1) for line in shown.stdout.split())
    assert values == {"NETBOX_URL": netbox_env.url, "NETBOX_TOKEN": netbox_env.token}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", netbox_env.url)
    assert re.fullmatch(r"[0-9a-f]{40}", netbox_env.token)  # a v1 token


async def test_reset_gives_back_the_template(netbox_env: NetBoxEnv) -> None:
    admin = JsonClient(netbox_env.url, authorization=f"Token {netbox_env.token}", timeout=30)
    try:
        _, vrf = await admin.request("POST", "/api/ipam/vrfs/",
                                     body={"name": f"vipam-reset-{uuid.uuid4().hex[:8]}"})
        reset = await asyncio.create_subprocess_exec(
            str(SCRIPT), "reset", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(reset.communicate(), timeout=300)
        assert reset.returncode == 0, output.decode()
        # The same token still works (it lives in the template); what the test made is gone.
        await admin.close()
        await admin.request("GET", "/api/status/")
        with pytest.raises(BackendError) as gone:
            await admin.request("GET", f"/api/ipam/vrfs/{vrf['id']}/")
        assert gone.value.reason == "NotFound"
    finally:
        await admin.close()
