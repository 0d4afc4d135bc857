"""Still on the API emulator; moving to the real server (tests/realkube.py) is in progress."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.kube.client import KubeClient
from devkit.emulator import Emulator
from tests.integration.controller.harness import CRD_DIR, ensure_namespace


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(crd_paths=[CRD_DIR])
    async with emulator:
        yield emulator


@pytest.fixture
def kubeconfig(emu: Emulator, tmp_path: Path) -> Path:
    return emu.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
async def kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(str(kubeconfig), qps=0)
    for namespace in ("default", "kube-system", "shop"):
        await ensure_namespace(client, namespace)
    yield client
    await client.close()
