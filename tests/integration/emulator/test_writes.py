"""Create/get/update semantics: metadata, 409s, the lost-update race, status isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
from kubernetes_asyncio.client import ApiException, CoreV1Api, CustomObjectsApi

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import lb_service, reason, status_body, widget

pytestmark = pytest.mark.asyncio
# kubernetes-asyncio sends a dict body to custom-object PATCH as json-patch unless told otherwise
MERGE = "application/merge-patch+json"


async def test_create_sets_server_metadata(core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service("default", lb_service("web"))
    meta = svc.metadata
    assert uuid.UUID(meta.uid)
    assert isinstance(meta.creation_timestamp, datetime)
    assert meta.generation == 1
    assert int(meta.resource_version) > 0
    assert meta.namespace == "default"
    # apiserver defaults the controller reads back
    assert svc.spec.ip_families == ["IPv4"] and svc.spec.ip_family_policy == "SingleStack"
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == 80


async def test_resource_version_is_one_global_counter(core: CoreV1Api,
                                                      custom: CustomObjectsApi) -> None:
    a = await core.create_namespaced_service("default", lb_service("a"))
    w = await custom.create_namespaced_custom_object("example.test", "v1", "default", "widgets",
                                                     widget("w"))
    b = await core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    versions = [int(a.metadata.resource_version), int(w["metadata"]["resourceVersion"]),
                int(b.metadata.resource_version)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert versions[2] - versions[0] == 2


async def test_create_existing_is_already_exists(core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service("dup"))
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("default", lb_service("dup"))
    assert caught.value.status == 409 and reason(caught.value) == "AlreadyExists"


async def test_generate_name(core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map(
        "default", {"metadata": {"generateName": "cfg-"}})
    assert created.metadata.name.startswith("cfg-") and len(created.metadata.name) > 4


async def test_create_in_missing_namespace_is_not_found(core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("nowhere", lb_service("x"))
    assert caught.value.status == 404 and reason(caught.value) == "NotFound"


async def test_get_missing_is_not_found_status(core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_service("missing", "default")
    assert caught.value.status == 404 and reason(caught.value) == "NotFound"
    assert status_body(caught.value)["message"] == 'services "missing" not found'


async def test_put_with_stale_version_conflicts(core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service("default", lb_service("web"))
    svc.metadata.labels = {"a": "1"}
    fresh = await core.replace_namespaced_service("web", "default", svc)
    assert int(fresh.metadata.resource_version) > int(svc.metadata.resource_version)
    svc.metadata.labels = {"a": "2"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_service("web", "default", svc)
    assert caught.value.status == 409 and reason(caught.value) == "Conflict"
    assert (await core.read_namespaced_service("web", "default")).metadata.labels == {"a": "1"}


async def test_put_missing_is_not_found(core: CoreV1Api) -> None:
    body = lb_service("ghost")
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_service("ghost", "default", body)
    assert caught.value.status == 404


async def test_lost_update_race_exactly_one_wins(core: CoreV1Api) -> None:
    """Two writers read the same version and PUT concurrently: one wins, one gets 409."""
    base = await core.create_namespaced_service("default", lb_service("race"))
    first = await core.read_namespaced_service("race", "default")
    second = await core.read_namespaced_service("race", "default")
    first.metadata.annotations = {"writer": "first"}
    second.metadata.annotations = {"writer": "second"}
    results = await asyncio.gather(
        core.replace_namespaced_service("race", "default", first),
        core.replace_namespaced_service("race", "default", second),
        return_exceptions=True,
    )
    conflicts = [r for r in results if isinstance(r, ApiException) and r.status == 409]
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(conflicts) == 1 and len(winners) == 1
    stored = await core.read_namespaced_service("race", "default")
    assert stored.metadata.annotations == winners[0].metadata.annotations
    assert int(stored.metadata.resource_version) == int(base.metadata.resource_version) + 1


async def test_main_resource_write_ignores_status(core: CoreV1Api, emulator: Emulator) -> None:
    await core.create_namespaced_service("default", lb_service("iso"))
    await core.patch_namespaced_service_status(
        "iso", "default", {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    svc = await core.read_namespaced_service("iso", "default")
    svc.status.load_balancer.ingress = []
    svc.metadata.labels = {"changed": "yes"}
    updated = await core.replace_namespaced_service("iso", "default", svc)
    assert updated.metadata.labels == {"changed": "yes"}
    assert [i.ip for i in updated.status.load_balancer.ingress] == ["192.0.2.10"]


async def test_status_write_changes_only_status(core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service("iso2"))
    svc = await core.read_namespaced_service("iso2", "default")
    svc.spec.type = "ClusterIP"
    svc.metadata.labels = {"sneaky": "yes"}
    svc.status.load_balancer.ingress = [{"ip": "192.0.2.11"}]
    updated = await core.replace_namespaced_service_status("iso2", "default", svc)
    assert updated.spec.type == "LoadBalancer"
    assert not updated.metadata.labels
    assert [i.ip for i in updated.status.load_balancer.ingress] == ["192.0.2.11"]


async def test_status_in_create_is_dropped(core: CoreV1Api) -> None:
    body = lb_service("pre")
    body["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.12"}]}}
    created = await core.create_namespaced_service("default", body)
    assert not created.status.load_balancer.ingress


async def test_generation_bumps_on_spec_changes_only(custom: CustomObjectsApi) -> None:
    args = ("example.test", "v1", "default", "widgets")
    created = await custom.create_namespaced_custom_object(*args, widget("gen"))
    assert created["metadata"]["generation"] == 1
    labelled = await custom.patch_namespaced_custom_object(
        *args, "gen", {"metadata": {"labels": {"x": "y"}}}, _content_type=MERGE)
    assert labelled["metadata"]["generation"] == 1
    status = await custom.patch_namespaced_custom_object_status(
        *args, "gen", {"status": {"phase": "Running"}}, _content_type=MERGE)
    assert status["metadata"]["generation"] == 1 and status["status"] == {"phase": "Running"}
    changed = await custom.patch_namespaced_custom_object(*args, "gen", {"spec": {"size": 5}},
                                                          _content_type=MERGE)
    assert changed["metadata"]["generation"] == 2


async def test_noop_write_keeps_resource_version(core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service("default", lb_service("same"))
    again = await core.replace_namespaced_service("same", "default", svc)
    assert again.metadata.resource_version == svc.metadata.resource_version


async def test_custom_resource_status_isolation(custom: CustomObjectsApi) -> None:
    args = ("example.test", "v1", "default", "widgets")
    await custom.create_namespaced_custom_object(*args, widget("st"))
    await custom.patch_namespaced_custom_object_status(*args, "st", {"status": {"phase": "A"}},
                                                       _content_type=MERGE)
    obj = await custom.get_namespaced_custom_object(*args, "st")
    obj["status"] = {"phase": "B"}
    obj["spec"]["color"] = "blue"
    replaced = await custom.replace_namespaced_custom_object(*args, "st", obj)
    assert replaced["status"] == {"phase": "A"} and replaced["spec"]["color"] == "blue"


async def test_cluster_scoped_custom_resource_without_status_subresource(
        custom: CustomObjectsApi) -> None:
    body = {"apiVersion": "example.test/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"mode": "x"}, "status": {"seen": True}}
    created = await custom.create_cluster_custom_object("example.test", "v1", "gadgets", body)
    assert created["status"] == {"seen": True}  # no subresource: status is ordinary data
    assert "namespace" not in created["metadata"]
    fetched = await custom.get_cluster_custom_object("example.test", "v1", "gadgets", "g")
    assert fetched["spec"] == {"mode": "x"}


async def test_create_with_resource_version_is_bad_request(core: CoreV1Api) -> None:
    """Re-creating an object read from the API without clearing its version fails, as it
    does against a real apiserver."""
    svc = await core.create_namespaced_service("default", lb_service("copy"))
    await core.delete_namespaced_service("copy", "default")
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("default", svc)
    assert caught.value.status == 400 and reason(caught.value) == "BadRequest"


async def test_optimistic_concurrency_loses_no_update(core: CoreV1Api) -> None:
    """Eight writers increment one counter by read-modify-write in lockstep rounds: in every
    round exactly one PUT wins and seven get 409, and no increment is ever lost."""
    writers, rounds = 8, 10
    await core.create_namespaced_config_map("default", {"metadata": {"name": "counter"},
                                                        "data": {"n": "0"}})
    barrier = asyncio.Barrier(writers)
    outcomes: list[list[str]] = [[] for _ in range(rounds)]

    async def writer() -> None:
        for round_ in range(rounds):
            current = await core.read_namespaced_config_map("counter", "default")
            await barrier.wait()  # everyone holds the same version before anyone writes
            current.data["n"] = str(int(current.data["n"]) + 1)
            try:
                await core.replace_namespaced_config_map("counter", "default", current)
                outcomes[round_].append("won")
            except ApiException as error:
                assert error.status == 409
                outcomes[round_].append("conflict")
            await barrier.wait()

    await asyncio.gather(*(writer() for _ in range(writers)))
    assert all(sorted(o) == ["conflict"] * (writers - 1) + ["won"] for o in outcomes)
    final = await core.read_namespaced_config_map("counter", "default")
    assert final.data["n"] == str(rounds)
