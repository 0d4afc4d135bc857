"""The built image on its own: entrypoint, user, read-only root, contents, size.

Every container runs with the controller Deployment's securityContext (read-only root
filesystem, UID 65532, all capabilities dropped, /tmp a small tmpfs) and no network, unless a
test says otherwise: what works here works under the manifests.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.image.containers import REPO, Containers, podman, security_flags
from tests.unit.manifests.test_lock import locked

pytestmark = pytest.mark.image

CONTROLLER = [*security_flags("controller/deployment.yaml"), "--network", "none"]
PYTHON = ["--entrypoint", "/opt/vipam/bin/python"]
VENV_LAYER_LIMIT = 60e6  # bytes; the target (was 124 MB)


def version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def test_version(containers: Containers) -> None:
    done = containers.run(CONTROLLER, ["version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"vipam {version()}\n"


def test_help_is_the_default_command(containers: Containers) -> None:
    default = containers.run(CONTROLLER, [])
    explicit = containers.run(CONTROLLER, ["--help"])
    assert default.returncode == explicit.returncode == 0, default.stderr + explicit.stderr
    assert default.stdout == explicit.stdout
    assert default.stdout.startswith("usage: vipam")
    for command in ("controller", "speaker", "check", "version"):
        assert command in default.stdout


def test_runs_as_65532_by_default(image: str, containers: Containers) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["vipam"]
    # no --user: the image's own default
    done = containers.run(
        ["--read-only", "--network", "none", *PYTHON],
        ["-c", "import os, pwd; print(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid())[0])"],
    )
    assert done.stdout.split() == ["65532", "65532", "vipam"], done.stderr


def test_every_module_imports_on_a_read_only_root_from_bytecode(containers: Containers) -> None:
    """All of ccm and pools import (so trimming the dependencies broke nothing vipam imports),
    nothing can be written outside /tmp, and no module is compiled at start: every module
    comes from the bytecode shipped in the image (`python -v` names the file it loads)."""
    script = """
import importlib, os, pkgutil, sys
import ccm, pools
names = [m.name for pkg in (ccm, pools)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')
         if not m.name.endswith('.__main__')]  # that one runs the CLI
for name in names:
    importlib.import_module(name)
for where in ('/', '/opt/vipam', '/etc'):
    try:
        open(os.path.join(where, 'probe'), 'w')
    except OSError as exc:
        assert exc.errno == 30, (where, exc)  # EROFS
    else:
        raise AssertionError(where + ' is writable')
open('/tmp/probe', 'w').write('ok')
print(len(names), 'modules')
"""
    done = containers.run([*CONTROLLER, *PYTHON], ["-v", "-c", script])
    assert done.returncode == 0, done.stderr[-3000:]
    count = int(done.stdout.split()[0])
    assert count > 50, done.stdout
    loaded = re.findall(r"^# code object from '?([^'\n]+)'?$", done.stderr, re.MULTILINE)
    venv = [path for path in loaded if path.startswith("/opt/vipam/")]
    assert len(venv) > count, "python -v names the file of every module it loads"
    from_source = [path for path in venv if path.endswith(".py")]
    assert not from_source, f"compiled at start (no usable .pyc): {from_source[:10]}"


def test_runtime_venv_holds_the_lock_and_vipam_only(containers: Containers) -> None:
    """Exactly the hashed lock plus vipam: no pip, setuptools, wheel, no test-only packages
    (scapy), no pip executables; and no compiler or build tool anywhere on PATH. (The base
    image's own pip, outside the venv, stays: the official python image has one too, and the
    venv's interpreter cannot import it.)"""
    script = """
import importlib.metadata as md, importlib.util, json, os
print(json.dumps({
    'dists': sorted((d.metadata['Name'], d.version) for d in md.distributions()),
    'modules': [m for m in ('pip', 'setuptools', 'wheel', '_distutils_hack', 'scapy')
                if importlib.util.find_spec(m)],
    'bin': sorted(os.listdir('/opt/vipam/bin')),
}))
"""
    done = containers.run([*CONTROLLER, *PYTHON], ["-c", script])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    from packaging.utils import canonicalize_name

    dists = {canonicalize_name(name): version for name, version in found["dists"]}
    expected = {name: pin for name, (pin, _) in locked().items()} | {"vipam": version()}
    assert dists == expected
    assert found["modules"] == []
    assert not [name for name in found["bin"] if re.match(r"(pip|easy_install|wheel)", name)]
    tools = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as")
    probe = containers.run(
        [*CONTROLLER, "--entrypoint", "/bin/sh"],
        ["-c", "for t in " + " ".join(tools) + "; do command -v $t; done; true"],
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [], f"build tools in the image: {probe.stdout.split()}"


# the samples that declare vipam objects (services.yaml holds only Services: `check` refuses a
# file with no vipam object, as it must)
SAMPLES = sorted(p for p in (REPO / "config" / "samples").glob("*.yaml")
                 if re.search(r"^kind: (IPPool|L2Advertisement|BGPAdvertisement|BGPPeer)\b",
                              p.read_text(), re.M))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name)
def test_check_reads_the_samples_from_stdin(containers: Containers, sample: Path) -> None:
    """`podman run -i IMAGE check /dev/stdin < file`: what the README tells users to do."""
    done = containers.run(CONTROLLER, ["check", "/dev/stdin"], input=sample.read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    ours = sum(1 for line in sample.read_text().splitlines()
               if re.match(r"kind: (IPPool|L2Advertisement|BGPAdvertisement|BGPPeer)\b", line))
    # other kinds in a sample (a Service, a Secret) are named as skipped, never validated
    assert re.fullmatch(rf"ok: {ours} object\(s\) valid(, \d+ other object\(s\) skipped)?\n",
                        done.stdout), done.stdout


def test_check_reports_a_bad_pool_from_stdin(containers: Containers) -> None:
    bad = """apiVersion: vipam.io/v1alpha1
kind: IPPool
metadata: {name: lan}
spec: {addresses: ["192.0.2.0/24", "10.0.0.300/24"]}
"""
    done = containers.run(CONTROLLER, ["check", "/dev/stdin"], input=bad)
    assert done.returncode == 1
    assert "IPPool/lan: addresses[1]" in done.stdout, done.stdout


def test_no_build_time_certificate_in_the_image(containers: Containers) -> None:
    """The build may mount the host's CA bundle (for a TLS-re-signing proxy); none of the
    host's own added CAs may end up in the image."""
    local = sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
    if not local:
        pytest.skip("this host adds no CA of its own, so there is nothing that could leak")
    done = containers.run([*CONTROLLER, "--entrypoint", "/bin/cat"],
                          ["/etc/ssl/certs/ca-certificates.crt"])
    assert done.returncode == 0, done.stderr
    bundle = re.sub(r"\s", "", done.stdout)
    for cert in local:
        body = re.sub(r"\s|-----[A-Z ]+-----", "", cert.read_text())
        assert body and body not in bundle, f"{cert} is in the image's CA bundle"


def test_venv_layer_is_small(image: str) -> None:
    history = json.loads(podman("history", "--format", "json", image).stdout)
    venv = [layer for layer in history
            if "COPY" in layer["CreatedBy"] and "/opt/vipam" in layer["CreatedBy"]]
    assert len(venv) == 1, [layer["CreatedBy"] for layer in history]
    assert venv[0]["size"] <= VENV_LAYER_LIMIT, f"venv layer {venv[0]['size'] / 1e6:.1f} MB"
    others = [layer for layer in history if layer is not venv[0]
              and "ADD file:" not in layer["CreatedBy"]]  # the base image's root filesystem
    assert sum(layer["size"] for layer in others) < 1e6, "only the venv is added to the base"
