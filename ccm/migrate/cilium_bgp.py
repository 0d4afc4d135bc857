"""Cilium BGP control plane objects to vipam BGPPeers and BGPAdvertisements.

Both of Cilium's BGP APIs are read, as far as they map:

* v1, ``CiliumBGPPeeringPolicy``: each neighbour of each virtual router becomes a BGPPeer; a
  router that announces LoadBalancer addresses becomes a BGPAdvertisement to its neighbours.
  Path attributes for ``CiliumLoadBalancerIPPool`` selectors become advertisements of the
  pools they select.
* v2, ``CiliumBGPClusterConfig`` + ``CiliumBGPPeerConfig`` + ``CiliumBGPAdvertisement``: each
  peer of each instance becomes a BGPPeer with its peer config's settings; each ``Service``
  advertisement of LoadBalancer addresses its peer config selects becomes a BGPAdvertisement.

Cilium selects the Services it announces by label; vipam announces every Service of the pools
an advertisement selects. A selector that excludes nothing is not a loss: an empty one, or
(the form Cilium's documentation uses to announce everything) ``NotIn`` requirements no
Service in the input matches.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ccm.migrate.cilium import labels_of, name_of, origin_of
from ccm.migrate.fields import Fields
from ccm.migrate.output import Output
from ccm.migrate.report import Report
from ccm.migrate.selection import one_selector
from ccm.migrate.values import asn, community, hold_time, ip_text, object_name
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
    if any(r["operator"] not in ("NotIn", "DoesNotExist") for r in sel["matchExpressions"]):
        return False
    parsed = LabelSelector.model_validate(sel)
    return all(
        parsed.matches((s.get("metadata") or {}).get("labels") or {})
        for s in services if _is_lb(s)
    )


def _service_selector(sel: JSON, services: list[JSON] | None, ref: str, where: str,
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


def _communities(fields: Fields) -> tuple[str, ...]:
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
class _Session:
    """Per-session settings shared by v1 neighbours and v2 peer configs."""

    spec: JSON = field(default_factory=dict)
    multiprotocol: bool = True


def _session(fields: Fields, hold: Any, keepalive: Any, connect: Any, ttl: Any,
             auth: Any) -> _Session:
    report, ref = fields.report, fields.ref
    session = _Session()
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


def _families(fields: Fields, key: str, session: _Session) -> list[Fields]:
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


# --- v1: CiliumBGPPeeringPolicy ---------------------------------------------------------


def convert_peering_policy(obj: JSON, out: Output, services: list[JSON] | None) -> None:
    policy = name_of(obj)
    ref = f"{PEERING_POLICY}/{policy}"
    report = out.report
    spec = Fields(obj.get("spec"), ref, "spec", report)
    node_selector = one_selector(spec, "nodeSelector")
    for index, router in enumerate(spec.items("virtualRouters")):
        try:
            local = asn(router.take("localASN"))
        except ValueError as exc:
            report.error(ref, router.at("localASN"), str(exc))
            continue
        router.drop("exportPodCIDR", "vipam announces Service addresses only, not pod CIDRs; "
                                     "dropped")
        router.drop("podIPPoolSelector", "vipam announces Service addresses only, not pod "
                                         "pools; dropped")
        kinds = router.take("serviceAdvertisements", ["LoadBalancerIP"])
        for k, kind in enumerate(kinds):
            if kind != "LoadBalancerIP":
                report.lose(ref, router.at(f"serviceAdvertisements[{k}]"),
                            f"{kind}: vipam announces LoadBalancer addresses only; dropped")
        has_selector = router.data.get("serviceSelector") is not None
        sel = one_selector(router, "serviceSelector")
        announces = "LoadBalancerIP" in kinds and has_selector
        if not has_selector:
            report.note(ref, router.at("serviceSelector"),
                        "unset: Cilium announces no Service from this router; no "
                        "BGPAdvertisement written")
        elif sel is not None:
            _service_selector(sel, services, ref, router.at("serviceSelector"), report)
        groups: dict[tuple[Any, ...], tuple[list[tuple[JSON | None, Attributes]], list[str]]]
        groups = {}
        for neighbor in router.items("neighbors"):
            peer = _neighbor(neighbor, policy, index, local, node_selector, out, origin_of(obj))
            if peer is not None:
                name, attributes = peer
                key = tuple((repr(s), a) for s, a in attributes)
                groups.setdefault(key, (attributes, []))[1].append(name)
        router.finish()
        if not announces:
            continue
        for number, (attributes, names) in enumerate(groups.values()):
            base = object_name(policy, str(index)) + (f"-{number}" if len(groups) > 1 else "")
            common: JSON = {"peers": sorted(names)}
            if node_selector:
                common["nodeSelectors"] = [node_selector]
            where = router.at("neighbors[].advertisedPathAttributes")
            _advertise(base, common, attributes, where, obj, out)
    spec.finish()


def _neighbor(nb: Fields, policy: str, router: int, local: int, node_selector: JSON | None,
              out: Output, origin: str) -> tuple[str, list[tuple[JSON | None, Attributes]]] | None:
    report, ref = nb.report, nb.ref
    raw = nb.take("peerAddress")
    try:
        interface = ipaddress.ip_interface(str(raw))
        if interface.network.prefixlen != interface.max_prefixlen:
            raise ValueError(f"{raw!r} is not a single host (/32 or /128)")
        address = str(interface.ip)
        peer: JSON = {"address": address, "asn": asn(nb.take("peerASN")), "localASN": local}
    except ValueError as exc:
        report.error(ref, nb.path, str(exc))
        return None
    port = nb.take("peerPort", 179)
    if port != 179:
        peer["port"] = port
    session = _session(
        nb, nb.take("holdTimeSeconds"), nb.take("keepAliveTimeSeconds"),
        nb.take("connectRetryTimeSeconds"), nb.take("eBGPMultihopTTL"), nb.take("authSecretRef"),
    )
    peer.update(session.spec)
    restart = nb.sub("gracefulRestart")
    restart.drop("enabled", "vipam's speaker has no BGP graceful restart; dropped")
    restart.take("restartTimeSeconds")
    restart.finish()
    _families(nb, "families", session)
    if node_selector:
        peer["nodeSelectors"] = [node_selector]
    attributes: list[tuple[JSON | None, Attributes]] = []
    for entry in nb.items("advertisedPathAttributes"):
        kind = entry.take("selectorType")
        sel = one_selector(entry, "selector")
        communities = _communities(entry.sub("communities"))
        preference = entry.take("localPreference")
        entry.finish()
        if kind != "CiliumLoadBalancerIPPool":
            report.lose(ref, entry.path, f"{kind}: vipam announces no pod addresses; dropped")
            continue
        attributes.append((sel, (communities, preference)))
    nb.finish()
    name = object_name(policy, address)
    if ("BGPPeer", name) in out.objects:
        name = object_name(policy, str(router), address)
    if not out.add("BGPPeer", name, peer, source=ref, origin=origin):
        return None
    if session.multiprotocol:
        out.multiprotocol.append((name, ref, f"{nb.path}.families"))
    return name, attributes


def _attribute_spec(attributes: Attributes) -> JSON:
    communities, preference = attributes
    spec: JSON = {}
    if communities:
        spec["communities"] = list(communities)
    if preference is not None:
        spec["localPref"] = preference
    return spec


def _advertise(base: str, common: JSON, attributes: list[tuple[JSON | None, Attributes]],
               where: str, obj: JSON, out: Output) -> None:
    """One advertisement per set of path attributes, over disjoint sets of pools."""
    origin, ref = origin_of(obj), f"{PEERING_POLICY}/{name_of(obj)}"
    if not attributes:
        out.add("BGPAdvertisement", base, dict(common), source=ref, origin=origin)
        return
    first_selector, first = attributes[0]
    if not first_selector:  # applies to every pool: the later entries can never apply
        out.add("BGPAdvertisement", base, {**common, **_attribute_spec(first)}, source=ref,
                origin=origin)
        for number in range(1, len(attributes)):
            out.report.lose(ref, f"{where}[{number}]",
                            "an earlier entry already sets attributes for every pool; vipam "
                            "applies one set per address; dropped")
        return
    pools = {o["metadata"]["name"]: labels_of(o) for o in out.of_kind("IPPool")}
    if not pools:
        out.report.lose(ref, where, "selects pools by label, and no pool "
                        "is among the inputs to resolve it against; migrate the "
                        "CiliumLoadBalancerIPPools in the same run")
        return
    taken: set[str] = set()
    for number, (sel, attrs) in enumerate(attributes):
        parsed = LabelSelector.model_validate(sel or {})
        chosen = sorted(p for p, labels in pools.items() if parsed.matches(labels))
        again = [p for p in chosen if p in taken]
        if again:
            out.report.lose(ref, f"{where}[{number}]",
                            f"{', '.join(again)} already matched an earlier entry; vipam applies "
                            "one set of attributes per address; kept the earlier")
        chosen = [p for p in chosen if p not in taken]
        taken.update(chosen)
        if chosen:
            out.add("BGPAdvertisement", f"{base}-{number}",
                    {**common, "ipPools": chosen, **_attribute_spec(attrs)},
                    source=ref, origin=origin)
    rest = sorted(set(pools) - taken)
    if rest:
        out.add("BGPAdvertisement", base, {**common, "ipPools": rest}, source=ref, origin=origin)
    out.report.note(ref, where,
                    "pool selectors were resolved to the pools they match now; name new pools "
                    "in the advertisements' spec.ipPools")


# --- v2: CiliumBGPClusterConfig + CiliumBGPPeerConfig + CiliumBGPAdvertisement ----------


@dataclass
class _PeerConfig:
    session: _Session
    advert_selectors: list[JSON]


def convert_v2(by_kind: dict[str, list[JSON]], out: Output,
               services: list[JSON] | None) -> None:
    adverts = {name_of(o): o for o in by_kind.get(ADVERTISEMENT, [])}
    advert_entries = {name: _advert_entries(o, out, services) for name, o in adverts.items()}
    configs = {name_of(o): _peer_config(o, out) for o in by_kind.get(PEER_CONFIG, [])}
    used_configs: set[str] = set()
    used_adverts: set[str] = set()
    for obj in by_kind.get(CLUSTER_CONFIG, []):
        cluster = name_of(obj)
        ref = f"{CLUSTER_CONFIG}/{cluster}"
        spec = Fields(obj.get("spec"), ref, "spec", out.report)
        node_selector = one_selector(spec, "nodeSelector")
        for instance in spec.items("bgpInstances"):
            _instance(instance, cluster, node_selector, obj, out, configs, adverts,
                      advert_entries, used_configs, used_adverts)
        spec.finish()
    for kind, names, used in ((PEER_CONFIG, configs, used_configs),
                              (ADVERTISEMENT, adverts, used_adverts)):
        for name in sorted(set(names) - used):
            out.report.note(f"{kind}/{name}", "", "no peer uses it; nothing written")


def _instance(instance: Fields, cluster: str, node_selector: JSON | None, obj: JSON,
              out: Output, configs: dict[str, _PeerConfig], adverts: dict[str, JSON],
              advert_entries: dict[str, list[Attributes]], used_configs: set[str],
              used_adverts: set[str]) -> None:
    report, ref = instance.report, instance.ref
    name = str(instance.take("name") or "")
    try:
        local = asn(instance.take("localASN"))
    except ValueError as exc:
        report.error(ref, instance.at("localASN"), f"{exc}: vipam needs the local AS number")
        return
    instance.drop("localPort", "vipam's speaker accepts no incoming BGP sessions; dropped")
    groups: dict[tuple[Attributes, ...], list[str]] = defaultdict(list)
    for peer in instance.items("peers"):
        peer_name = str(peer.take("name") or "")
        peer.drop("autoDiscovery", "vipam needs each peer's address; dropped")
        config_ref = peer.sub("peerConfigRef")
        config_name = config_ref.take("name")
        config_ref.take("group")
        config_ref.take("kind")
        config_ref.finish()
        try:
            spec: JSON = {"address": ip_text(peer.take("peerAddress")),
                          "asn": asn(peer.take("peerASN")), "localASN": local}
        except ValueError as exc:
            report.lose(ref, peer.path, f"{exc}; peer not written")
            peer.finish()
            continue
        peer.finish()
        config = configs.get(str(config_name)) if config_name else None
        if config_name and config is None:
            report.error(ref, config_ref.path, f"no {PEER_CONFIG} {config_name!r} among the "
                                               "inputs")
            continue
        session = config.session if config else _Session()
        spec.update(session.spec)
        if node_selector:
            spec["nodeSelectors"] = [node_selector]
        written = object_name(cluster, name, peer_name)
        if not out.add("BGPPeer", written, spec, source=ref, origin=origin_of(obj)):
            continue
        if config_name:
            used_configs.add(str(config_name))
        if session.multiprotocol:
            where = f"{PEER_CONFIG}/{config_name}" if config_name else ref
            out.multiprotocol.append((written, where, "spec.families"))
        entries: list[Attributes] = []
        for sel in config.advert_selectors if config else []:
            parsed = LabelSelector.model_validate(sel)
            for advert_name, advert in sorted(adverts.items()):
                if parsed.matches(labels_of(advert)):
                    used_adverts.add(advert_name)
                    entries += [e for e in advert_entries[advert_name] if e not in entries]
        groups[tuple(entries)].append(written)
    instance.finish()
    base = object_name(cluster, name)
    numbered = sum(len(key) for key in groups) > 1
    number = 0
    for group, names in groups.items():
        for attributes in group:
            spec = {"peers": sorted(names), **_attribute_spec(attributes)}
            if node_selector:
                spec["nodeSelectors"] = [node_selector]
            out.add("BGPAdvertisement", f"{base}-{number}" if numbered else base, spec,
                    source=ref, origin=origin_of(obj))
            number += 1


def _peer_config(obj: JSON, out: Output) -> _PeerConfig:
    ref = f"{PEER_CONFIG}/{name_of(obj)}"
    spec = Fields(obj.get("spec"), ref, "spec", out.report)
    transport = spec.sub("transport")
    timers = spec.sub("timers")
    restart = spec.sub("gracefulRestart")
    session = _session(
        spec, timers.take("holdTimeSeconds"), timers.take("keepAliveTimeSeconds"),
        timers.take("connectRetryTimeSeconds"), spec.take("ebgpMultihop"),
        spec.take("authSecretRef"),
    )
    port = transport.take("peerPort", 179)
    if port != 179:
        session.spec["port"] = port
    transport.drop("localPort", "vipam's speaker connects from a port the kernel picks; dropped")
    transport.drop("sourceInterface", "vipam takes a source address, not an interface; dropped")
    restart.drop("enabled", "vipam's speaker has no BGP graceful restart; dropped")
    restart.take("restartTimeSeconds")
    selectors: list[JSON] = []
    for family in _families(spec, "families", session):
        sel = one_selector(family, "advertisements")
        if sel is not None and sel not in selectors:
            selectors.append(sel)
        family.finish()
    for part in (transport, timers, restart, spec):
        part.finish()
    if not selectors:
        out.report.note(ref, "spec.families", "no family selects an advertisement: Cilium "
                                              "announces nothing to peers using this config")
    return _PeerConfig(session, selectors)


def _advert_entries(obj: JSON, out: Output, services: list[JSON] | None) -> list[Attributes]:
    """The (communities, local preference) of each entry announcing LoadBalancer addresses."""
    ref = f"{ADVERTISEMENT}/{name_of(obj)}"
    spec = Fields(obj.get("spec"), ref, "spec", out.report)
    entries: list[Attributes] = []
    for entry in spec.items("advertisements"):
        kind = entry.take("advertisementType")
        service = entry.sub("service")
        addresses = service.take("addresses", [])
        service.finish()
        sel = one_selector(entry, "selector")
        attributes = entry.sub("attributes")
        communities = _communities(attributes.sub("communities"))
        preference = attributes.take("localPreference")
        attributes.finish()
        entry.finish()
        if kind != "Service":
            out.report.lose(ref, entry.path, f"{kind}: vipam announces Service addresses only; "
                                             "dropped")
            continue
        for index, address in enumerate(addresses):
            if address != "LoadBalancerIP":
                out.report.lose(ref, f"{entry.path}.service.addresses[{index}]",
                                f"{address}: vipam announces LoadBalancer addresses only; "
                                "dropped")
        if "LoadBalancerIP" not in addresses:
            continue
        if sel is not None:
            _service_selector(sel, services, ref, f"{entry.path}.selector", out.report)
        if (communities, preference) not in entries:
            entries.append((communities, preference))
    spec.finish()
    return entries
