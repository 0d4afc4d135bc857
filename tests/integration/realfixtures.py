"""The fixtures every suite on the real kube-apiserver shares (import them into a conftest).

`emu` keeps its name for the assertion view (`get_object`, `list_objects`, `stats`): on the real
server it is a `RealApi`, whose `stats` count what the server served (apiserver_request_total).
The controller and the speakers run on their own ServiceAccounts' tokens from config/rbac, so the
server enforces our RBAC; `kube` is the test's own client, as the admin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.kube.client import KubeClient
from tests.integration.controller.harness import ensure_namespace
from tests.realkube import RealApi, RealCluster


@pytest.fixture
def emu(real_cluster: RealCluster) -> RealApi:
    return real_cluster.api


@pytest.fixture
def kubeconfig(real_cluster: RealCluster) -> Path:
    """The controller's own ServiceAccount (config/rbac)."""
    return real_cluster.controller_kubeconfig


@pytest.fixture
def speaker_kubeconfig(real_cluster: RealCluster) -> Path:
    """The speaker's own ServiceAccount (config/rbac)."""
    return real_cluster.speaker_kubeconfig


@pytest.fixture
async def kube(real_cluster: RealCluster) -> AsyncIterator[KubeClient]:
    """The test's own client, as the admin, with the namespaces the suites use."""
    client = await KubeClient.connect(str(real_cluster.admin_kubeconfig), qps=0)
    for namespace in ("default", "kube-system", "shop"):
        await ensure_namespace(client, namespace)
    yield client
    await client.close()
