"""Fixtures for the real-kernel tests: a fresh segment per test, always torn down and checked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.netns.lab import Lab, namespaces
from tests.prereq import require


@pytest.fixture
def privileged() -> None:
    require(
        os.geteuid() == 0 and shutil.which("ip") is not None,
        "netns tests need root and iproute2",
    )


@pytest.fixture
def bird_available(privileged: None) -> None:
    require(
        shutil.which("bird") is not None and shutil.which("birdc") is not None,
        "BGP tests need BIRD 2 (Debian package bird2)",
    )


def _teardown(lab: Lab) -> None:
    """Destroy the lab, then fail the test if anything it made is still around."""
    strays = lab.destroy()
    assert not strays, f"processes outlived the test in its namespaces (killed): {strays}"
    assert not set(lab.all_namespaces()) & namespaces(), "namespaces left behind"
    for process in lab.processes:
        assert process.poll() is not None, f"pid {process.pid} still running"


@pytest.fixture
def lab(privileged: None) -> Iterator[Lab]:
    built = Lab.create(node_count=2)
    try:
        yield built
    finally:
        _teardown(built)


@pytest.fixture
def bgp_lab(bird_available: None) -> Iterator[Lab]:
    built = Lab.create(node_count=1)
    try:
        yield built
    finally:
        _teardown(built)
