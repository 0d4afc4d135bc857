"""Reading the old objects from files: several documents, Lists, stdin."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from ccm.migrate.source import LIVE_KINDS, SourceError, read_files


def test_documents_lists_and_empty_documents(tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(
        "---\n"
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: a}}\n"
        "- apiVersion: v1\n  kind: List\n  items:\n"
        "  - {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: b}}\n"
        "---\n"
        "---\n"
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPoolList\nitems:\n"
        "- {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: c}}\n"
    )
    names = [o["metadata"]["name"] for o in read_files([str(path)])]
    assert names == ["a", "b", "c"]


def test_stdin(tmp_path: Path) -> None:
    stdin = io.StringIO("apiVersion: cilium.io/v2\nkind: CiliumLoadBalancerIPPool\n"
                        "metadata: {name: p}\n")
    assert read_files(["-"], stdin)[0]["kind"] == "CiliumLoadBalancerIPPool"


def test_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: [\n")
    with pytest.raises(SourceError, match=re.escape(f"{bad}: not YAML")):
        read_files([str(bad)])
    with pytest.raises(SourceError, match=r"missing\.yaml: cannot read"):
        read_files([str(tmp_path / "missing.yaml")])


def test_live_kinds_cover_every_kind_the_converters_read() -> None:
    kinds = {kind.kind for kind in LIVE_KINDS}
    assert kinds >= {"IPAddressPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer",
                     "Community", "CiliumLoadBalancerIPPool", "CiliumL2AnnouncementPolicy",
                     "CiliumBGPPeeringPolicy", "CiliumBGPClusterConfig", "CiliumBGPPeerConfig",
                     "CiliumBGPAdvertisement"}
