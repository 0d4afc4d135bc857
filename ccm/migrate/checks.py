"""Checks over the whole output, after every source object is converted.

They find what no single object shows: a BGP session that carried the other family's routes,
and two BGP advertisements for the same addresses (vipam's speaker applies one advertisement to
an address, so the other's peers and attributes would be lost).
"""

from __future__ import annotations

from typing import Any

from ccm.migrate.output import Output
from ccm.migrate.selection import pools_selected
from ccm.migrate.values import families_of

JSON = dict[str, Any]


def check_multiprotocol(out: Output) -> None:
    """Peers whose source session carried both families (MetalLB without disableMP, Cilium's
    default families), listed in ``out.multiprotocol`` by the converters."""
    advertisements = out.of_kind("BGPAdvertisement")
    pools = {obj["metadata"]["name"]: obj for obj in out.of_kind("IPPool")}
    for name, source, where in out.multiprotocol:
        obj = out.objects.get(("BGPPeer", name))
        if obj is None:
            continue
        version = 6 if ":" in obj["spec"]["address"] else 4
        other = 4 if version == 6 else 6
        carried = sorted({
            pool for adv in advertisements
            if not adv["spec"].get("peers") or name in adv["spec"]["peers"]
            for pool in pools_selected(adv["spec"], pools)
            if other in families_of(pools[pool]["spec"]["addresses"])
        })
        if carried:
            out.report.lose(
                source, where,
                f"the session to this IPv{version} peer also carried the IPv{other} addresses of "
                f"{', '.join(carried)}; vipam announces IPv{other} only to IPv{other} peers: "
                f"add a BGPPeer for the router's IPv{other} address",
            )


def _attributes(spec: JSON) -> tuple[Any, ...]:
    return (
        sorted(spec.get("peers") or []), sorted(spec.get("communities") or []),
        spec.get("localPref"), spec.get("aggregationLength"), spec.get("aggregationLengthV6"),
    )


def check_advertisement_overlaps(out: Output) -> None:
    """Two BGPAdvertisements that select one pool on the same nodes but announce it
    differently: the speaker would apply only one of them to each address."""
    pools = {obj["metadata"]["name"]: obj for obj in out.of_kind("IPPool")}
    advertisements = out.of_kind("BGPAdvertisement")
    for index, first in enumerate(advertisements):
        for second in advertisements[index + 1:]:
            a, b = first["spec"], second["spec"]
            if _attributes(a) == _attributes(b):
                continue
            shared = sorted(set(pools_selected(a, pools)) & set(pools_selected(b, pools)))
            if not shared:
                continue
            names = (first["metadata"]["name"], second["metadata"]["name"])
            source = out.sources[("BGPAdvertisement", names[1])]
            what = (f"BGPAdvertisement/{names[0]} and BGPAdvertisement/{names[1]} both announce "
                    f"{', '.join(shared)} with different peers or attributes")
            if (a.get("nodeSelectors") or []) == (b.get("nodeSelectors") or []):
                out.report.lose(
                    source, "spec",
                    f"{what}; vipam's speaker applies one BGPAdvertisement to an address, so "
                    "one of them is not carried out: merge them",
                )
            else:
                out.report.note(
                    source, "spec",
                    f"{what}; on a node both nodeSelectors admit, vipam's speaker applies only "
                    "one of them",
                )


def check_references(out: Output) -> None:
    """Advertisements name pools and peers that are written, as `vipam check` demands.

    A peer that was in the input but could not be written (its loss is reported) is taken out
    of the list; if that empties the list, the advertisement would go to every peer instead,
    so it is not written either. A name that was never among the inputs is an error: the
    input is incomplete.
    """
    pools, peers = out.names("IPPool"), out.names("BGPPeer")
    for kind in ("L2Advertisement", "BGPAdvertisement"):
        for obj in out.of_kind(kind):
            name, spec = obj["metadata"]["name"], obj["spec"]
            source = out.sources[(kind, name)]
            for pool in spec.get("ipPools") or []:
                if pool not in pools and ("IPPool", pool) not in out.unwritten:
                    out.report.error(source, "spec", f"names pool {pool!r}, which is not among "
                                                     "the inputs: give its source object too")
            named = spec.get("peers") or []
            missing = [p for p in named if p not in peers and ("BGPPeer", p) not in out.unwritten]
            for peer in missing:
                out.report.error(source, "spec", f"names peer {peer!r}, which is not among the "
                                                 "inputs: give its source object too")
            kept = [p for p in named if p in peers or p in missing]
            if kept == named:
                continue
            if kept:
                spec["peers"] = kept
                out.report.note(source, "spec.peers", "peers that could not be written were "
                                                      "taken out")
            else:
                del out.objects[(kind, name)]
                out.report.lose(source, "spec.peers", "none of its peers could be written, and "
                                                      "without peers it would go to every peer; "
                                                      "not written")
