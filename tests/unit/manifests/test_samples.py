"""The samples: each custom resource is one the API server would accept under our CRDs, they
refer to each other consistently, and they use documentation address ranges only."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.prereq import require
from tests.unit.manifests import schema as crdschema
from tests.unit.manifests.render import Manifest, named, of_kind

DOC_RANGES = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
VIPAM_KINDS = ("IPPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement")
IP_LIKE = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")


@pytest.fixture(scope="module")
def schemas(install: tuple[Manifest, ...]) -> dict[str, crdschema.Schema]:
    require(crdschema.jsonschema_available(), "jsonschema is not installed")
    require(crdschema.cel_available(), "cel-python is not installed")
    return crdschema.schemas_by_kind(of_kind(install, "CustomResourceDefinition"))


def custom_resources(samples: tuple[Manifest, ...]) -> list[Manifest]:
    return [obj for obj in samples if obj["apiVersion"] == "vipam.io/v1alpha1"]


def test_samples_cover_every_kind_and_pool_flavour(samples: tuple[Manifest, ...]) -> None:
    assert {obj["kind"] for obj in custom_resources(samples)} == set(VIPAM_KINDS)
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind(samples, "IPPool")}
    families = {
        name: {ipaddress.ip_network(a.split("-")[0]).version for a in spec.get("addresses", [])}
        for name, spec in pools.items()
    }
    assert {4} in families.values() and {6} in families.values() and {4, 6} in families.values()
    assert any("namespaces" in spec.get("serviceAllocation", {}) for spec in pools.values())
    assert any(spec.get("external", {}).get("provider") == "netbox" for spec in pools.values())


def test_every_sample_custom_resource_is_valid(
    samples: tuple[Manifest, ...], schemas: dict[str, crdschema.Schema]
) -> None:
    for obj in custom_resources(samples):
        assert crdschema.validate(obj, schemas[obj["kind"]]) == [], obj["metadata"]["name"]


Mutation = Callable[[dict[str, Any]], None]

# (kind, what is wrong, how to break a valid sample of that kind). Bad addresses are not here:
# their rules use CEL's IP library, which only a real API server has
# (tests/integration/operator/test_crd_messages.py).
BROKEN: list[tuple[str, str, Mutation]] = [
    ("IPPool", "no addresses and no external", lambda s: s.update(addresses=[])),
    (
        "IPPool",
        "addresses and external together",
        lambda s: s.update(external={"provider": "http", "url": "https://ipam.example.com"}),
    ),
    ("IPPool", "negative priority", lambda s: s.update(priority=-1)),
    ("IPPool", "unknown field type", lambda s: s.update(autoAssign="yes")),
    (
        "IPPool",
        "In without values",
        lambda s: s.update(
            serviceAllocation={
                "serviceSelector": {"matchExpressions": [{"key": "tier", "operator": "In"}]}
            }
        ),
    ),
    (
        "IPPool",
        "Exists with values",
        lambda s: s.update(
            serviceAllocation={
                "namespaceSelector": {
                    "matchExpressions": [{"key": "t", "operator": "Exists", "values": ["x"]}]
                }
            }
        ),
    ),
    (
        "IPPool",
        "bad selector operator",
        lambda s: s.update(
            serviceAllocation={
                "serviceSelector": {
                    "matchExpressions": [{"key": "t", "operator": "Like", "values": ["x"]}]
                }
            }
        ),
    ),
    (
        "IPPool",
        "bad namespace name",
        lambda s: s.update(serviceAllocation={"namespaces": ["Team_A"]}),
    ),
    ("L2Advertisement", "interface with a slash", lambda s: s.update(interfaces=["eth0/1"])),
    ("BGPPeer", "ASN zero", lambda s: s.update(asn=0)),
    ("BGPPeer", "ASN above 32 bits", lambda s: s.update(localASN=2**32)),
    ("BGPPeer", "hold time below 3s", lambda s: s.update(holdTime="2s")),
    ("BGPPeer", "hold time not a duration", lambda s: s.update(holdTime="90")),
    ("BGPPeer", "port zero", lambda s: s.update(port=0)),
    ("BGPPeer", "missing localASN", lambda s: s.pop("localASN")),
    ("BGPAdvertisement", "community word", lambda s: s.update(communities=["no-export"])),
    ("BGPAdvertisement", "community part past 16 bits",
     lambda s: s.update(communities=["65536:100"])),
    ("BGPAdvertisement", "aggregation past /32", lambda s: s.update(aggregationLength=33)),
    ("BGPAdvertisement", "aggregation past /128", lambda s: s.update(aggregationLengthV6=129)),
]


def first_listing_addresses(samples: tuple[Manifest, ...], kind: str) -> Manifest:
    objects = of_kind(samples, kind)
    if kind == "IPPool":
        objects = [o for o in objects if o["spec"].get("addresses")]
    return copy.deepcopy(objects[0])


@pytest.mark.parametrize(("kind", "wrong", "mutate"), BROKEN, ids=[b[1] for b in BROKEN])
def test_broken_resources_are_refused(
    samples: tuple[Manifest, ...],
    schemas: dict[str, crdschema.Schema],
    kind: str,
    wrong: str,
    mutate: Mutation,
) -> None:
    obj = first_listing_addresses(samples, kind)
    assert crdschema.validate(obj, schemas[kind]) == [], "the unbroken sample must pass"
    mutate(obj["spec"])
    assert crdschema.validate(obj, schemas[kind]) != [], wrong


def test_netbox_pool_without_url_scheme_is_refused(
    samples: tuple[Manifest, ...], schemas: dict[str, crdschema.Schema]
) -> None:
    (pool,) = [p for p in of_kind(samples, "IPPool") if "external" in p["spec"]]
    for bad in (
        {"url": "netbox.example.com"},
        {"provider": "infoblox"},
        {"timeoutSeconds": 0},
        {"timeoutSeconds": 301},
    ):
        broken = copy.deepcopy(pool)
        broken["spec"]["external"].update(bad)
        assert crdschema.validate(broken, schemas["IPPool"]) != [], bad


def test_defaults_are_applied_as_the_api_server_would(
    samples: tuple[Manifest, ...], schemas: dict[str, crdschema.Schema]
) -> None:
    pool = named(samples, "IPPool", "ipv6-default")
    defaulted = crdschema.with_defaults(pool, schemas["IPPool"])["spec"]
    assert (defaulted["autoAssign"], defaulted["avoidBuggyIPs"], defaulted["disabled"]) == (
        True,
        False,
        False,
    )
    peer = crdschema.with_defaults(named(samples, "BGPPeer", "tor-router"), schemas["BGPPeer"])
    assert peer["spec"]["port"] == 179 and peer["spec"]["ebgpMultiHop"] is False


def addresses_in(value: Any) -> list[str]:
    """Every IP address written anywhere in value (keys and strings), range ends included."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += addresses_in(key) + addresses_in(item)
    elif isinstance(value, list):
        for item in value:
            found += addresses_in(item)
    elif isinstance(value, str):
        for token in re.split(r"[\s,/-]+", value):
            if IP_LIKE.fullmatch(token):
                try:
                    found.append(str(ipaddress.ip_address(token)))
                except ValueError:
                    continue
    return found


def test_samples_use_documentation_ranges_only(samples: tuple[Manifest, ...]) -> None:
    seen = []
    for obj in samples:
        for text in addresses_in({"metadata": obj["metadata"], "spec": obj.get("spec", {})}):
            ip = ipaddress.ip_address(text)
            seen.append(ip)
            assert any(ip in network for network in DOC_RANGES), f"{obj['metadata']['name']}: {ip}"
    assert len(seen) >= 10


def services(samples: tuple[Manifest, ...]) -> list[Manifest]:
    return of_kind(samples, "Service")


def test_sample_services_show_each_way_to_ask(samples: tuple[Manifest, ...]) -> None:
    svcs = services(samples)
    assert all(s["spec"]["type"] == "LoadBalancer" for s in svcs)
    annotations = [s["metadata"].get("annotations", {}) for s in svcs]
    assert any(s["spec"].get("ipFamilyPolicy") == "RequireDualStack" for s in svcs)
    assert any(s["spec"].get("ipFamilies") == ["IPv6"] for s in svcs)
    assert any("ipFamilies" not in s["spec"] for s in svcs), "a plain single-stack Service"
    assert any(s["spec"].get("loadBalancerClass") == "vipam.io/vipam" for s in svcs)
    assert any("vipam.io/pool" in a for a in annotations)
    assert any("vipam.io/loadBalancerIPs" in a for a in annotations)
    sharing = [a for a in annotations if "vipam.io/sharing-key" in a]
    assert len(sharing) >= 2 and len({a["vipam.io/sharing-key"] for a in sharing}) == 1


def test_samples_refer_only_to_things_that_exist(samples: tuple[Manifest, ...]) -> None:
    pools = {p["metadata"]["name"]: p for p in of_kind(samples, "IPPool")}
    peers = {p["metadata"]["name"] for p in of_kind(samples, "BGPPeer")}
    secrets = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s for s in of_kind(samples, "Secret")
    }
    namespaces = {n["metadata"]["name"] for n in of_kind(samples, "Namespace")} | {"default"}
    for kind in ("L2Advertisement", "BGPAdvertisement"):
        for adv in of_kind(samples, kind):
            assert set(adv["spec"].get("ipPools", [])) <= set(pools)
            for selector in adv["spec"].get("ipPoolSelectors", []):
                matched = [
                    p
                    for p in pools.values()
                    if selector["matchLabels"].items() <= p["metadata"].get("labels", {}).items()
                ]
                assert matched, f"{kind} selector {selector} matches no sample pool"
            assert set(adv["spec"].get("peers", [])) <= peers
    refs = [(p["spec"]["external"]["secretRef"]) for p in pools.values() if "external" in p["spec"]]
    refs += [p["spec"]["passwordSecretRef"] for p in of_kind(samples, "BGPPeer")]
    for ref in refs:
        secret = secrets[(ref["namespace"], ref["name"])]
        assert ref["key"] in secret["stringData"]
    for svc in services(samples):
        assert svc["metadata"]["namespace"] in namespaces
        for name in svc["metadata"].get("annotations", {}).get("vipam.io/pool", "").split(","):
            assert not name or name.strip() in pools


def test_requested_addresses_lie_in_a_pool_the_service_may_use(
    samples: tuple[Manifest, ...],
) -> None:
    pools = [p for p in of_kind(samples, "IPPool") if p["spec"].get("addresses")]
    for svc in services(samples):
        wanted = svc["metadata"].get("annotations", {}).get("vipam.io/loadBalancerIPs")
        if not wanted:
            continue
        for text in wanted.split(","):
            ip = ipaddress.ip_address(text.strip())
            holders = [
                p["metadata"]["name"]
                for p in pools
                if any(
                    ip in ipaddress.ip_network(a, strict=False)
                    for a in p["spec"]["addresses"]
                    if "-" not in a
                )
                and svc["metadata"]["namespace"]
                in p["spec"]
                .get("serviceAllocation", {})
                .get("namespaces", [svc["metadata"]["namespace"]])
            ]
            assert holders, f"{svc['metadata']['name']}: {ip} is in no pool it may use"
