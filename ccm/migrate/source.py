"""Where the old objects come from: YAML files (or stdin), or a cluster read live.

Files may hold several documents and ``List`` objects (what ``kubectl get -o yaml`` prints).
Live reads list every MetalLB and Cilium kind vipam migrate converts through the client layer
(:mod:`ccm.kube.client`); a kind whose CRD is not installed is simply empty. The Services are
listed too, so that the report can say which ones the switch-over would disturb.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import SERVICES, Resource

JSON = dict[str, Any]


class SourceError(Exception):
    """Input that cannot be read at all (a missing file, broken YAML, a refused request)."""


@dataclass(frozen=True)
class Kind:
    group: str
    plural: str
    kind: str
    namespaced: bool
    versions: tuple[str, ...]  # newest first: the served storage version is tried first

    def resources(self) -> Iterable[Resource]:
        for version in self.versions:
            yield Resource(self.group, version, self.plural, self.kind, self.namespaced)


LIVE_KINDS = (
    Kind("metallb.io", "ipaddresspools", "IPAddressPool", True, ("v1beta1",)),
    Kind("metallb.io", "l2advertisements", "L2Advertisement", True, ("v1beta1",)),
    Kind("metallb.io", "bgpadvertisements", "BGPAdvertisement", True, ("v1beta1",)),
    Kind("metallb.io", "bgppeers", "BGPPeer", True, ("v1beta2", "v1beta1")),
    Kind("metallb.io", "communities", "Community", True, ("v1beta1",)),
    Kind("metallb.io", "bfdprofiles", "BFDProfile", True, ("v1beta1",)),
    Kind("cilium.io", "ciliumloadbalancerippools", "CiliumLoadBalancerIPPool", False,
         ("v2", "v2alpha1")),
    Kind("cilium.io", "ciliuml2announcementpolicies", "CiliumL2AnnouncementPolicy", False,
         ("v2", "v2alpha1")),
    Kind("cilium.io", "ciliumbgppeeringpolicies", "CiliumBGPPeeringPolicy", False,
         ("v2alpha1",)),
    Kind("cilium.io", "ciliumbgpclusterconfigs", "CiliumBGPClusterConfig", False,
         ("v2", "v2alpha1")),
    Kind("cilium.io", "ciliumbgppeerconfigs", "CiliumBGPPeerConfig", False, ("v2", "v2alpha1")),
    Kind("cilium.io", "ciliumbgpadvertisements", "CiliumBGPAdvertisement", False,
         ("v2", "v2alpha1")),
)


def _flatten(documents: Iterable[Any], where: str) -> list[JSON]:
    objects: list[JSON] = []
    for index, doc in enumerate(documents, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SourceError(f"{where}: document {index}: not a mapping")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            objects.extend(_flatten(doc["items"], f"{where}: document {index}"))
        else:
            objects.append(doc)
    return objects


def read_files(paths: list[str], stdin: TextIO | None = None) -> list[JSON]:
    """Every object in the files; ``-`` reads standard input."""
    objects: list[JSON] = []
    for path in paths:
        where = "stdin" if path == "-" else path
        try:
            if path == "-":
                documents = list(yaml.safe_load_all(stdin or sys.stdin))
            else:
                with Path(path).open() as handle:
                    documents = list(yaml.safe_load_all(handle))
        except OSError as exc:
            raise SourceError(f"{where}: cannot read: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise SourceError(f"{where}: not YAML: {exc}") from None
        objects.extend(_flatten(documents, where))
    return objects


class _GroupVersion(Resource):
    """A group version's discovery document (its APIResourceList), read with ``list``."""

    def collection_path(self, namespace: str | None = None) -> str:
        return self.base


class _Served:
    """Which resources each group version serves, from discovery (readable by any
    authenticated user), so that a kind without a CRD is never listed: listing it would be
    refused (403) rather than answered empty for a user who may not list everything."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.known: dict[tuple[str, str], set[str]] = {}

    async def serves(self, resource: Resource) -> bool:
        key = (resource.group, resource.version)
        if key not in self.known:
            document = _GroupVersion(resource.group, resource.version, "", "", False)
            try:
                answer = await self.client.list(document)
            except ApiError as exc:
                if exc.status != 404:
                    raise SourceError(
                        f"cannot read {resource.api_version} discovery: {exc}") from None
                answer = {}
            self.known[key] = {str(r.get("name")) for r in answer.get("resources") or []}
        return resource.plural in self.known[key]


async def _list_kind(client: KubeClient, served: _Served, kind: Kind) -> list[JSON]:
    """Items of the newest served version; none when no version is served (no CRD)."""
    for resource in kind.resources():
        if not await served.serves(resource):
            continue
        try:
            answer = await client.list_all(resource)
        except ApiError as exc:
            raise SourceError(f"cannot list {kind.plural}.{kind.group}: {exc}") from None
        items = list(answer.get("items") or [])
        for item in items:  # list items may leave these out
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", kind.kind)
        return items
    return []


async def read_cluster(kubeconfig: str | None, context: str | None = None) -> list[JSON]:
    """Every MetalLB and Cilium object migrate converts, plus the Services, from a cluster."""
    try:
        client = await KubeClient.connect(kubeconfig, context, qps=0)
    except Exception as exc:  # kubeconfig loading raises many types; all mean "cannot start"
        raise SourceError(f"cannot load kubeconfig {kubeconfig!r}: {exc}") from None
    try:
        objects: list[JSON] = []
        served = _Served(client)
        for kind in LIVE_KINDS:
            objects.extend(await _list_kind(client, served, kind))
        try:
            services = await client.list_all(SERVICES)
        except ApiError as exc:
            raise SourceError(f"cannot list services: {exc}") from None
        for service in services.get("items") or []:
            service.setdefault("apiVersion", "v1")
            service.setdefault("kind", "Service")
            objects.append(service)
        return objects
    finally:
        await client.close()
