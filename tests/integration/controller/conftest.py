"""The controller suites run against a real kube-apiserver (tests/realkube.py), with the
controller on its own ServiceAccount token so that the server enforces config/rbac.

`emu` keeps its name for the assertion view (`get_object`, `list_objects`, `stats`): on the
real server it is a `RealApi`. Tests that inject faults the real server cannot produce on cue
(409/429/500 on a chosen request, dropped watches, expired history) use `emulator` and
`emulator_kubeconfig` instead, and say so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.kube.client import KubeClient
from devkit.emulator import Emulator
from tests.integration.controller.harness import CRD_DIR, ensure_namespace
from tests.integration.realfixtures import (  # noqa: F401
    emu,
    kube,
    kubeconfig,
    speaker_kubeconfig,
)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The API emulator, for fault injection only."""
    instance = Emulator(crd_paths=[CRD_DIR])
    async with instance:
        yield instance


@pytest.fixture
def emulator_kubeconfig(emulator: Emulator, tmp_path: Path) -> Path:
    return emulator.write_kubeconfig(tmp_path / "emulator.kubeconfig")


@pytest.fixture
async def emulator_kube(emulator_kubeconfig: Path) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(str(emulator_kubeconfig), qps=0)
    for namespace in ("default", "kube-system", "shop"):
        await ensure_namespace(client, namespace)
    yield client
    await client.close()
