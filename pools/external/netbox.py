"""Provider `netbox`: addresses taken from a NetBox 4 prefix or IP range over its REST API.

Ownership is recorded on each IP address object NetBox creates for us, with a tag (option `tag`,
default "vipam") and a description of fixed form

    vipam cluster=<cluster id> service=<namespace/name> uid=<Service uid> family=<IPv4|IPv6>

(a description needs no schema change in NetBox, and is what a person reading NetBox sees).
Lookups filter on the tag and on the description's start/end (description__isw/__iew) and are
restricted to the configured prefix or range and its VRF; NetBox silently ignores filter names it
does not know, so every answer is re-checked here by parsing the description.

NetBox's POST .../available-ips/ is not idempotent, so allocation is made idempotent here: look the
key up first, and only allocate when it holds nothing. After creating, the key is looked up again
and, should a lost reply and a retry have produced two objects for one key, the oldest (lowest id)
is kept and the others are deleted, so every caller settles on the same address; `list` settles
duplicates the same way. Keeping the oldest is consistent with what allocate returned: NetBox
commits each available-ips insert inside its lock, so an older object is always visible to the
lookup that follows a newer one.

NetBox 4.7 serialises POST .../available-ips/ with one PostgreSQL advisory lock
(ADVISORY_LOCK_KEYS["available-ips"], shared by every prefix and IP range, held across "find the
free addresses" and the insert), so concurrent allocations with different keys never get the same
address; a full prefix or range answers 409 ("Insufficient resources ...").
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from typing import Any, Literal

import netaddr

from pools.external.base import (
    AllocationKey,
    BackendError,
    CallObserver,
    ExternalAddress,
    RetryPolicy,
    observed,
)
from pools.external.transport import JSON, JsonClient

KNOWN_OPTIONS = frozenset(
    {"prefixId", "prefix", "vrf", "ipRangeId", "tag", "releaseMode", "dnsName", "status"}
)
RELEASE_MODES = ("delete", "status:deprecated")
PAGE = 500
DESCRIPTION_MAX = 200  # NetBox's limit on an IP address object's description

_OWNER = re.compile(
    r"^vipam cluster=(?P<cluster>\S+) service=(?P<service>\S+) "
    r"uid=(?P<uid>\S+) family=(?P<family>IPv4|IPv6)$"
)


def owner_description(key: AllocationKey, service: str) -> str:
    """The description that marks an IP address object as held by `key`.

    NetBox limits descriptions to 200 characters; a long namespace/name is shortened (ending in
    "~"), since only the key parts must survive intact."""
    head = f"vipam cluster={key.cluster_id} service="
    tail = f" uid={key.service_uid} family={key.family}"
    service = re.sub(r"\s", "_", service) or "-"
    room = DESCRIPTION_MAX - len(head) - len(tail)
    if len(service) > room:
        service = service[: max(room - 1, 1)] + "~"
    return head + service + tail


def parse_owner(description: str) -> tuple[AllocationKey, str] | None:
    """(key, service) from an owner description, or None if it is not one of ours."""
    match = _OWNER.match(description or "")
    if match is None:
        return None
    try:
        key = AllocationKey(match["cluster"], match["uid"], match["family"])  # type: ignore[arg-type]
    except ValueError:
        return None
    return key, match["service"]


@dataclass(frozen=True)
class Parent:
    """The prefix or IP range addresses come from, as resolved from the options."""

    kind: Literal["prefixes", "ip-ranges"]
    id: int
    vrf_id: int | None
    span: netaddr.IPRange
    prefix_length: int


@dataclass(frozen=True)
class Held:
    """One IP address object of ours."""

    id: int
    ip: str
    key: AllocationKey
    service: str
    tag_ids: tuple[int, ...]


class NetBoxBackend:
    """IPAMBackend over NetBox 4's REST API."""

    provider = "netbox"

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        ca_bundle: str | None = None,
        timeout: float = 5.0,
        options: dict[str, Any] | None = None,
        name: str = "netbox",
        on_call: CallObserver | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        options = dict(options or {})
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise ValueError(f"unknown netbox provider options: {sorted(unknown)}")
        chosen = [k for k in ("prefixId", "prefix", "ipRangeId") if options.get(k) is not None]
        if len(chosen) != 1:
            raise ValueError("netbox options need exactly one of prefixId, prefix, ipRangeId")
        if options.get("vrf") is not None and chosen != ["prefix"]:
            raise ValueError("netbox option vrf only applies with prefix")
        self.release_mode = str(options.get("releaseMode", "delete"))
        if self.release_mode not in RELEASE_MODES:
            raise ValueError(f"netbox releaseMode must be one of {RELEASE_MODES}")
        self.tag = str(options.get("tag", "vipam"))
        if not re.fullmatch(r"[-a-zA-Z0-9_]+", self.tag):
            raise ValueError(f"netbox tag {self.tag!r} must be a slug")
        self.record_dns_name = bool(options.get("dnsName", True))
        self.status = str(options.get("status", "active"))
        self.options = options
        self.name = name
        # v2 tokens ("nbt_<key>.<secret>") use Bearer; v1 tokens (40 characters) use Token.
        scheme = "Bearer" if token and token.startswith("nbt_") else "Token"
        self._client = JsonClient(
            url, authorization=f"{scheme} {token}" if token else None,
            ca_bundle=ca_bundle, timeout=timeout,
        )
        self._retry = retry or RetryPolicy()
        self._on_call = on_call
        self._parent: Parent | None = None
        self._tag_id: int | None = None

    # -- the IPAMBackend operations ---------------------------------------------------------

    async def allocate(
        self,
        key: AllocationKey,
        *,
        service: str,
        dns_name: str | None = None,
        requested_ip: str | None = None,
    ) -> str:
        async def attempt() -> str:
            held = await self._held_by(key)
            if held:
                return (await self._settle(held)).ip
            await self._create(key, service, dns_name, requested_ip)
            held = await self._held_by(key)
            if not held:
                raise BackendError("Unavailable", "created address not found by its owner "
                                   "description (edited concurrently?)")
            return (await self._settle(held)).ip

        return await observed(self._on_call, self.name, "allocate", self._retry.run(attempt))

    async def release(self, key: AllocationKey, ip: str) -> None:
        async def attempt() -> None:
            for held in await self._held_by(key):
                if held.ip == ip:
                    await self._give_back(held)

        await observed(self._on_call, self.name, "release", self._retry.run(attempt))

    async def list(self, cluster_id: str) -> list[ExternalAddress]:
        async def attempt() -> list[ExternalAddress]:
            found = await self._query(
                {"description__isw": f"vipam cluster={cluster_id}"}
            )
            by_key: dict[AllocationKey, builtins.list[Held]] = {}
            for held in found:
                if held.key.cluster_id == cluster_id:
                    by_key.setdefault(held.key, []).append(held)
            # Duplicates of one key (a lost reply, then a retry) are settled here too: the
            # controller never calls allocate again for a Service that has its address, so
            # without this a duplicate would outlive every reconcile.
            kept = [await self._settle(group) for group in by_key.values()]
            return [ExternalAddress(h.ip, h.key, h.service) for h in kept]

        return await observed(self._on_call, self.name, "list", self._retry.run(attempt))

    async def health(self) -> None:
        async def attempt() -> None:
            await self._client.request("GET", "/api/status/")
            await self._resolve_parent()
            await self._ensure_tag()

        await observed(self._on_call, self.name, "health", self._retry.run(attempt))

    async def close(self) -> None:
        await self._client.close()

    # -- allocation -------------------------------------------------------------------------

    async def _create(
        self, key: AllocationKey, service: str, dns_name: str | None, requested_ip: str | None
    ) -> None:
        parent = await self._resolve_parent()
        fields: dict[str, Any] = {
            "status": self.status,
            "description": owner_description(key, service),
            "tags": [await self._ensure_tag()],
        }
        if dns_name and self.record_dns_name:
            fields["dns_name"] = dns_name
        if requested_ip is None:
            if (parent.span.version == 4) != (key.family == "IPv4"):
                raise BackendError("Rejected", f"the NetBox {parent.kind} {parent.id} has no "
                                   f"{key.family} addresses")
            try:
                await self._client.request(
                    "POST", f"/api/ipam/{parent.kind}/{parent.id}/available-ips/", body=fields
                )
            except BackendError as error:
                if error.status == 409:
                    raise BackendError("Exhausted", f"NetBox {parent.kind} {parent.id} is full",
                                       status=409) from None
                raise
            return
        await self._create_requested(parent, key, requested_ip, fields)

    async def _create_requested(
        self, parent: Parent, key: AllocationKey, requested_ip: str, fields: dict[str, Any]
    ) -> None:
        try:
            wanted = netaddr.IPAddress(requested_ip)
        except (netaddr.AddrFormatError, ValueError):
            raise BackendError("Rejected", f"{requested_ip!r} is not an IP address") from None
        if ("IPv4" if wanted.version == 4 else "IPv6") != key.family:
            raise BackendError("Rejected", f"{requested_ip} is not {key.family}")
        if wanted not in parent.span:
            raise BackendError("Rejected", f"{requested_ip} is outside NetBox {parent.kind} "
                               f"{parent.id} ({parent.span})")
        _, page = await self._client.request(
            "GET", "/api/ipam/ip-addresses/", params={"address": str(wanted), "limit": "50"}
        )
        for item in _results(page):
            if _vrf_id(item) == parent.vrf_id:
                raise BackendError("Rejected", f"{requested_ip} is already in NetBox "
                                   f"({item.get('description') or 'no description'})")
        body = {**fields, "address": f"{wanted}/{parent.prefix_length}", "vrf": parent.vrf_id}
        await self._client.request("POST", "/api/ipam/ip-addresses/", body=body)

    async def _settle(self, held: builtins.list[Held]) -> Held:
        """Keep the oldest object of a key, delete any duplicates a retry produced."""
        ordered = sorted(held, key=lambda h: h.id)
        for duplicate in ordered[1:]:
            await self._delete(duplicate.id)
        return ordered[0]

    async def _give_back(self, held: Held) -> None:
        if self.release_mode == "delete":
            await self._delete(held.id)
            return
        tag_id = await self._ensure_tag()
        # Kept in NetBox (deprecated) but no longer ours: without our tag and owner description it
        # is neither listed nor found by key again.
        await self._client.request("PATCH", f"/api/ipam/ip-addresses/{held.id}/", body={
            "status": self.release_mode.split(":", 1)[1],
            "tags": [t for t in held.tag_ids if t != tag_id],
            "description": f"released by vipam: {owner_description(held.key, held.service)}"[:200],
        })

    async def _delete(self, object_id: int) -> None:
        try:
            await self._client.request("DELETE", f"/api/ipam/ip-addresses/{object_id}/")
        except BackendError as error:
            if error.reason != "NotFound":
                raise

    # -- lookups ----------------------------------------------------------------------------

    async def _held_by(self, key: AllocationKey) -> builtins.list[Held]:
        found = await self._query({
            "description__isw": f"vipam cluster={key.cluster_id}",
            "description__iew": f"uid={key.service_uid} family={key.family}",
        })
        return [h for h in found if h.key == key]

    async def _query(self, filters: dict[str, str]) -> builtins.list[Held]:
        """Our IP address objects (tag + owner description) inside the parent, all pages."""
        parent = await self._resolve_parent()
        await self._ensure_tag()
        held: builtins.list[Held] = []
        offset = 0
        while True:
            params = {**filters, "tag": self.tag, "limit": str(PAGE), "offset": str(offset)}
            _, page = await self._client.request("GET", "/api/ipam/ip-addresses/", params=params)
            items = _results(page)
            for item in items:
                entry = _held(item)
                if entry is not None and _vrf_id(item) == parent.vrf_id and \
                        netaddr.IPAddress(entry.ip) in parent.span:
                    held.append(entry)
            offset += len(items)
            if not items or not isinstance(page, dict) or page.get("next") is None:
                return held

    async def _ensure_tag(self) -> int:
        if self._tag_id is not None:
            return self._tag_id
        for _ in range(2):
            _, page = await self._client.request(
                "GET", "/api/extras/tags/", params={"slug": self.tag}
            )
            results = _results(page)
            if results:
                self._tag_id = int(results[0]["id"])
                return self._tag_id
            try:
                _, created = await self._client.request("POST", "/api/extras/tags/", body={
                    "name": self.tag, "slug": self.tag,
                    "description": "IP addresses allocated by vipam (LoadBalancer VIPs)",
                })
            except BackendError as error:
                if error.reason == "Rejected":  # created concurrently: read it again
                    continue
                raise
            self._tag_id = int(created["id"])
            return self._tag_id
        raise BackendError("Rejected", f"cannot find or create the NetBox tag {self.tag!r}")

    async def _resolve_parent(self) -> Parent:
        if self._parent is not None:
            return self._parent
        options = self.options
        if options.get("ipRangeId") is not None:
            _, item = await self._client.request(
                "GET", f"/api/ipam/ip-ranges/{int(options['ipRangeId'])}/"
            )
            start = netaddr.IPNetwork(item["start_address"])
            end = netaddr.IPNetwork(item["end_address"])
            parent = Parent("ip-ranges", int(item["id"]), _vrf_id(item),
                            netaddr.IPRange(start.ip, end.ip), start.prefixlen)
        else:
            if options.get("prefixId") is not None:
                _, item = await self._client.request(
                    "GET", f"/api/ipam/prefixes/{int(options['prefixId'])}/"
                )
            else:
                item = await self._find_prefix(str(options["prefix"]), options.get("vrf"))
            network = netaddr.IPNetwork(item["prefix"])
            parent = Parent("prefixes", int(item["id"]), _vrf_id(item),
                            netaddr.IPRange(network.first, network.last), network.prefixlen)
        self._parent = parent
        return parent

    async def _find_prefix(self, prefix: str, vrf: Any) -> dict[str, Any]:
        vrf_id: int | None = None
        if vrf is not None and str(vrf) != "":
            if isinstance(vrf, int) or str(vrf).isdigit():
                vrf_id = int(vrf)
            else:
                _, page = await self._client.request(
                    "GET", "/api/ipam/vrfs/", params={"name": str(vrf)}
                )
                vrfs = _results(page)
                if len(vrfs) != 1:
                    raise BackendError("NotFound", f"NetBox has {len(vrfs)} VRFs named {vrf!r}",
                                       retryable=False)
                vrf_id = int(vrfs[0]["id"])
        _, page = await self._client.request(
            "GET", "/api/ipam/prefixes/", params={"prefix": prefix, "limit": "50"}
        )
        matches = [item for item in _results(page) if _vrf_id(item) == vrf_id]
        if len(matches) != 1:
            where = f"VRF {vrf}" if vrf_id is not None else "the global table"
            raise BackendError("NotFound", f"NetBox has {len(matches)} prefixes {prefix} in "
                               f"{where}", retryable=False)
        return matches[0]


def _results(page: JSON) -> list[dict[str, Any]]:
    if isinstance(page, dict) and isinstance(page.get("results"), list):
        return [item for item in page["results"] if isinstance(item, dict)]
    return []


def _vrf_id(item: dict[str, Any]) -> int | None:
    vrf = item.get("vrf")
    if isinstance(vrf, dict) and vrf.get("id") is not None:
        return int(vrf["id"])
    if isinstance(vrf, int):
        return vrf
    return None


def _held(item: dict[str, Any]) -> Held | None:
    owner = parse_owner(str(item.get("description") or ""))
    address = item.get("address")
    if owner is None or not isinstance(address, str):
        return None
    tags = tuple(int(t["id"]) for t in item.get("tags") or [] if isinstance(t, dict) and "id" in t)
    return Held(int(item["id"]), address.split("/")[0], owner[0], owner[1], tags)
