from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ccm.kube.client import KubeClient
from tests.realkube import RealCluster


@pytest.fixture
async def admin(real_cluster: RealCluster) -> AsyncIterator[KubeClient]:
    """The test's own client, as the cluster admin (what the old controller and the user do)."""
    client = await KubeClient.connect(str(real_cluster.admin_kubeconfig), qps=0)
    yield client
    await client.close()
