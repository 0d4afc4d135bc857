"""DELETE with and without finalizers, preconditions, and namespace teardown."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiException, CoreV1Api, V1DeleteOptions, V1Preconditions

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import lb_service, reason

CLEANUP = "service.kubernetes.io/load-balancer-cleanup"


async def test_delete_without_finalizers_removes_object(core: CoreV1Api,
                                                        emulator: Emulator) -> None:
    await core.create_namespaced_service("default", lb_service("gone"))
    await core.delete_namespaced_service("gone", "default")
    assert emulator.get_object("v1/services", "default", "gone") is None
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_service("gone", "default")
    assert caught.value.status == 404


async def test_finalizer_holds_deletion_until_removed(core: CoreV1Api,
                                                      emulator: Emulator) -> None:
    body = lb_service("held")
    body["metadata"]["finalizers"] = [CLEANUP]  # type: ignore[index]
    await core.create_namespaced_service("default", body)
    await core.delete_namespaced_service("held", "default")
    held = await core.read_namespaced_service("held", "default")
    assert held.metadata.deletion_timestamp is not None
    first_rv = held.metadata.resource_version
    await core.delete_namespaced_service("held", "default")  # again: nothing changes
    assert (await core.read_namespaced_service("held", "default")).metadata.resource_version \
        == first_rv
    with pytest.raises(ApiException) as caught:  # no new finalizers while deleting
        await core.patch_namespaced_service("held", "default", {"metadata": {
            "finalizers": ["other.example/x"]}})
    assert caught.value.status == 422
    await core.patch_namespaced_service("held", "default", {"metadata": {
        "$deleteFromPrimitiveList/finalizers": [CLEANUP]}})
    assert emulator.get_object("v1/services", "default", "held") is None


async def test_delete_precondition_on_resource_version(core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service("default", lb_service("pre"))
    await core.patch_namespaced_service("pre", "default", {"metadata": {"labels": {"a": "b"}}})
    options = V1DeleteOptions(preconditions=V1Preconditions(
        resource_version=svc.metadata.resource_version))
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_service("pre", "default", body=options)
    assert caught.value.status == 409 and reason(caught.value) == "Conflict"


async def test_delete_collection_by_label(core: CoreV1Api, emulator: Emulator) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        await core.create_namespaced_config_map("default", {"metadata": {
            "name": name, "labels": {"tier": tier}}})
    await core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    names = [o["metadata"]["name"] for o in emulator.list_objects("v1/configmaps", "default")]
    assert names == ["c"]


async def test_namespace_deletion_waits_for_finalized_objects(core: CoreV1Api,
                                                              emulator: Emulator) -> None:
    await core.create_namespace({"metadata": {"name": "team"}})
    body = lb_service("held")
    body["metadata"]["finalizers"] = [CLEANUP]  # type: ignore[index]
    await core.create_namespaced_service("team", body)
    await core.create_namespaced_config_map("team", {"metadata": {"name": "plain"}})
    await core.delete_namespace("team")
    ns = await core.read_namespace("team")
    assert ns.status.phase == "Terminating"
    assert emulator.get_object("v1/configmaps", "team", "plain") is None
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_config_map("team", {"metadata": {"name": "late"}})
    assert caught.value.status == 403
    await core.patch_namespaced_service("held", "team", {"metadata": {"finalizers": None}},
                                        _content_type="application/merge-patch+json")
    assert emulator.get_object("v1/namespaces", None, "team") is None


async def test_delete_collection_across_namespaces_is_not_allowed(emulator: Emulator,
                                                                  core: CoreV1Api) -> None:
    import aiohttp

    await core.create_namespaced_config_map("default", {"metadata": {"name": "stay"}})
    async with aiohttp.ClientSession() as session, session.delete(
            emulator.url + "/api/v1/configmaps") as response:
        assert response.status == 405
    assert emulator.get_object("v1/configmaps", "default", "stay") is not None
