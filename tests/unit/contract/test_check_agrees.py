"""`vipam check` refuses what the API server or the processes would refuse (defect 4 of issue 11),
and its models agree with the CRDs (schema and CEL, evaluated offline) case by case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ccm.check import check_files
from tests.prereq import require
from tests.unit.manifests import schema as crdschema

ROOT = Path(__file__).resolve().parents[3]
API = "vipam.io/v1alpha1"


def _crd_schemas() -> dict[str, dict[str, Any]]:
    files = sorted((ROOT / "config/crd").glob("vipam.io_*.yaml"))
    crds = [yaml.safe_load(path.read_text()) for path in files]
    return crdschema.schemas_by_kind(crds)


def _obj(kind: str, name: str, spec: Any, api: str = API) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


PEER = {"address": "192.0.2.254", "asn": 64512, "localASN": 64513}
POOL = {"addresses": ["192.0.2.0/28"]}

# (id, object, accepted) -- one object each, judged by both the CRD and `vipam check`
SINGLE: list[tuple[str, dict[str, Any], bool]] = [
    ("peer-ok", _obj("BGPPeer", "p", PEER), True),
    ("peer-v6", _obj("BGPPeer", "p", {**PEER, "address": "2001:db8::1"}), True),
    ("peer-hold-3m", _obj("BGPPeer", "p", {**PEER, "holdTime": "3m"}), True),
    ("peer-hold-0s", _obj("BGPPeer", "p", {**PEER, "holdTime": "0s"}), True),
    ("peer-address-300", _obj("BGPPeer", "p", {**PEER, "address": "300.1.1.1"}), False),
    ("peer-asn-huge", _obj("BGPPeer", "p", {**PEER, "asn": 99999999999}), False),
    ("peer-hold-banana", _obj("BGPPeer", "p", {**PEER, "holdTime": "banana"}), False),
    ("peer-hold-2s", _obj("BGPPeer", "p", {**PEER, "holdTime": "2s"}), False),
    ("peer-no-asn", _obj("BGPPeer", "p", {"address": "192.0.2.1", "localASN": 1}), False),
    ("peer-port-string", _obj("BGPPeer", "p", {**PEER, "port": "179"}), False),
    ("bgpadv-ok", _obj("BGPAdvertisement", "b", {"communities": ["64513:100", "64513:1:2"],
                                                 "localPref": 100}), True),
    ("bgpadv-localpref-neg", _obj("BGPAdvertisement", "b", {"localPref": -1}), False),
    ("bgpadv-aggregation-40", _obj("BGPAdvertisement", "b", {"aggregationLength": 40}), False),
    ("bgpadv-community-word", _obj("BGPAdvertisement", "b", {"communities": ["notacommunity"]}),
     False),
    ("l2adv-ok", _obj("L2Advertisement", "l", {"interfaces": ["eth0"]}), True),
    ("l2adv-bad-interface", _obj("L2Advertisement", "l", {"interfaces": ["eth0:1"]}), False),
    ("pool-ok", _obj("IPPool", "a", POOL), True),
    ("pool-autoassign-yes", _obj("IPPool", "a", {**POOL, "autoAssign": "yes"}), False),
    ("pool-priority-string", _obj("IPPool", "a", {**POOL, "priority": "1"}), False),
    ("pool-no-spec", {"apiVersion": API, "kind": "IPPool", "metadata": {"name": "a"}}, False),
]


def _check(tmp_path: Path, *docs: Any, text: str | None = None) -> tuple[int, str]:
    path = tmp_path / "objects.yaml"
    path.write_text(text if text is not None else yaml.safe_dump_all(docs))
    lines: list[str] = []

    class Out:
        def write(self, chunk: str) -> None:
            lines.append(chunk)

    code = check_files([str(path)], Out())
    return code, "".join(lines)


@pytest.mark.parametrize(("case", "obj", "accepted"), SINGLE, ids=[c[0] for c in SINGLE])
def test_check_and_crd_agree(tmp_path: Path, case: str, obj: dict[str, Any],
                             accepted: bool) -> None:
    require(crdschema.cel_available() and crdschema.jsonschema_available(),
            "cel-python and jsonschema are needed to evaluate the CRDs offline")
    schema = _crd_schemas()[obj["kind"]]
    crd_errors = crdschema.validate(obj, schema)
    code, out = _check(tmp_path, obj)
    assert (code == 0) == accepted, out
    if crd_errors or not crdschema.kubernetes_only_rules(obj, schema):
        assert (not crd_errors) == accepted, f"CRD: {crd_errors}"
    # else: the deciding rule uses CEL's IP/CIDR library, which only a real server runs;
    # tests/integration/operator/test_crd_messages.py judges those cases there


def test_samples_pass_check_and_the_crds(tmp_path: Path) -> None:
    require(crdschema.cel_available() and crdschema.jsonschema_available(),
            "cel-python and jsonschema are needed to evaluate the CRDs offline")
    schemas = _crd_schemas()
    samples = sorted(str(p) for p in (ROOT / "config/samples").glob("*.yaml"))
    checked = 0
    for path in samples:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc and doc.get("kind") in schemas:
                assert crdschema.validate(doc, schemas[doc["kind"]]) == [], (path, doc)
                checked += 1
    assert checked >= 4
    assert check_files(samples, _Sink()) == 0


class _Sink:
    def write(self, chunk: str) -> None:
        pass


def test_unknown_fields_are_errors(tmp_path: Path) -> None:
    """The offline CRD check prunes unknown fields like a server without field validation;
    kubectl (strict field validation, the default) refuses them, and so does check."""
    code, out = _check(tmp_path, _obj("BGPAdvertisement", "b", {"localpref": 5}))
    assert code == 1 and "localpref: unknown field" in out


def test_unknown_kind_wrong_version_and_empty_files_are_errors(tmp_path: Path) -> None:
    code, out = _check(tmp_path, _obj("IPPools", "a", POOL))
    assert code == 1 and "kind: 'IPPools' is not a vipam kind" in out
    code, out = _check(tmp_path, _obj("IPPool", "a", POOL, api="vipam.io/v1"))
    assert code == 1 and "apiVersion: 'vipam.io/v1' is not 'vipam.io/v1alpha1'" in out
    code, out = _check(tmp_path, text="")
    assert code == 1 and "no objects in the file" in out
    code, out = _check(tmp_path, {"apiVersion": "v1", "kind": "Secret",
                                  "metadata": {"name": "s"}})
    assert code == 1 and "no vipam object found (1 other object(s) skipped)" in out


def test_cross_object_mistakes_are_errors(tmp_path: Path) -> None:
    """What no single object (and so no CRD) can see: duplicate names, dangling references."""
    code, out = _check(
        tmp_path,
        _obj("IPPool", "lan", POOL),
        _obj("IPPool", "lan", {"addresses": ["198.51.100.0/28"]}),
        _obj("L2Advertisement", "l2", {"ipPools": ["lan", "missing"]}),
        _obj("BGPPeer", "tor", PEER),
        _obj("BGPAdvertisement", "bgp", {"peers": ["tor", "nobody"]}),
    )
    assert code == 1
    assert "IPPool/lan: metadata.name: a second IPPool named 'lan'" in out
    assert "L2Advertisement/l2: ipPools[1]: no IPPool named 'missing'" in out
    assert "BGPAdvertisement/bgp: peers[1]: no BGPPeer named 'nobody'" in out
    assert "ipPools[0]" not in out and "peers[0]" not in out
