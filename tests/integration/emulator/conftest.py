"""Differential fixtures: every behaviour test runs against the emulator AND a real
kube-apiserver with the same assertions, so a divergence fails CI.

`server` is parametrized (`emulator`, `real`). It gives the test its own namespace (`ns`), an
admin kubeconfig, raw HTTP (`server.session()`, with the real server's token and CA) and
read-back helpers (`get_object`, `list_objects`) that never go through the client under test.
Where the two servers differ on purpose, a test asserts each one's documented behaviour on
`server.real` and says why; tests that need an emulator-only knob (fault injection, history
size, the CLI) use the `emulator` fixture and stay emulator-only.

On the real server the test CRDs (fixtures/widgets.yaml) are installed once per session and
every test's namespace and cluster-scoped names are unique; `real_cluster` removes Services,
Nodes and the like after each test.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config

from devkit.apiserver import ApiServer
from devkit.emulator import Emulator
from tests.realkube import RealCluster, unique

FIXTURES = Path(__file__).parent / "fixtures"
WIDGETS_CRD = FIXTURES / "widgets.yaml"


def lb_service(name: str, **spec: object) -> dict[str, object]:
    body: dict[str, object] = {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def widget(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"color": "red", **spec}}


@dataclass
class Server:
    """One API server under test, as the admin."""

    name: str  # "emulator" | "real"
    url: str
    ns: str  # this test's own namespace
    kubeconfig: Path
    emulator: Emulator | None = None
    real_server: ApiServer | None = None

    @property
    def real(self) -> bool:
        return self.real_server is not None

    def session(self) -> aiohttp.ClientSession:
        """Raw HTTP to the server (admin token and CA on the real one)."""
        if self.real_server is None:
            return aiohttp.ClientSession()
        context = ssl.create_default_context(cafile=str(self.real_server.ca_file))
        return aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.real_server.admin_token}"},
            connector=aiohttp.TCPConnector(ssl=context))

    def unique(self, prefix: str) -> str:
        """A cluster-scoped name no other test of the session uses."""
        return unique(prefix)

    def get_object(self, resource: str, namespace: str | None,
                   name: str) -> dict[str, Any] | None:
        if self.emulator is not None:
            return self.emulator.get_object(resource, namespace, name)
        status, body = self._request("GET", _path(resource, namespace, name))
        if status == 404:
            return None
        assert status == 200, (resource, namespace, name, status, body[:300])
        return dict(json.loads(body))

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        if self.emulator is not None:
            return self.emulator.list_objects(resource, namespace)
        status, body = self._request("GET", _path(resource, namespace, None))
        assert status == 200, (resource, status, body[:300])
        return list(json.loads(body)["items"])

    def _request(self, method: str, path: str) -> tuple[int, bytes]:
        assert self.real_server is not None
        return self.real_server.request(method, path)


def _path(resource: str, namespace: str | None, name: str | None) -> str:
    """`v1/services`, `events.k8s.io/v1/events` -> a REST path (namespaced when given one)."""
    *group_version, plural = resource.strip("/").split("/")
    prefix = "/api/" if group_version == ["v1"] else "/apis/"
    path = prefix + "/".join(group_version)
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    return path + (f"/{name}" if name else "")


@pytest.fixture(scope="session")
def widget_crds(apiserver: ApiServer) -> ApiServer:
    """The test CRDs on the session's real server, installed once."""
    apiserver.kubectl("apply", "--validate=strict", "-f", str(WIDGETS_CRD))
    apiserver.kubectl("wait", "--for", "condition=Established", "--timeout", "60s",
                      "crd/widgets.example.test", "crd/gadgets.example.test")
    return apiserver


@pytest.fixture(params=["emulator", "real"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    ns = unique("emu")
    if request.param == "emulator":
        async with Emulator(crd_paths=[WIDGETS_CRD], bookmark_interval=0.2) as emu:
            emu.store.create(emu.registry.resolve("v1/namespaces"), None,
                             {"metadata": {"name": ns}})
            yield Server("emulator", emu.url, ns, emu.write_kubeconfig(tmp_path / "kubeconfig"),
                         emulator=emu)
        return
    cluster: RealCluster = request.getfixturevalue("real_cluster")
    real = request.getfixturevalue("widget_crds")
    real.json("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    try:
        yield Server("real", real.url, ns, cluster.admin_kubeconfig, real_server=real)
    finally:
        # namespaces are never finalized without kube-controller-manager: empty it instead
        for plural in ("configmaps", "events", "endpoints"):
            real.request("DELETE", f"/api/v1/namespaces/{ns}/{plural}")
        real.request("DELETE", f"/apis/example.test/v1/namespaces/{ns}/widgets")
        real.request("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator alone, for tests of its own knobs (faults, history, stats)."""
    async with Emulator(crd_paths=[WIDGETS_CRD], bookmark_interval=0.2) as emu:
        yield emu


async def make_client(emu: Emulator, tmp_path: Path) -> client.ApiClient:
    return await client_for(emu.write_kubeconfig(tmp_path / "kubeconfig"))


async def client_for(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig),
                                  client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture
async def api(server: Server) -> AsyncIterator[client.ApiClient]:
    api_client = await client_for(server.kubeconfig)
    async with api_client:
        yield api_client


@pytest.fixture
def ns(server: Server) -> str:
    return server.ns


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture
async def emulator_api(emulator: Emulator, tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    api_client = await make_client(emulator, tmp_path)
    async with api_client:
        yield api_client


@pytest.fixture
def emulator_core(emulator_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(emulator_api)


def status_body(error: Exception) -> dict[str, object]:
    """The Status object an ApiException carries."""
    body = json.loads(getattr(error, "body", "") or "{}")
    assert body.get("kind") == "Status", body
    return dict(body)


def reason(error: Exception) -> str:
    return str(status_body(error)["reason"])
