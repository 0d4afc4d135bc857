"""The wheel ships the product and nothing else: no emulator, playground, relay or test server.

The build runs on a copy of the checkout (development tooling included, so that leaving it out is
the packaging's doing, not the copy's).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("pools", "ccm", "devkit", "tests"):
        shutil.copytree(REPO / package, src / package, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(src)],
        check=True, capture_output=True, text=True,
    )
    [path] = out.glob("vipam-*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def wheel_names(wheel: zipfile.ZipFile) -> list[str]:
    return wheel.namelist()


def test_the_wheel_holds_both_product_packages(wheel_names: list[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_names if not name.startswith("vipam-")}
    assert tops == {"ccm", "pools"}
    for module in ("ccm/cli.py", "ccm/controller/sync.py", "ccm/speaker/process.py",
                   "pools/allocator.py", "pools/external/netbox.py"):
        assert module in wheel_names


@pytest.mark.parametrize("fragment", [
    "emulator", "playground", "ccm/relay.py", "reference", "devkit", "tests/", "kube/apply.py",
])
def test_no_development_tooling_in_the_wheel(wheel_names: list[str], fragment: str) -> None:
    assert [name for name in wheel_names if fragment in name] == []


def test_runtime_requirements_leave_out_test_only_packages(
    wheel: zipfile.ZipFile, wheel_names: list[str]
) -> None:
    [metadata] = [name for name in wheel_names if name.endswith(".dist-info/METADATA")]
    requires = [
        line.split(":", 1)[1].strip()
        for line in wheel.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    runtime = [req for req in requires if "extra ==" not in req]
    assert any(req.startswith("kubernetes-asyncio") for req in runtime)
    assert not [req for req in runtime if req.split(">")[0].split("=")[0].strip() == "scapy"]
