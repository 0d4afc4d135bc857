"""CRD errors in words, on a real kube-apiserver, case by case against the pydantic models.

Every case is sent to the real API server (a dry-run create, so nothing is stored) and given to
the model the controller and `vipam check` use. Both must refuse it with the same words (the
server puts `spec.` in front of the field path), or both accept it. The few cases where only one
side can judge are listed as such, each with the reason:

* model only: checks across entries (overlaps, an exclusion outside the pool) and the order of
  an IPv6 range. The API server accepts them; the controller reports them in the pool's Ready
  condition and an InvalidPool Event, and `vipam check` finds them.
* once disagreements, now agreed: IPv4-mapped IPv6 addresses (`::ffff:192.0.2.0/120`) and
  zero-padded prefix lengths (`/024`), which CEL's IP library refuses; pools.addresses refuses
  them in the same words.

The fallback for API servers before 1.31 (config/crd-pre-1.31) is applied to a server of its own
and must accept every good case and refuse junk in words.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.apiserver import ApiServer, missing_reason
from pools.addresses import AddressError, parse_token
from pools.model import PoolValidationError, parse_pool
from tests.prereq import require
from tests.realkube import RealCluster, resource_path

ROOT = Path(__file__).resolve().parents[3]
API = "vipam.io/v1alpha1"
PLURAL = {"IPPool": "ippools", "BGPPeer": "bgppeers", "BGPAdvertisement": "bgpadvertisements",
          "L2Advertisement": "l2advertisements"}
PEER = {"asn": 65000, "localASN": 65001}


def model_errors(kind: str, spec: dict[str, Any]) -> list[str] | None:
    """The model's `field: message` lines for spec ([] when it accepts); None when this branch
    has no model of the kind (the advertisements and peers get theirs in ccm.contract)."""
    if kind == "IPPool":
        try:
            parse_pool("case", spec)
        except PoolValidationError as error:
            return list(error.errors)
        return []
    try:
        from ccm.contract.models import ObjectError, parse_spec
    except ImportError:
        return None
    try:
        parse_spec(kind, "case", spec)
    except ObjectError as error:
        return list(error.errors)
    return []


def server_errors(server: ApiServer, kind: str, spec: dict[str, Any]) -> list[str]:
    """The API server's causes as `field: message` lines (`spec.` dropped); [] when it admits
    the object. A dry run: the full validation, CEL included, and nothing is stored."""
    body = {"apiVersion": API, "kind": kind, "metadata": {"name": "case"}, "spec": spec}
    status, raw = server.request("POST", resource_path(PLURAL[kind]) + "?dryRun=All", body)
    if status == 201:
        return []
    answer = json.loads(raw)
    assert status == 422 and answer["reason"] == "Invalid", (status, answer)
    lines = []
    for cause in answer["details"]["causes"]:
        message = re.sub(r'^Invalid value: ("(?:[^"\\]|\\.)*"|\S+): ', "", cause["message"])
        lines.append(f"{cause['field'].removeprefix('spec.')}: {message}")
    return lines


def _pool(**spec: Any) -> dict[str, Any]:
    return spec


# (id, kind, spec, expected errors as `field: start of the message`; [] means accepted)
AGREED: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("pool-cidrs", "IPPool", _pool(addresses=["192.0.2.0/24", "2001:db8::/64"]), []),
    ("pool-range", "IPPool", _pool(addresses=["192.0.2.10-192.0.2.20"]), []),
    ("pool-range-spaces", "IPPool", _pool(addresses=["192.0.2.10 - 192.0.2.20"]), []),
    ("pool-range-v6", "IPPool", _pool(addresses=["2001:db8::100-2001:db8::1ff"]), []),
    ("pool-exploded-v6", "IPPool",
     _pool(addresses=["2001:0db8:0000:0000:0000:0000:0000:0000/64"]), []),
    ("pool-embedded-v4", "IPPool", _pool(addresses=["64:ff9b::192.0.2.0/120"]), []),
    ("pool-exclude-single", "IPPool",
     _pool(addresses=["192.0.2.0/24"], exclude=["192.0.2.1", "192.0.2.250-192.0.2.255"]), []),
    ("pool-bad-octet", "IPPool", _pool(addresses=["10.0.0.300/24"]),
     ["addresses[0]: '10.0.0.300/24' is not a CIDR or range"]),
    ("pool-second-entry", "IPPool", _pool(addresses=["192.0.2.0/25", "pool-a"]),
     ["addresses[1]: 'pool-a' is not a CIDR or range"]),
    ("pool-two-bad", "IPPool", _pool(addresses=["192.0.2.0/33", "2001:db8::/64", "192.0.2"]),
     ["addresses[0]: '192.0.2.0/33' is not a CIDR or range",
      "addresses[2]: '192.0.2' is not a CIDR or range"]),
    ("pool-single-v4", "IPPool", _pool(addresses=["192.0.2.1"]),
     ["addresses[0]: '192.0.2.1' is not a CIDR or range (write '192.0.2.1/32' for a single "
      "address)"]),
    ("pool-single-v6", "IPPool", _pool(addresses=["2001:db8::1"]),
     ["addresses[0]: '2001:db8::1' is not a CIDR or range (write '2001:db8::1/128' for a "
      "single address)"]),
    ("pool-host-bits", "IPPool", _pool(addresses=["192.0.2.1/24"]),
     ["addresses[0]: '192.0.2.1/24' has host bits set"]),
    ("pool-host-bits-v6", "IPPool", _pool(addresses=["2001:db8::1/64"]),
     ["addresses[0]: '2001:db8::1/64' has host bits set"]),
    ("pool-mixed-range", "IPPool", _pool(addresses=["192.0.2.1-2001:db8::1"]),
     ["addresses[0]: '192.0.2.1-2001:db8::1' mixes IPv4 and IPv6"]),
    ("pool-reversed-v4", "IPPool", _pool(addresses=["192.0.2.20-192.0.2.10"]),
     ["addresses[0]: '192.0.2.20-192.0.2.10' is a range whose first address is after its last"]),
    ("pool-double-dash", "IPPool", _pool(addresses=["192.0.2.1--192.0.2.2"]),
     ["addresses[0]: '192.0.2.1--192.0.2.2' is not a CIDR or range"]),
    ("pool-leading-space", "IPPool", _pool(addresses=[" 192.0.2.0/24"]),
     ["addresses[0]: ' 192.0.2.0/24' is not a CIDR or range"]),
    ("pool-zone", "IPPool", _pool(addresses=["fe80::%eth0/64"]),
     ["addresses[0]: 'fe80::%eth0/64' is not a CIDR or range"]),
    ("pool-comma-list", "IPPool", _pool(addresses=["192.0.2.0/24,198.51.100.0/24"]),
     ["addresses[0]: '192.0.2.0/24,198.51.100.0/24' is not a CIDR or range"]),
    ("exclude-junk", "IPPool", _pool(addresses=["192.0.2.0/24"], exclude=["192.0.2.300"]),
     ["exclude[0]: '192.0.2.300' is not a CIDR, range or IP"]),
    ("exclude-reversed", "IPPool",
     _pool(addresses=["192.0.2.0/24"], exclude=["192.0.2.9-192.0.2.3"]),
     ["exclude[0]: '192.0.2.9-192.0.2.3' is a range whose first address is after its last"]),
    ("exclude-host-bits", "IPPool", _pool(addresses=["192.0.2.0/24"], exclude=["192.0.2.5/30"]),
     ["exclude[0]: '192.0.2.5/30' has host bits set"]),
    ("peer-v4", "BGPPeer", {"address": "192.0.2.254", **PEER}, []),
    ("peer-v6-source", "BGPPeer", {"address": "2001:db8::fe", "sourceAddress": "2001:db8::1",
                                   **PEER}, []),
    ("peer-hostname", "BGPPeer", {"address": "router.example.com", **PEER},
     ["address: 'router.example.com' is not an IPv4 or IPv6 address"]),
    ("peer-octet-300", "BGPPeer", {"address": "300.1.1.1", **PEER},
     ["address: '300.1.1.1' is not an IPv4 or IPv6 address"]),
    ("peer-cidr-source", "BGPPeer", {"address": "192.0.2.254", "sourceAddress": "192.0.2.1/32",
                                     **PEER},
     ["sourceAddress: '192.0.2.1/32' is not an IPv4 or IPv6 address"]),
    ("communities", "BGPAdvertisement", {"communities": ["65000:100", "4200000000:1:2"]}, []),
    ("community-word", "BGPAdvertisement", {"communities": ["no-export"]},
     ["communities[0]: 'no-export' is not a BGP community: standard 65000:100 (each part up to "
      "65535) or large 65000:1:2 (each part up to 4294967295)"]),
    ("community-16-bit", "BGPAdvertisement", {"communities": ["65000:100", "65536:1"]},
     ["communities[1]: '65536:1' is not a BGP community"]),
    ("community-large-32-bit", "BGPAdvertisement", {"communities": ["1:4294967296:1"]},
     ["communities[0]: '1:4294967296:1' is not a BGP community"]),
    ("l2-interfaces", "L2Advertisement", {"interfaces": ["eth0", "bond0.100"]}, []),
]

# Accepted by the API server, refused by the model: checks that need the whole pool or IPv6
# arithmetic the API server's CEL budget does not allow.
MODEL_ONLY: list[tuple[str, dict[str, Any], list[str]]] = [
    ("overlapping-entries", _pool(addresses=["192.0.2.0/24", "192.0.2.128/25"]),
     ["addresses[1]: '192.0.2.128/25' overlaps addresses[0] '192.0.2.0/24'"]),
    ("exclude-outside", _pool(addresses=["192.0.2.0/24"], exclude=["198.51.100.1"]),
     ["exclude[0]: '198.51.100.1' is outside the pool's addresses"]),
    ("reversed-v6", _pool(addresses=["2001:db8::1ff-2001:db8::100"]),
     ["addresses[0]: '2001:db8::1ff-2001:db8::100' is a range whose first address is after its "
      "last"]),
]

# Refused by the API server (CEL's IP library), accepted by pools.addresses today.
SERVER_ONLY: list[tuple[str, dict[str, Any], list[str]]] = [
    ("ipv4-mapped", _pool(addresses=["::ffff:192.0.2.0/120"]),
     ["addresses[0]: '::ffff:192.0.2.0/120' is not a CIDR or range (IPv4-mapped IPv6 addresses "
      "are not allowed)"]),
    ("zero-padded-prefix", _pool(addresses=["192.0.2.0/024"]),
     ["addresses[0]: '192.0.2.0/024' is not a CIDR or range"]),
]


def _matches(got: list[str], expected: list[str]) -> bool:
    """Same fields in the same order, each message starting with the expected words."""
    return len(got) == len(expected) and all(
        g.startswith(e) for g, e in zip(got, expected, strict=True))


@pytest.mark.parametrize(("kind", "spec", "expected"), [c[1:] for c in AGREED],
                         ids=[c[0] for c in AGREED])
def test_server_and_model_agree(real_cluster: RealCluster, kind: str, spec: dict[str, Any],
                                expected: list[str]) -> None:
    got = server_errors(real_cluster.server, kind, spec)
    assert _matches(got, expected), f"API server: {got}"
    model = model_errors(kind, spec)
    if model is not None:
        assert _matches(model, expected), f"model: {model}"


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in MODEL_ONLY],
                         ids=[c[0] for c in MODEL_ONLY])
def test_what_only_the_model_can_judge(real_cluster: RealCluster, spec: dict[str, Any],
                                       expected: list[str]) -> None:
    assert server_errors(real_cluster.server, "IPPool", spec) == []
    assert model_errors("IPPool", spec) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param(*c[1:], id=c[0]) for c in SERVER_ONLY])
def test_known_disagreements(real_cluster: RealCluster, spec: dict[str, Any],
                             expected: list[str]) -> None:
    assert server_errors(real_cluster.server, "IPPool", spec) == expected
    assert model_errors("IPPool", spec) == expected


def test_kubectl_shows_the_words(real_cluster: RealCluster, tmp_path: Path) -> None:
    """What an operator sees: the field path, the value and the words, no regular expression."""
    manifest = tmp_path / "pool.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": API, "kind": "IPPool",
                                        "metadata": {"name": "lab"},
                                        "spec": {"addresses": ["10.0.0.300/24"]}}))
    done = real_cluster.server.kubectl("apply", "-f", str(manifest), check=False,
                                       kubeconfig=real_cluster.admin_kubeconfig)
    assert done.returncode != 0
    assert ('The IPPool "lab" is invalid: spec.addresses[0]: Invalid value: "10.0.0.300/24": '
            "'10.0.0.300/24' is not a CIDR or range") in done.stderr, done.stderr
    assert "should match" not in done.stderr


# -- generated entries: the server and the model, entry by entry ------------------------------

network = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: ipaddress.ip_network((ipaddress.IPv4Address(t[0]), t[1]), strict=False)),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: ipaddress.ip_network((ipaddress.IPv6Address(t[0]), t[1]), strict=False)),
)
entry_text = st.one_of(
    network.map(str),
    network.map(lambda n: f"{n.network_address}/{n.prefixlen}"),
    network.map(lambda n: f"{n.network_address + min(1, n.num_addresses - 1)}/{n.prefixlen}"),
    network.map(lambda n: str(n.network_address)),
    st.tuples(network, network, st.sampled_from(["-", " - "])).map(
        lambda t: f"{t[0][0]}{t[2]}{t[1][-1]}"),
    st.text(alphabet="0123456789abcdef.:/- ", max_size=20),
)


def _model_accepts(text: str, single: bool) -> bool:
    try:
        parse_token(text, allow_single=single)
    except AddressError:
        return False
    return True


def _only_the_server_refuses(text: str) -> bool:
    """The SERVER_ONLY classes above."""
    return "::ffff:" in text.lower() or re.search(r"/0[0-9]", text) is not None or any(
        _is_mapped(part) for part in re.split(r"\s*-\s*|/", text) if part)


def _is_mapped(part: str) -> bool:
    try:
        address = ipaddress.ip_address(part)
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None


def _only_the_model_refuses(text: str) -> bool:
    """A reversed IPv6 range (MODEL_ONLY above)."""
    try:
        parse_token(text, allow_single=True)
    except AddressError as error:
        return ":" in text and "first address is after its last" in str(error)
    return False


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry_text)
def test_generated_entries_are_judged_alike(real_cluster: RealCluster, text: str) -> None:
    server = real_cluster.server
    for field, single, spec in (
        ("addresses", False, {"addresses": [text]}),
        ("exclude", True, {"addresses": ["0.0.0.0/0", "::/0"], "exclude": [text]}),
    ):
        admitted = server_errors(server, "IPPool", spec) == []
        accepted = _model_accepts(text, single)
        if admitted == accepted:
            continue
        if not admitted and _only_the_server_refuses(text):
            continue
        if admitted and _only_the_model_refuses(text):
            continue
        pytest.fail(f"{field} {text!r}: API server {'admits' if admitted else 'refuses'}, "
                    f"model {'accepts' if accepted else 'refuses'}")


# -- the pre-1.31 fallback on a server of its own -----------------------------------------------

@pytest.fixture(scope="module")
def fallback_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    why = missing_reason()
    require(why is None, why or "")
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(_relative(ROOT / "config" / "crd", overlay))],
        "components": [str(_relative(ROOT / "config" / "crd-pre-1.31", overlay))],
    }))
    server = ApiServer(tmp_path_factory.mktemp("fallback-apiserver"))
    server.start()
    try:
        server.kubectl("apply", "-k", str(overlay))
        server.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd",
                       "--all")
        yield server
    finally:
        server.stop()


def _relative(target: Path, start: Path) -> Path:
    import os

    return Path(os.path.relpath(target, start))


def test_the_fallback_installs_and_words_junk(fallback_server: ApiServer) -> None:
    crd = json.loads(fallback_server.kubectl("get", "crd", "ippools.vipam.io", "-o",
                                             "json").stdout)
    assert "isCIDR" not in json.dumps(crd), "the Component did not swap the library rules"
    for _, kind, spec, expected in AGREED:
        got = server_errors(fallback_server, kind, spec)
        if not expected:
            assert got == [], (kind, spec, got)

    def judged(kind: str, spec: dict[str, Any]) -> list[str]:
        return server_errors(fallback_server, kind, spec)

    assert judged("IPPool", {"addresses": ["pool-a"]}) == [
        "addresses[0]: 'pool-a' is not a CIDR or range"]
    assert judged("IPPool", {"addresses": ["192.0.2.1"]}) == [
        "addresses[0]: '192.0.2.1' is not a CIDR or range"]
    assert judged("BGPPeer", {"address": "router.example.com", **PEER}) == [
        "address: 'router.example.com' is not an IPv4 or IPv6 address"]
    # what the shape check lets through is the controller's to report, in the same words
    assert judged("IPPool", {"addresses": ["10.0.0.300/24"]}) == []
    assert model_errors("IPPool", {"addresses": ["10.0.0.300/24"]}) == [
        "addresses[0]: '10.0.0.300/24' is not a CIDR or range"]
