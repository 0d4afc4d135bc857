"""scripts/slim_venv.py on a miniature site-packages (no container needed): it deletes what
the rules name, drops exactly the imports of deleted modules, and the packages still import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.image.containers import REPO


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slim_venv", REPO / "scripts" / "slim_venv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


slim_venv = load()

CLIENT_INIT = '''"""generated"""
from __future__ import absolute_import

__version__ = "36.1.0"

from kubernetes_asyncio.client.api.core_v1_api import CoreV1Api
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.configuration import Configuration
from kubernetes_asyncio.client.models.v1_pod import V1Pod

__all__ = [
    "CoreV1Api",
    "ApiClient",
    "Configuration",
    "V1Pod",
]
'''


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def miniature(site: Path) -> None:
    """The shape of kubernetes-asyncio 36 and netaddr 1.3 where the rules apply."""
    write(site, {
        "kubernetes_asyncio/__init__.py":
            "import kubernetes_asyncio.client as client\nimport kubernetes_asyncio.config\n",
        "kubernetes_asyncio/README.md": "docs\n",
        "kubernetes_asyncio/client/__init__.py": CLIENT_INIT,
        "kubernetes_asyncio/client/api_client.py":
            "import kubernetes_asyncio.client.models\nclass ApiClient: pass\n",
        "kubernetes_asyncio/client/configuration.py": "class Configuration: pass\n",
        "kubernetes_asyncio/client/test_rest.py": "raise AssertionError('a test')\n",
        "kubernetes_asyncio/client/api/__init__.py":
            "from kubernetes_asyncio.client.api.core_v1_api import CoreV1Api\n",
        "kubernetes_asyncio/client/api/core_v1_api.py": "class CoreV1Api: pass\n",
        "kubernetes_asyncio/client/models/__init__.py":
            "from kubernetes_asyncio.client.models.v1_pod import V1Pod\n",
        "kubernetes_asyncio/client/models/v1_pod.py": "class V1Pod: pass\n",
        "kubernetes_asyncio/config/__init__.py":
            "from kubernetes_asyncio.client import ApiClient, Configuration\n",
        "kubernetes_asyncio/config/kube_config_test.py": "raise AssertionError('a test')\n",
        "netaddr/__init__.py": "from netaddr.eui import EUI\n",
        "netaddr/eui/__init__.py": "class EUI: pass\n",
        "netaddr/eui/ieee.py": "OUI_INDEX = {}\n",
        "netaddr/eui/oui.txt": "x" * 1000,
        "netaddr/eui/oui.idx": "x",
        "netaddr/eui/iab.txt": "x",
        "netaddr/eui/iab.idx": "x",
        "netaddr/tests/__init__.py": "",
    })


def test_slims_and_keeps_what_vipam_imports(tmp_path: Path) -> None:
    miniature(tmp_path)
    report = slim_venv.slim(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "kubernetes_asyncio/__init__.py",
        "kubernetes_asyncio/client/__init__.py",
        "kubernetes_asyncio/client/api/__init__.py",
        "kubernetes_asyncio/client/api_client.py",
        "kubernetes_asyncio/client/configuration.py",
        "kubernetes_asyncio/client/models/__init__.py",
        "kubernetes_asyncio/config/__init__.py",
        "netaddr/__init__.py",
        "netaddr/eui/__init__.py",
        "netaddr/eui/ieee.py",
    ]
    init = (tmp_path / "kubernetes_asyncio/client/__init__.py").read_text()
    assert init == CLIENT_INIT.replace(
        "from kubernetes_asyncio.client.api.core_v1_api import CoreV1Api\n", ""
    ).replace("from kubernetes_asyncio.client.models.v1_pod import V1Pod\n", "").replace(
        '    "CoreV1Api",\n', "").replace('    "V1Pod",\n', "")
    assert (tmp_path / "kubernetes_asyncio/client/models/__init__.py").read_text() == ""
    assert any("2 imports dropped from kubernetes_asyncio/client/__init__.py" in line
               for line in report)
    probe = ("import kubernetes_asyncio, netaddr\n"
             "from kubernetes_asyncio.client import ApiClient, Configuration\n"
             "from kubernetes_asyncio import client\n"
             "assert not hasattr(client, 'CoreV1Api')\n"
             "print(sorted(client.__all__))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path)}, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ApiClient', 'Configuration']"


def test_a_rule_that_matches_nothing_fails_the_build(tmp_path: Path) -> None:
    miniature(tmp_path)
    for path in (tmp_path / "netaddr" / "eui").glob("oui.*"):
        path.unlink()
    with pytest.raises(SystemExit, match=r"netaddr/eui/oui\.\*.*matches nothing"):
        slim_venv.slim(tmp_path)
