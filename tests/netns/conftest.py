"""Fixtures for the real-kernel tests: a fresh segment per test, always torn down."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.netns.lab import Lab
from tests.prereq import require


@pytest.fixture
def privileged() -> None:
    require(
        os.geteuid() == 0 and shutil.which("ip") is not None,
        "netns tests need root and iproute2",
    )


@pytest.fixture
def lab(privileged: None) -> Iterator[Lab]:
    built = Lab.create(node_count=2)
    try:
        yield built
    finally:
        built.destroy()
