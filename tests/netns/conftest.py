"""Fixtures for the real-kernel tests: a fresh segment per test, or the whole-path site shared
by a package; always torn down and checked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from devkit.apiserver import assets_dir, missing_reason
from tests.netns.lab import Lab, namespaces
from tests.netns.site import Site, kube_proxy_binary
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


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The whole-path site (tests/netns/site.py), shared by the modules that measure the path:
    built once, torn down after the last of them, checked for leftovers."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None,
            "the whole-path tests need root and iproute2")
    why = missing_reason()
    require(why is None, why or "")
    assets = assets_dir()
    assert assets is not None
    proxy = kube_proxy_binary(assets)
    require(proxy is not None,
            "no kube-proxy: put it beside kube-apiserver (scripts/k8s-assets) or set "
            "VIPAM_KUBE_PROXY")
    assert proxy is not None
    for tool in ("iptables-save", "ip6tables-save", "nft"):
        require(shutil.which(tool) is not None, f"kube-proxy needs {tool} (iptables, nftables)")
    built = Site.build(tmp_path_factory.mktemp("site"), proxy)
    try:
        built.populate()
        yield built
    finally:
        strays = built.destroy()
        assert not strays, f"processes outlived the site in its namespaces (killed): {strays}"
        assert not set(built.lab.all_namespaces()) & namespaces(), "namespaces left behind"
