"""Cilium's BGP v2 (``CiliumBGPClusterConfig`` + ``CiliumBGPPeerConfig`` +
``CiliumBGPAdvertisement``) to vipam BGPPeers and BGPAdvertisements.

Each peer of each instance becomes a BGPPeer with its peer config's settings; each ``Service``
advertisement of LoadBalancer addresses its peer config selects becomes a BGPAdvertisement to
the peers that select the same advertisements.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ccm.migrate.cilium import labels_of, name_of, origin_of
from ccm.migrate.cilium_bgp import (
    ADVERTISEMENT,
    CLUSTER_CONFIG,
    PEER_CONFIG,
    Attributes,
    Session,
    attribute_spec,
    communities_of,
    families,
    read_session,
    service_selector_loss,
)
from ccm.migrate.fields import Fields
from ccm.migrate.output import Output
from ccm.migrate.selection import one_selector
from ccm.migrate.values import asn, ip_text, object_name
from pools.selectors import LabelSelector

JSON = dict[str, Any]


@dataclass
class _PeerConfig:
    session: Session
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
        session = config.session if config else Session()
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
            spec = {"peers": sorted(names), **attribute_spec(attributes)}
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
    session = read_session(
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
    for family in families(spec, "families", session):
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
        communities = communities_of(attributes.sub("communities"))
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
            service_selector_loss(sel, services, ref, f"{entry.path}.selector", out.report)
        if (communities, preference) not in entries:
            entries.append((communities, preference))
    spec.finish()
    return entries
