"""Write requests per allocation, counted AT THE REAL SERVER (apiserver_request_total).

The issue's target: at most 2 writes on the Service per new allocation (the object: finalizer,
`vipam.io/allocated-from`, spec.loadBalancerIP; then status), with Events counted apart.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ccm.contract import names
from ccm.kube.client import KubeClient
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    events_for,
    leading_controller,
    service_body,
    wait_for,
)
from tests.realkube import RealApi

SERVICES = 6


async def test_a_new_allocation_costs_at_most_two_service_writes(
    emu: RealApi, kube: KubeClient, kubeconfig: Path
) -> None:
    view: Any = emu  # the harness helpers are typed for the emulator's view; RealApi is one too
    await create_pool(kube, "v4", addresses=["192.0.2.0/28"])
    async with leading_controller(kubeconfig) as controller:
        emu.reset_stats()
        for index in range(SERVICES):
            await create_service(kube, f"w{index}")
        for index in range(SERVICES):
            assert await addresses_of(view, "default", f"w{index}")
        def all_events() -> bool:
            return all(events_for(view, f"w{i}", names.REASON_ALLOCATED)
                       for i in range(SERVICES))

        assert await wait_for(all_events, 10)
        delta = emu.stats.delta()
    recorded = controller.recorder.recorded  # read after stop: its last increment has landed
    by_kind: dict[str, int] = {}
    for (verb, _group, resource, sub), count in delta.items():
        if resource == "services" and verb in {"PUT", "PATCH"}:
            by_kind[f"{verb} {resource}/{sub}" if sub else f"{verb} {resource}"] = count
    service_writes = sum(by_kind.values())
    assert service_writes <= 2 * SERVICES, by_kind
    # one patch of the object and one of status per Service, nothing more
    assert by_kind == {"PATCH services": SERVICES, "PATCH services/status": SERVICES}, by_kind
    # the test's own creates are the only POSTs on services
    assert sum(n for (v, _g, r, _s), n in delta.items() if v == "POST" and r == "services") \
        == SERVICES
    # Events are counted apart: one per allocation, none folded away here
    event_writes = sum(n for (v, _g, r, _s), n in delta.items()
                       if r == "events" and v in {"POST", "PATCH"})
    assert event_writes == SERVICES == recorded


async def test_the_trimmed_cache_loses_nothing_on_the_server(
    emu: RealApi, kube: KubeClient, kubeconfig: Path
) -> None:
    """The controller caches only the fields it reads and writes merge patches of what it
    changes: the server keeps the creator's managedFields, kubectl's last-applied copy and
    every field the controller never reads."""
    view: Any = emu
    await create_pool(kube, "v4", addresses=["192.0.2.0/28"])
    body = service_body("kept", selector={"app": "kept"}, sessionAffinity="ClientIP",
                        ports=[("TCP", 80), ("UDP", 53)])
    async with leading_controller(kubeconfig) as controller:
        # created by kubectl --save-config: its own managedFields entry and last-applied copy
        await asyncio.to_thread(
            emu.server.kubectl, "create", "--save-config", "-f", "-", input=json.dumps(body)
        )
        assert await addresses_of(view, "default", "kept")
        cached = controller.services.cache["default/kept"]
        assert "managedFields" not in cached["metadata"]
        assert "kubectl.kubernetes.io/last-applied-configuration" not in cached["metadata"][
            "annotations"]
        assert not {"selector", "sessionAffinity", "clusterIP", "clusterIPs"} & set(cached["spec"])
        assert cached["spec"]["ports"] == [{"port": 80, "protocol": "TCP"},
                                           {"port": 53, "protocol": "UDP"}]
    stored = emu.get_object("services", "default", "kept")
    assert stored is not None
    managers = {entry["manager"] for entry in stored["metadata"]["managedFields"]}
    assert "kubectl-create" in managers, managers  # survived the controller's patches
    assert len(managers) >= 2, managers  # and the controller's own entry was added
    spec = stored["spec"]
    assert spec["selector"] == {"app": "kept"} and spec["sessionAffinity"] == "ClientIP"
    assert spec["clusterIP"] and [p["name"] for p in spec["ports"]] == ["tcp-80", "udp-53"]
    assert all(p.get("targetPort") for p in spec["ports"])
    annotations = stored["metadata"]["annotations"]
    assert json.loads(annotations["kubectl.kubernetes.io/last-applied-configuration"])[
        "spec"]["selector"] == {"app": "kept"}
    assert annotations[names.ANN_ALLOCATED_FROM] == "v4"
    assert stored["metadata"]["finalizers"] == [names.FINALIZER]
