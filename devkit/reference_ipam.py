"""A small in-memory implementation of docs/ipam-http.yaml, with fault injection.

It exists so that the `http` provider is tested over real HTTP against something that keeps the
contract, and so the playground has an IPAM to point a pool at. Faults (delays, the next N answers
being 5xx/429, an allocation that commits and then drops the connection before replying) are the
ones a real IPAM produces, and the ones the controller must converge through.

Run standalone:  python -m devkit.reference_ipam --listen 127.0.0.1:8090 \
                     --token secret --pool default=198.51.100.0/28,2001:db8::/124 \
                     [--cert server.pem --key server.key]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import netaddr
from aiohttp import web

from pools.external.base import FAMILIES, AllocationKey, Family


@dataclass
class Faults:
    """What the server does wrong, set by tests (or POST /_faults) while it runs."""

    delay_seconds: float = 0.0  # every contract request waits this long before it is handled
    fail_next: deque[tuple[int, float | None]] = field(default_factory=deque)  # (status, after)
    crash_after_commit: int = 0  # the next N allocations commit, then drop the connection

    def fail(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        self.fail_next.extend([(status, retry_after)] * times)


@dataclass(frozen=True)
class Record:
    key: AllocationKey
    ip: str
    service: str
    dns_name: str | None
    pool: str

    def as_json(self) -> dict[str, Any]:
        return {
            "clusterId": self.key.cluster_id,
            "serviceUid": self.key.service_uid,
            "family": self.key.family,
            "ip": self.ip,
            "service": self.service,
            "dnsName": self.dns_name,
            "pool": self.pool,
        }


class ContractError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _ranges(spec: str) -> netaddr.IPRange:
    """A pool entry: "first-last" as given; a CIDR without its IPv4 network and broadcast
    addresses (as NetBox and most IPAMs hand them out), except for /31 and /32."""
    if "-" in spec:
        first, last = spec.split("-", 1)
        return netaddr.IPRange(first.strip(), last.strip())
    network = netaddr.IPNetwork(spec)
    if network.version == 4 and network.prefixlen < 31:
        return netaddr.IPRange(network.first + 1, network.last - 1)
    return netaddr.IPRange(network.first, network.last)


def _family(address: netaddr.IPAddress | netaddr.IPRange) -> Family:
    return "IPv4" if address.version == 4 else "IPv6"


class ReferenceIPAM:
    """The contract's state machine, free of HTTP: pools of ranges and allocations by key."""

    def __init__(self, pools: Mapping[str, Sequence[str]]) -> None:
        if not pools:
            raise ValueError("at least one pool is needed")
        self.pools = {name: [_ranges(spec) for spec in specs] for name, specs in pools.items()}
        self.default_pool = next(iter(self.pools))
        self.records: dict[AllocationKey, Record] = {}

    def _in_use(self) -> set[netaddr.IPAddress]:
        return {netaddr.IPAddress(record.ip) for record in self.records.values()}

    def _candidates(self, pool: str, family: Family) -> Iterator[netaddr.IPAddress]:
        for block in self.pools[pool]:
            if _family(block) == family:
                yield from block

    def allocate(
        self, key: AllocationKey, service: str, dns_name: str | None,
        requested_ip: str | None, pool: str | None,
    ) -> tuple[Record, bool]:
        """Return (record, created). A key that holds an address gets it back unchanged."""
        existing = self.records.get(key)
        if existing is not None:
            return existing, False
        pool = pool or self.default_pool
        if pool not in self.pools:
            raise ContractError(400, "Rejected", f"unknown pool {pool!r}")
        used = self._in_use()
        if requested_ip:
            try:
                wanted = netaddr.IPAddress(requested_ip)
            except (netaddr.AddrFormatError, ValueError) as exc:
                raise ContractError(400, "Rejected", f"bad address {requested_ip!r}") from exc
            if _family(wanted) != key.family:
                raise ContractError(400, "Rejected", f"{requested_ip} is not {key.family}")
            if not any(wanted in block for block in self.pools[pool]):
                raise ContractError(400, "Rejected", f"{requested_ip} is not in pool {pool}")
            if wanted in used:
                raise ContractError(409, "InUse", f"{requested_ip} is allocated to another key")
            chosen = wanted
        else:
            free = (ip for ip in self._candidates(pool, key.family) if ip not in used)
            found = next(free, None)
            if found is None:
                raise ContractError(409, "Exhausted", f"pool {pool} has no free {key.family}")
            chosen = found
        record = Record(key, str(chosen), service, dns_name, pool)
        self.records[key] = record
        return record, True

    def release(self, key: AllocationKey, ip: str | None) -> bool:
        record = self.records.get(key)
        if record is None or (ip is not None and ip != record.ip):
            return False
        del self.records[key]
        return True

    def list(self, cluster_id: str) -> list[Record]:
        return [r for r in self.records.values() if r.key.cluster_id == cluster_id]


class ReferenceServer:
    """ReferenceIPAM behind aiohttp, with Bearer auth, optional TLS and fault injection."""

    def __init__(self, pools: Mapping[str, Sequence[str]], *, token: str | None = None) -> None:
        self.ipam = ReferenceIPAM(pools)
        self.token = token
        self.faults = Faults()
        self.requests: list[str] = []  # "METHOD path" of every contract request, in order
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_get("/v1/health", self._health)
        self.app.router.add_get("/v1/clusters/{cluster}/allocations", self._list)
        path = "/v1/clusters/{cluster}/allocations/{uid}/{family}"
        self.app.router.add_put(path, self._allocate)
        self.app.router.add_delete(path, self._release)
        self.app.router.add_post("/_faults", self._set_faults)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        wanted = f"Bearer {self.token}"
        if self.token is not None and request.headers.get("Authorization") != wanted:
            return _error(401, "Unauthorized", "missing or wrong bearer token")
        if request.path.startswith("/_"):
            response: web.StreamResponse = await handler(request)
            return response
        self.requests.append(f"{request.method} {request.path}")
        if self.faults.delay_seconds:
            await asyncio.sleep(self.faults.delay_seconds)
        if self.faults.fail_next:
            status, retry_after = self.faults.fail_next.popleft()
            response = _error(status, "Unavailable", "injected failure")
            if retry_after is not None:
                response.headers["Retry-After"] = str(int(retry_after))
            return response
        try:
            response = await handler(request)
        except ContractError as exc:
            return _error(exc.status, exc.reason, exc.message)
        return response

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _list(self, request: web.Request) -> web.Response:
        records = self.ipam.list(request.match_info["cluster"])
        return web.json_response({"items": [r.as_json() for r in records]})

    async def _allocate(self, request: web.Request) -> web.StreamResponse:
        key = _key(request)
        try:
            body = await request.json()
        except ValueError as exc:
            raise ContractError(400, "Rejected", "body is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("service"), str):
            raise ContractError(400, "Rejected", "service (namespace/name) is required")
        record, created = self.ipam.allocate(
            key, body["service"], body.get("dnsName"), body.get("requestedIP"), body.get("pool")
        )
        if created and self.faults.crash_after_commit > 0:
            self.faults.crash_after_commit -= 1
            # The allocation is committed; the client never hears about it.
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("injected crash after commit")
        return web.json_response(record.as_json(), status=201 if created else 200)

    async def _release(self, request: web.Request) -> web.Response:
        self.ipam.release(_key(request), request.query.get("ip"))
        return web.Response(status=204)

    async def _set_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.faults.delay_seconds = float(body.get("delaySeconds", 0))
        self.faults.crash_after_commit = int(body.get("crashAfterCommit", 0))
        self.faults.fail_next.clear()
        for item in body.get("failNext", []):
            self.faults.fail(int(item["status"]), int(item.get("times", 1)),
                             item.get("retryAfter"))
        return web.json_response({"ok": True})

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Listen and return the base URL (the port is chosen by the kernel when 0)."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound = self._runner.addresses[0][1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _key(request: web.Request) -> AllocationKey:
    family = request.match_info["family"]
    if family not in FAMILIES:
        raise ContractError(400, "Rejected", f"family must be one of {FAMILIES}")
    try:
        return AllocationKey(request.match_info["cluster"], request.match_info["uid"], family)
    except ValueError as exc:
        raise ContractError(400, "Rejected", str(exc)) from exc


def _error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"reason": reason, "message": message}, status=status)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8090", help="host:port")
    parser.add_argument("--token", default=None, help="require this Bearer token")
    parser.add_argument("--pool", action="append", default=[],
                        help="name=cidr-or-range[,...] (repeatable)")
    parser.add_argument("--cert", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--key", help="private key of --cert (PEM)")
    args = parser.parse_args(argv)
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    pools = {}
    for item in args.pool or ["default=198.51.100.0/28,2001:db8::/124"]:
        name, _, specs = item.partition("=")
        pools[name] = [s for s in specs.split(",") if s]
    host, _, port = args.listen.rpartition(":")

    async def serve() -> None:
        server = ReferenceServer(pools, token=args.token)
        url = await server.start(host, int(port), ssl_context=context)
        print(f"reference IPAM listening on {url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
