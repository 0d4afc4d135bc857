"""Fixtures for the manifest checks: the rendered install tree and the rendered samples."""

from __future__ import annotations

import pytest

from tests.prereq import require
from tests.unit.manifests.render import CONFIG, SAMPLES, Manifest, kubectl, render


@pytest.fixture(scope="session")
def install() -> tuple[Manifest, ...]:
    require(kubectl() is not None, "kubectl (with built-in kustomize) is not installed")
    return render(CONFIG)


@pytest.fixture(scope="session")
def samples() -> tuple[Manifest, ...]:
    require(kubectl() is not None, "kubectl (with built-in kustomize) is not installed")
    return render(SAMPLES)
