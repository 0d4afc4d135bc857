"""MetalLB BGPPeer (v1beta1 and v1beta2) to vipam BGPPeer.

vipam's BGPPeer has the session's essentials (addresses, AS numbers, port, hold time, source
address, node selectors, eBGP multihop, a password Secret); BFD, VRFs, graceful restart,
unnumbered sessions, per-peer router IDs, separate keepalive and connect timers and plain-text
passwords have no place in it and are reported.
"""

from __future__ import annotations

from typing import Any

from ccm.migrate.fields import Fields
from ccm.migrate.output import Output
from ccm.migrate.selection import selectors_at
from ccm.migrate.values import asn, go_duration_seconds, hold_time, ip_text

JSON = dict[str, Any]


def name_of(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def labels_of(obj: JSON) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def origin_of(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
    return f"{obj.get('apiVersion')} {obj.get('kind')} {where}"


def convert_peer(obj: JSON, out: Output) -> None:
    ref = f"BGPPeer/{name_of(obj)}"
    report = out.report
    spec = Fields(obj.get("spec"), ref, "spec", report)
    result: JSON = {}
    try:
        result["localASN"] = asn(spec.take("myASN"))
    except ValueError as exc:
        report.error(ref, "spec.myASN", str(exc))
    dynamic = spec.take("dynamicASN")
    try:
        if dynamic == "internal" and not spec.has("peerASN"):
            result["asn"] = result.get("localASN")
            report.note(ref, "spec.dynamicASN", "internal: written as asn = localASN (iBGP)")
        elif dynamic:
            report.lose(
                ref, "spec.dynamicASN",
                f"{dynamic!r}: vipam needs the peer's AS number; set spec.asn by hand",
            )
            spec.take("peerASN")
        else:
            result["asn"] = asn(spec.take("peerASN"))
    except ValueError as exc:
        report.error(ref, "spec.peerASN", str(exc))
    address = spec.take("peerAddress")
    spec.drop("interface", "vipam has no unnumbered BGP (a session over an interface); dropped")
    try:
        result["address"] = ip_text(address)
    except ValueError:
        report.error(ref, "spec.peerAddress", f"{address!r}: vipam needs the peer's IP address")
    if spec.has("sourceAddress"):
        try:
            result["sourceAddress"] = ip_text(spec.take("sourceAddress"))
        except ValueError as exc:
            report.error(ref, "spec.sourceAddress", str(exc))
    spec.take("sourceAddress")
    port = spec.take("peerPort", 179)
    if port != 179:
        result["port"] = port
    _timers(spec, result)
    selectors = selectors_at(spec, "nodeSelectors")
    if selectors:
        result["nodeSelectors"] = selectors
    secret = spec.sub("passwordSecret")
    if secret.has("name"):
        result["passwordSecretRef"] = {"name": secret.take("name"), "key": "password"}
        namespace = secret.take("namespace")
        report.note(
            ref, "spec.passwordSecret",
            f"the speaker reads Secrets only in its own namespace (kube-system by default): copy "
            f"Secret {namespace + '/' if namespace else ''}{secret.data.get('name')} (key "
            f"'password') there",
        )
    secret.take("namespace")
    secret.finish()
    spec.drop("password", "vipam reads a peer's password from a Secret only: create one with "
                          "key 'password' and set spec.passwordSecretRef; dropped")
    spec.drop("bfdProfile", "vipam has no BFD; dropped")
    spec.drop("enableGracefulRestart", "vipam's speaker has no BGP graceful restart; dropped")
    spec.drop("vrf", "vipam has no VRFs: the session would open in the default VRF; dropped")
    spec.drop("routerID", "a per-peer router ID has no field in vipam; set the speaker's "
                          "--bgp-router-id instead; dropped")
    spec.drop("connectTime", "vipam has no connect-retry timer; dropped")
    spec.drop("dualStackAddressFamily", "vipam announces each family only to peers of that "
                                        "family (no multiprotocol session); dropped")
    if spec.take("ebgpMultiHop", False) is True:
        result["ebgpMultiHop"] = True
    spec.take("disableMP")  # vipam always behaves as disableMP: true; see note_multiprotocol
    spec.finish()
    required = {"address", "asn", "localASN"}
    if required <= set(result):
        out.add("BGPPeer", name_of(obj), result, source=ref, origin=origin_of(obj),
                labels=labels_of(obj))
    elif not any(f.obj == ref for f in report.errors):
        report.lose(ref, "", "not written: vipam's BGPPeer needs address, asn and localASN")
        out.unwritten.add(("BGPPeer", name_of(obj)))


def _timers(spec: Fields, result: JSON) -> None:
    report, ref = spec.report, spec.ref
    hold: float | None = None
    if spec.has("holdTime"):
        try:
            hold = go_duration_seconds(spec.take("holdTime"))
            written = hold_time(hold)
            if written != "90s":
                result["holdTime"] = written
        except ValueError as exc:
            report.error(ref, "spec.holdTime", str(exc))
    spec.take("holdTime")
    if spec.has("keepaliveTime"):
        try:
            keepalive = go_duration_seconds(spec.take("keepaliveTime"))
        except ValueError as exc:
            report.error(ref, "spec.keepaliveTime", str(exc))
            return
        if keepalive != (90.0 if hold is None else hold) / 3:
            report.lose(
                ref, "spec.keepaliveTime",
                "vipam sends keepalives at a third of the hold time and has no separate "
                "keepalive setting; dropped",
            )
    spec.take("keepaliveTime")


def note_multiprotocol(peers: list[JSON], out: Output) -> None:
    """MetalLB (FRR mode) announces both families over one session unless ``disableMP``;
    checked once every object is converted (ccm.migrate.checks)."""
    for peer in peers:
        spec = peer.get("spec") or {}
        if not spec.get("disableMP") and not spec.get("dualStackAddressFamily"):
            out.multiprotocol.append((name_of(peer), f"BGPPeer/{name_of(peer)}", "spec.disableMP"))
