"""Provider `http`: the client of vipam's own IPAM contract (docs/ipam-http.yaml).

The contract puts the allocation key in the URL and makes PUT idempotent, so every operation here
can be retried blindly: a reply lost to a timeout or a dropped connection is recovered by asking
again, and the server answers with the address it already gave. A key that already holds an
address gets that address back even if `requested_ip` now names another one: the controller
compares and releases first when a Service changes its request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import netaddr

from pools.external.base import (
    AllocationKey,
    BackendError,
    CallObserver,
    ExternalAddress,
    Reason,
    RetryPolicy,
    observed,
)
from pools.external.transport import JSON, JsonClient

KNOWN_OPTIONS = frozenset({"pool"})


class HTTPBackend:
    """IPAMBackend for any service implementing docs/ipam-http.yaml."""

    provider = "http"

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        ca_bundle: str | None = None,
        timeout: float = 5.0,
        options: dict[str, Any] | None = None,
        name: str = "http",
        on_call: CallObserver | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        options = dict(options or {})
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise ValueError(f"unknown http provider options: {sorted(unknown)}")
        self.name = name
        self.pool: str | None = options.get("pool")
        self._client = JsonClient(
            url,
            authorization=f"Bearer {token}" if token else None,
            ca_bundle=ca_bundle,
            timeout=timeout,
        )
        self._retry = retry or RetryPolicy()
        self._on_call = on_call

    @staticmethod
    def _path(key: AllocationKey) -> str:
        return (
            f"/v1/clusters/{quote(key.cluster_id, safe='')}/allocations/"
            f"{quote(key.service_uid, safe='')}/{key.family}"
        )

    async def allocate(
        self,
        key: AllocationKey,
        *,
        service: str,
        dns_name: str | None = None,
        requested_ip: str | None = None,
    ) -> str:
        body = {"service": service, "dnsName": dns_name, "requestedIP": requested_ip,
                "pool": self.pool}

        async def attempt() -> str:
            try:
                _, payload = await self._client.request("PUT", self._path(key), body=body)
            except BackendError as error:
                raise _contract_error(error) from None
            ip = _allocation(payload).ip
            if _family_of(ip) != key.family:
                # A server bug, but handing an IPv6 address to an IPv4 slot would break the
                # Service in ways much harder to trace than this error.
                raise BackendError("Rejected", f"server answered {ip} for {key}", retryable=False)
            return ip

        return await observed(self._on_call, self.name, "allocate", self._retry.run(attempt))

    async def release(self, key: AllocationKey, ip: str) -> None:
        async def attempt() -> None:
            await self._client.request("DELETE", self._path(key), params={"ip": ip})

        await observed(self._on_call, self.name, "release", self._retry.run(attempt))

    async def list(self, cluster_id: str) -> list[ExternalAddress]:
        path = f"/v1/clusters/{quote(cluster_id, safe='')}/allocations"

        async def attempt() -> list[ExternalAddress]:
            _, payload = await self._client.request("GET", path)
            items = payload.get("items") if isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise BackendError("Unavailable", f"GET {path}: answer has no items list",
                                   retryable=False)
            return [_allocation(item) for item in items]

        return await observed(self._on_call, self.name, "list", self._retry.run(attempt))

    async def health(self) -> None:
        async def attempt() -> None:
            await self._client.request("GET", "/v1/health")

        await observed(self._on_call, self.name, "health", self._retry.run(attempt))

    async def close(self) -> None:
        await self._client.close()


def _contract_error(error: BackendError) -> BackendError:
    """Give a 409 its contract meaning: Exhausted stays Exhausted; InUse is a rejected request."""
    if error.status == 409:
        said = error.body.get("reason") if isinstance(error.body, dict) else None
        reason: Reason = "Exhausted" if said == "Exhausted" else "Rejected"
        return BackendError(reason, error.message, status=409, body=error.body)
    return error


def _family_of(ip: str) -> str | None:
    try:
        return "IPv4" if netaddr.IPAddress(ip).version == 4 else "IPv6"
    except (netaddr.AddrFormatError, ValueError):
        return None


def _allocation(item: JSON) -> ExternalAddress:
    """Parse one Allocation object of the contract."""
    if not isinstance(item, dict) or not isinstance(item.get("ip"), str):
        raise BackendError("Unavailable", f"malformed allocation in answer: {item!r}",
                           retryable=False)
    try:
        key: AllocationKey | None = AllocationKey(
            str(item["clusterId"]), str(item["serviceUid"]), item["family"]
        )
    except (KeyError, ValueError):
        key = None
    service = item.get("service")
    return ExternalAddress(ip=item["ip"], key=key,
                           service=service if isinstance(service, str) else None)
