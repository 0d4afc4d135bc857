"""The controller end to end with a real NetBox: allocate, exhaust, release and reconcile.

The controller runs against a real kube-apiserver (tests/realkube.py) on its own
ServiceAccount's token; its IPPool points at this test's VRF in the NetBox that scripts/netbox
runs. What NetBox records is read back through its own API.
"""

from __future__ import annotations

import base64
from pathlib import Path

from ccm.contract import names
from ccm.kube.client import KubeClient
from ccm.kube.resources import SECRETS, SERVICES
from pools.external import AllocationKey
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    failure_of,
    get_service,
    leader_ready,
    start_controller,
    wait_for,
)
from tests.netbox.conftest import NetBoxEnv, Sandbox
from tests.realkube import RealApi

CLUSTER = "nb-e2e"




async def _netbox_pool(kube: KubeClient, env: NetBoxEnv, sandbox: Sandbox, cidr: str) -> None:
    await sandbox.prefix(cidr)
    await kube.create(SECRETS, "kube-system", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "netbox-token"},
        "data": {"token": base64.b64encode(env.token.encode()).decode()},
    })
    await create_pool(kube, "netbox", external={
        "provider": "netbox", "url": env.url, "secretRef": {"name": "netbox-token"},
        "timeoutSeconds": 30,
        "options": {"prefix": cidr, "vrf": sandbox.vrf_name, "tag": "vipam"},
    })


async def _held(sandbox: Sandbox) -> dict[str, str]:
    """address -> description, for what vipam holds in this VRF."""
    return {
        item["address"].split("/")[0]: item["description"]
        for item in await sandbox.addresses()
        if any(tag.get("slug") == "vipam" or tag.get("name") == "vipam"
               for tag in item.get("tags") or [])
    }


async def test_controller_allocates_exhausts_and_releases_in_netbox(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, netbox_env: NetBoxEnv, sandbox: Sandbox
) -> None:
    await _netbox_pool(kube, netbox_env, sandbox, "198.51.100.240/30")  # two usable addresses
    controller = await start_controller(kubeconfig, cluster_id=CLUSTER)
    try:
        await leader_ready(controller)
        first = await create_service(kube, "first")
        second = await create_service(kube, "second")
        (ip1,) = await addresses_of(emu, "default", "first", timeout=60)
        (ip2,) = await addresses_of(emu, "default", "second", timeout=60)
        held = await _held(sandbox)
        assert set(held) == {ip1, ip2}
        assert f"uid={first['metadata']['uid']}" in held[ip1]
        assert f"service=default/second uid={second['metadata']['uid']}" in held[ip2]
        svc = get_service(emu, "default", "first") or {}
        assert svc["metadata"]["annotations"][names.ANN_ALLOCATED_FROM] == "netbox"

        await create_service(kube, "third")
        failed = await failure_of(emu, "default", "third", timeout=60)
        assert failed["reason"] == "ExternalPool" and "Exhausted" in failed["message"]

        await kube.delete(SERVICES, "default", "first")
        await wait_for(lambda: get_service(emu, "default", "first") is None, 30)
        # the freed address goes back to NetBox, and the waiting Service gets one
        (ip3,) = await addresses_of(emu, "default", "third", timeout=60)
        held = await _held(sandbox)
        assert set(held) == {ip2, ip3}
        assert "service=default/third" in held[ip3]
    finally:
        await controller.stop()


async def test_reconcile_releases_netbox_addresses_whose_service_is_gone(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, netbox_env: NetBoxEnv, sandbox: Sandbox,
    make_backend: object,
) -> None:
    await _netbox_pool(kube, netbox_env, sandbox, "198.51.100.248/29")
    # an allocation left behind by a controller that crashed before the Service was deleted
    backend = make_backend(prefix="198.51.100.248/29", vrf=sandbox.vrf_name)  # type: ignore[operator]
    ghost = await backend.allocate(AllocationKey(CLUSTER, "ghost-uid", "IPv4"),
                                   service="default/ghost")
    controller = await start_controller(
        kubeconfig, cluster_id=CLUSTER, external_grace_seconds=1,
        external_reconcile_seconds=0.5,
    )
    try:
        await leader_ready(controller)
        await create_service(kube, "alive")
        (alive,) = await addresses_of(emu, "default", "alive", timeout=60)

        async def ghost_gone() -> bool:
            return ghost not in await _held(sandbox)

        await wait_for(ghost_gone, 60, "the orphaned NetBox address released")
        assert set(await _held(sandbox)) == {alive}
    finally:
        await controller.stop()
