"""Cilium BGP control plane objects to vipam BGPPeers and BGPAdvertisements: what both of
Cilium's BGP APIs share.

Both APIs are read, as far as they map: v1, ``CiliumBGPPeeringPolicy``
(:mod:`ccm.migrate.cilium_bgp_v1`), and v2, ``CiliumBGPClusterConfig`` +
``CiliumBGPPeerConfig`` + ``CiliumBGPAdvertisement`` (:mod:`ccm.migrate.cilium_bgp_v2`).

Cilium selects the Services it announces by label; vipam announces every Service of the pools
an advertisement selects. A selector that excludes nothing is not a loss: an empty one, or
(the form Cilium's documentation uses to announce everything) ``NotIn`` requirements no
Service in the input matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ccm.migrate.cilium import NAME_KEY, NAMESPACE_KEY
from ccm.migrate.fields import Fields
from ccm.migrate.report import Report
from ccm.migrate.values import community, hold_time
from pools.selectors import LabelSelector

JSON = dict[str, Any]
PEERING_POLICY = "CiliumBGPPeeringPolicy"
CLUSTER_CONFIG = "CiliumBGPClusterConfig"
PEER_CONFIG = "CiliumBGPPeerConfig"
ADVERTISEMENT = "CiliumBGPAdvertisement"
KINDS = frozenset({PEERING_POLICY, CLUSTER_CONFIG, PEER_CONFIG, ADVERTISEMENT})
DEFAULT_HOLD, DEFAULT_KEEPALIVE, DEFAULT_CONNECT_RETRY = 90, 30, 120
Attributes = tuple[tuple[str, ...], int | None]  # communities, local preference


def _is_lb(service: JSON) -> bool:
    return (service.get("spec") or {}).get("type") == "LoadBalancer"


def selects_every_service(sel: JSON | None, services: list[JSON] | None) -> bool:
    """True when ``sel`` excludes no LoadBalancer Service: it is empty, or it only has
    ``NotIn``/``DoesNotExist`` requirements and the input's Services all pass them."""
    if sel is None:
        return False
    if not sel:
        return True
    if sel.get("matchLabels") or services is None:
        return False
    if any(r["operator"] not in ("NotIn", "DoesNotExist")
           or r["key"] in (NAMESPACE_KEY, NAME_KEY)  # pseudo-labels: not on the Service
           for r in sel["matchExpressions"]):
        return False
    parsed = LabelSelector.model_validate(sel)
    return all(
        parsed.matches((s.get("metadata") or {}).get("labels") or {})
        for s in services if _is_lb(s)
    )


def service_selector_loss(sel: JSON, services: list[JSON] | None, ref: str, where: str,
                      report: Report) -> None:
    if selects_every_service(sel, services):
        if sel:
            report.note(ref, where, "excludes no LoadBalancer Service among the inputs: "
                                    "every Service of every pool is announced")
        return
    hint = "" if services is not None else (
        " (give the Services too, or read them live, to check whether it excludes any)"
    )
    report.lose(ref, where, "vipam announces the Services of the pools an advertisement "
                            f"selects, not Services chosen by label; dropped{hint}")


def communities_of(fields: Fields) -> tuple[str, ...]:
    """Cilium's BGPCommunities {standard, wellKnown, large} as vipam communities."""
    written: list[str] = []
    for key in ("standard", "wellKnown", "large"):
        for index, text in enumerate(fields.take(key, [])):
            try:
                value = community(f"large:{text}" if key == "large" else text)
            except ValueError as exc:
                fields.report.error(fields.ref, f"{fields.at(key)}[{index}]", str(exc))
                continue
            if value not in written:
                written.append(value)
    fields.finish()
    return tuple(written)


@dataclass
class Session:
    """Per-session settings shared by v1 neighbours and v2 peer configs."""

    spec: JSON = field(default_factory=dict)
    multiprotocol: bool = True


def read_session(fields: Fields, hold: Any, keepalive: Any, connect: Any, ttl: Any,
             auth: Any) -> Session:
    report, ref = fields.report, fields.ref
    session = Session()
    hold = DEFAULT_HOLD if hold is None else hold
    try:
        if hold != DEFAULT_HOLD:
            session.spec["holdTime"] = hold_time(float(hold))
    except (TypeError, ValueError) as exc:
        report.error(ref, fields.path, f"hold time: {exc}")
    if keepalive is not None and keepalive * 3 != hold:
        report.lose(ref, fields.path, f"keepalive {keepalive}s: vipam sends keepalives at a "
                                      "third of the hold time; dropped")
    if connect is not None and connect != DEFAULT_CONNECT_RETRY:
        report.lose(ref, fields.path, f"connect retry {connect}s: vipam has no connect-retry "
                                      "timer; dropped")
    if isinstance(ttl, int) and ttl > 1:
        session.spec["ebgpMultiHop"] = True
        report.note(ref, fields.path, f"eBGP multihop TTL {ttl} written as ebgpMultiHop: true "
                                      "(vipam sets no TTL)")
    if auth:
        session.spec["passwordSecretRef"] = {"name": str(auth), "key": "password"}
        report.note(ref, fields.path, f"the speaker reads Secrets only in its own namespace "
                                      f"(kube-system by default): copy Secret {auth} there")
    return session


def families(fields: Fields, key: str, session: Session) -> list[Fields]:
    """Address families; only IPv4/IPv6 unicast exist in vipam. Both over one session is
    multiprotocol BGP (Cilium's default), which vipam does not do."""
    entries = fields.items(key)
    kinds = set()
    for entry in entries:
        afi, safi = entry.take("afi"), entry.take("safi")
        if afi not in ("ipv4", "ipv6") or safi != "unicast":
            fields.report.lose(fields.ref, entry.path, f"{afi}/{safi}: vipam announces IPv4 and "
                                                       "IPv6 unicast routes only; dropped")
        else:
            kinds.add(afi)
    session.multiprotocol = not entries or kinds == {"ipv4", "ipv6"}
    return entries


def attribute_spec(attributes: Attributes) -> JSON:
    communities, preference = attributes
    spec: JSON = {}
    if communities:
        spec["communities"] = list(communities)
    if preference is not None:
        spec["localPref"] = preference
    return spec
