"""Fixtures: a started emulator (with the test CRDs) and kubernetes-asyncio clients bound to it
through the kubeconfig it writes, i.e. the same path the controller takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

from devkit.emulator import Emulator

FIXTURES = Path(__file__).parent / "fixtures"
WIDGETS_CRD = FIXTURES / "widgets.yaml"


def lb_service(name: str, **spec: object) -> dict[str, object]:
    body: dict[str, object] = {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def widget(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"color": "red", **spec}}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(crd_paths=[WIDGETS_CRD], bookmark_interval=0.2) as emu:
        yield emu


async def make_client(emu: Emulator, tmp_path: Path) -> client.ApiClient:
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig),
                                  client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture
async def api(emulator: Emulator, tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    api_client = await make_client(emulator, tmp_path)
    async with api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def status_body(error: Exception) -> dict[str, object]:
    """The Status object an ApiException carries."""
    import json

    body = json.loads(getattr(error, "body", "") or "{}")
    assert body.get("kind") == "Status", body
    return dict(body)


def reason(error: Exception) -> str:
    return str(status_body(error)["reason"])
