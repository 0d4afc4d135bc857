"""Fixtures for the image tests: the image that `scripts/image` built, and containers that are
removed by id after each test.

The tests need root and podman. On a developer's machine without them they skip and say how to
get them; under CI they fail (tests/prereq.py), and CI has them: `scripts/image start`, early in
scripts/test, installs podman and builds the image while other tests run, and the `image`
fixture waits for that build (or builds now, if nobody started one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.image.containers import SCRIPT, Containers, podman
from tests.prereq import IN_CI, require


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: builds and runs the container image with podman (root; CI builds it)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Image tests last (the rest keeps its order): pytest would otherwise run tests/image
    first, and wait there for the build that `scripts/image start` began a moment earlier."""
    items.sort(key=lambda item: item.get_closest_marker("image") is not None)


@pytest.fixture(scope="session")
def image() -> str:
    """The tag of the image built from this checkout (waits for `scripts/image start`)."""
    require(os.geteuid() == 0, "image tests need root (podman with runc, network namespaces)")
    require(
        shutil.which("podman") is not None or IN_CI,
        "image tests need podman: `scripts/image build` (as root) installs it and builds the image",
    )
    done = subprocess.run([str(SCRIPT), "wait"], capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"scripts/image wait failed:\n{done.stderr[-4000:]}"
    tag = done.stdout.strip().splitlines()[-1]
    podman("image", "exists", tag)
    return tag


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    started = Containers(image)
    try:
        yield started
    finally:
        left = started.remove_all()
        assert not left, f"containers left behind: {left}"
