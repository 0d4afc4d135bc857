"""DELETE with and without finalizers, preconditions, and namespace teardown."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiException, CoreV1Api, V1DeleteOptions, V1Preconditions

from tests.integration.emulator.conftest import Server, lb_service, reason

CLEANUP = "service.kubernetes.io/load-balancer-cleanup"


async def test_delete_without_finalizers_removes_object(ns: str, core: CoreV1Api,
                                                        server: Server) -> None:
    await core.create_namespaced_service(ns, lb_service("gone"))
    await core.delete_namespaced_service("gone", ns)
    assert server.get_object("v1/services", ns, "gone") is None
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_service("gone", ns)
    assert caught.value.status == 404


async def test_finalizer_holds_deletion_until_removed(ns: str, core: CoreV1Api,
                                                      server: Server) -> None:
    body = lb_service("held")
    body["metadata"]["finalizers"] = [CLEANUP]  # type: ignore[index]
    await core.create_namespaced_service(ns, body)
    await core.delete_namespaced_service("held", ns)
    held = await core.read_namespaced_service("held", ns)
    assert held.metadata.deletion_timestamp is not None
    first_rv = held.metadata.resource_version
    await core.delete_namespaced_service("held", ns)  # again: nothing changes
    assert (await core.read_namespaced_service("held", ns)).metadata.resource_version \
        == first_rv
    with pytest.raises(ApiException) as caught:  # no new finalizers while deleting
        await core.patch_namespaced_service("held", ns, {"metadata": {
            "finalizers": ["other.example/x"]}})
    assert caught.value.status == 422
    await core.patch_namespaced_service("held", ns, {"metadata": {
        "$deleteFromPrimitiveList/finalizers": [CLEANUP]}})
    assert server.get_object("v1/services", ns, "held") is None


async def test_delete_precondition_on_resource_version(ns: str, core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service(ns, lb_service("pre"))
    await core.patch_namespaced_service("pre", ns, {"metadata": {"labels": {"a": "b"}}})
    options = V1DeleteOptions(preconditions=V1Preconditions(
        resource_version=svc.metadata.resource_version))
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_service("pre", ns, body=options)
    assert caught.value.status == 409 and reason(caught.value) == "Conflict"


async def test_delete_collection_by_label(ns: str, core: CoreV1Api, server: Server) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        await core.create_namespaced_config_map(ns, {"metadata": {
            "name": name, "labels": {"tier": tier}}})
    await core.delete_collection_namespaced_config_map(ns, label_selector="tier=x")
    names = [o["metadata"]["name"] for o in server.list_objects("v1/configmaps", ns)]
    assert names == ["c"]


async def test_namespace_deletion_waits_for_finalized_objects(core: CoreV1Api,
                                                              server: Server) -> None:
    """Deleting a namespace marks it Terminating at once and refuses new content (the API
    server's NamespaceLifecycle admission). Emptying it and removing it is the namespace
    controller's work: the emulator does it itself; a real server leaves it to
    kube-controller-manager, which the test server does not run, so there the namespace stays
    Terminating with its contents (asserted, so a changed harness shows up)."""
    team = server.unique("team")
    await core.create_namespace({"metadata": {"name": team}})
    body = lb_service("held")
    body["metadata"]["finalizers"] = [CLEANUP]  # type: ignore[index]
    await core.create_namespaced_service(team, body)
    await core.create_namespaced_config_map(team, {"metadata": {"name": "plain"}})
    await core.delete_namespace(team)
    ns = await core.read_namespace(team)
    assert ns.status.phase == "Terminating"
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_config_map(team, {"metadata": {"name": "late"}})
    assert caught.value.status == 403 and reason(caught.value) == "Forbidden"
    if server.real:
        assert server.get_object("v1/configmaps", team, "plain") is not None
        assert server.get_object("v1/namespaces", None, team) is not None
        await core.delete_namespaced_config_map("plain", team)
        await core.patch_namespaced_service("held", team, {"metadata": {"finalizers": None}},
                                            _content_type="application/merge-patch+json")
        return
    assert server.get_object("v1/configmaps", team, "plain") is None
    await core.patch_namespaced_service("held", team, {"metadata": {"finalizers": None}},
                                        _content_type="application/merge-patch+json")
    assert server.get_object("v1/namespaces", None, team) is None


async def test_delete_collection_across_namespaces_is_not_allowed(ns: str, server: Server,
                                                                  core: CoreV1Api) -> None:
    await core.create_namespaced_config_map(ns, {"metadata": {"name": "stay"}})
    async with server.session() as session, session.delete(
            server.url + "/api/v1/configmaps") as response:
        assert response.status == 405
    assert server.get_object("v1/configmaps", ns, "stay") is not None
