"""Single requests to the Kubernetes API, as JSON dicts.

kubernetes-asyncio supplies configuration and authentication (kubeconfig, in-cluster tokens,
client certificates, exec plugins) and its aiohttp connection pool. We bypass its generated
models and its request path: deserialising every Service into model objects, and re-walking
every body to "sanitize" it, cost more than the rest of a sync; and a controller that
round-trips whole objects must not drop fields a model does not know.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypedDict, cast
from urllib.parse import urlencode

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from ccm import __version__
from ccm.kube.resources import Resource

JSON = dict[str, Any]
"""An object as the server sends it. The client layer handles any kind, so this is its wire
type; code that reads a kind reads it through ``ccm.contract.views``."""
PatchBody = JSON | list[JSON]
"""A merge or strategic-merge patch (an object), or a JSON patch (a list of operations)."""
Body = PatchBody | None


ListMeta = TypedDict(
    "ListMeta", {"resourceVersion": str, "continue": str, "remainingItemCount": int},
    total=False,
)


class ObjectList(TypedDict, total=False):
    """What `list_all` answers: every item, and the list metadata of the first page (its
    resourceVersion is where a watch starts)."""

    apiVersion: str
    kind: str
    metadata: ListMeta
    items: list[JSON]
RequestObserver = Callable[[str, str, int, float], None]
"""Called after each request: (verb, resource, HTTP status or 0 on transport error, seconds)."""

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
MAX_RETRY_AFTER = 30.0  # never sleep longer than this on one server answer
# who is asking, as the server's audit log and request metrics show it; the processes add
# their component and identity (``user_agent``), as client-go's binaries add their name
DEFAULT_USER_AGENT = f"vipam/{__version__}"


def user_agent(component: str, identity: str) -> str:
    """``vipam-controller/0.1.0 (pod-name)``: which process of ours sent a request."""
    return f"vipam-{component}/{__version__} ({identity})"


class ApiError(Exception):
    """A failed request: the HTTP status (0 for transport errors) and the server's Status reason."""

    def __init__(
        self, status: int, reason: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def gone(self) -> bool:
        return self.status == 410


class TokenBucket:
    """Client-side rate limit (QPS with a burst), as client-go applies to every controller."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.capacity = max(1, burst)
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        if self.qps <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.qps)
            self.updated = now
            if self.tokens < 1:
                await asyncio.sleep((1 - self.tokens) / self.qps)
                self.tokens = 1.0
                self.updated = time.monotonic()
            self.tokens -= 1


def _verb(method: str, query: Mapping[str, str] | None, named: bool) -> str:
    if method == "GET":
        if query and query.get("watch"):
            return "watch"
        return "get" if named else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]


class KubeApi(Protocol):
    """The surface of the client layer everything above it uses.

    :class:`KubeClient` implements it over HTTP; tests/fakekube.py implements it in memory
    (resourceVersions, 409s, watches, counted requests), so the controller's core is tested
    without a server. Type against this, not against KubeClient.
    """

    observer: RequestObserver | None

    async def get(
        self, res: Resource, namespace: str | None, name: str, subresource: str | None = None
    ) -> JSON: ...

    async def list_all(
        self, res: Resource, namespace: str | None = None, page: int = 500,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> ObjectList: ...

    async def create(self, res: Resource, namespace: str | None, body: JSON) -> JSON: ...

    async def replace(
        self, res: Resource, namespace: str | None, name: str, body: JSON,
        subresource: str | None = None,
    ) -> JSON: ...

    async def patch(
        self, res: Resource, namespace: str | None, name: str, patch: PatchBody,
        *, content_type: str = MERGE_PATCH, subresource: str | None = None,
    ) -> JSON: ...

    async def delete(self, res: Resource, namespace: str | None, name: str) -> JSON: ...

    def watch(
        self,
        res: Resource,
        resource_version: str,
        *,
        namespace: str | None = None,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
    ) -> AsyncIterator[JSON]: ...

    async def close(self) -> None: ...


class KubeClient:
    """Sends requests; knows nothing of Services or pools."""

    def __init__(
        self,
        api: k8s_client.ApiClient,
        *,
        qps: float = 500.0,
        burst: int = 1000,
        request_timeout: float = 30.0,
        observer: RequestObserver | None = None,
        throttle_retries: int = 10,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self.throttle_retries = throttle_retries
        self.user_agent = user_agent
        self.throttled = 0  # 429s waited out
        self._api = api
        self._session = _session_for(api.configuration)
        self._proxy = api.configuration.proxy
        self._server_hostname = api.configuration.tls_server_name
        self._bucket = TokenBucket(qps, burst)
        self._timeout = request_timeout
        self.observer = observer

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        qps: float = 500.0,
        burst: int = 1000,
        request_timeout: float = 30.0,
        observer: RequestObserver | None = None,
        throttle_retries: int = 10,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> KubeClient:
        """A client from a kubeconfig file, or the in-cluster service account without one."""
        configuration = k8s_client.Configuration()
        if kubeconfig:
            await k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(
            k8s_client.ApiClient(configuration=configuration), qps=qps, burst=burst,
            request_timeout=request_timeout, observer=observer,
            throttle_retries=throttle_retries, user_agent=user_agent,
        )

    async def close(self) -> None:
        await self._session.close()
        await self._api.close()

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        named: bool,
        query: Mapping[str, str] | None = None,
        body: Body = None,
        content_type: str = "application/json",
        http_timeout: aiohttp.ClientTimeout | float | None = None,
    ) -> aiohttp.ClientResponse:
        """One request; a 429 with Retry-After (API priority and fairness turned it away, so
        the server did nothing) is sent again after the wait the server asked for, up to
        `throttle_retries` times, as client-go does."""
        for attempt in range(self.throttle_retries + 1):
            try:
                return await self._send_once(
                    method, path, resource=resource, named=named, query=query, body=body,
                    content_type=content_type, http_timeout=http_timeout,
                )
            except ApiError as exc:
                if exc.status != 429 or exc.retry_after is None or attempt == self.throttle_retries:
                    raise
                self.throttled += 1
                await asyncio.sleep(min(exc.retry_after, MAX_RETRY_AFTER))
        raise AssertionError("unreachable")

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        named: bool,
        query: Mapping[str, str] | None = None,
        body: Body = None,
        content_type: str = "application/json",
        http_timeout: aiohttp.ClientTimeout | float | None = None,
    ) -> aiohttp.ClientResponse:
        await self._bucket.take()
        verb = _verb(method, query, named)
        started = time.monotonic()
        headers = {"Content-Type": content_type, "Accept": "application/json",
                   "User-Agent": self.user_agent}
        # authentication (tokens, exec plugins with refresh) stays kubernetes-asyncio's job
        await self._api.update_params_for_auth(headers, [], ["BearerToken"])
        url = self.host + path
        if query:
            url += "?" + urlencode(query)
        if http_timeout is None:
            http_timeout = self._timeout
        timeout = (
            http_timeout if isinstance(http_timeout, aiohttp.ClientTimeout)
            else aiohttp.ClientTimeout(total=http_timeout)
        )
        try:
            response = await self._session.request(
                method, url, headers=headers, timeout=timeout,
                data=None if body is None else json.dumps(body),
                server_hostname=self._server_hostname, proxy=self._proxy,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._observe(verb, resource, 0, started)
            raise ApiError(0, "TransportError", f"{type(exc).__name__}: {exc}") from exc
        status = response.status
        if 200 <= status < 300:
            return response
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raw = str(exc).encode()
        finally:
            response.release()
            self._observe(verb, resource, status, started)
        raise _error_from(status, raw, response.headers.get("Retry-After"))

    def _observe(self, verb: str, resource: str, status: int, started: float) -> None:
        if self.observer is not None:
            self.observer(verb, resource, status, time.monotonic() - started)

    async def _json(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        named: bool,
        query: Mapping[str, str] | None = None,
        body: Body = None,
        content_type: str = "application/json",
    ) -> JSON:
        started = time.monotonic()
        response = await self._send(
            method, path, resource=resource, named=named, query=query, body=body,
            content_type=content_type,
        )
        try:
            data = await response.read()
        finally:
            response.release()
        self._observe(_verb(method, query, named), resource, response.status, started)
        result: JSON = json.loads(data) if data else {}
        return result

    # -- typed verbs -----------------------------------------------------------------------

    async def get(
        self, res: Resource, namespace: str | None, name: str, subresource: str | None = None
    ) -> JSON:
        path = res.object_path(namespace, name, subresource)
        return await self._json("GET", path, resource=str(res), named=True)

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> JSON:
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if limit:
            query["limit"] = str(limit)
        if continue_token:
            query["continue"] = continue_token
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        path = res.collection_path(namespace)
        return await self._json("GET", path, resource=str(res), named=False, query=query)

    async def list_all(
        self, res: Resource, namespace: str | None = None, page: int = 500,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> ObjectList:
        """Every item, following `continue` tokens (resourceVersion: the first page's).

        `transform` is applied page by page, so a large list never holds every object whole
        at once (the peak, not just the result, sets a Python process's RSS)."""
        def kept(listing: JSON) -> list[JSON]:
            items = listing.get("items") or []
            return [transform(i) for i in items] if transform is not None else list(items)

        first = await self.list(res, namespace, limit=page)
        items = kept(first)
        token = (first.get("metadata") or {}).get("continue")
        while token:
            more = await self.list(res, namespace, limit=page, continue_token=token)
            items.extend(kept(more))
            token = (more.get("metadata") or {}).get("continue")
        first["items"] = items
        return cast(ObjectList, first)

    async def create(self, res: Resource, namespace: str | None, body: JSON) -> JSON:
        path = res.collection_path(namespace)
        return await self._json("POST", path, resource=str(res), named=False, body=body)

    async def replace(
        self, res: Resource, namespace: str | None, name: str, body: JSON,
        subresource: str | None = None,
    ) -> JSON:
        """PUT: the body's metadata.resourceVersion is the precondition (409 when stale)."""
        path = res.object_path(namespace, name, subresource)
        label = f"{res}/{subresource}" if subresource else str(res)
        return await self._json("PUT", path, resource=label, named=True, body=body)

    async def patch(
        self, res: Resource, namespace: str | None, name: str, patch: PatchBody,
        *, content_type: str = MERGE_PATCH, subresource: str | None = None,
    ) -> JSON:
        path = res.object_path(namespace, name, subresource)
        label = f"{res}/{subresource}" if subresource else str(res)
        return await self._json(
            "PATCH", path, resource=label, named=True, body=patch, content_type=content_type
        )

    async def delete(self, res: Resource, namespace: str | None, name: str) -> JSON:
        path = res.object_path(namespace, name)
        return await self._json("DELETE", path, resource=str(res), named=True)

    async def watch(
        self,
        res: Resource,
        resource_version: str,
        *,
        namespace: str | None = None,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
    ) -> AsyncIterator[JSON]:
        """Watch events as dicts, bookmarks included; an ERROR event raises ApiError (410...).

        Ends normally when the server closes the stream (its timeoutSeconds); a stream that goes
        silent for longer than the server's timeout plus a margin is treated as dead.
        """
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            query["labelSelector"] = label_selector
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout, sock_read=timeout_seconds + 30
        )
        response = await self._send(
            "GET", res.collection_path(namespace), resource=str(res), named=False,
            query=query, http_timeout=timeout,
        )
        self._observe("watch", str(res), response.status, time.monotonic())
        try:
            while True:
                try:
                    line = await response.content.readline()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise ApiError(0, "TransportError", f"watch broken: {exc}") from exc
                if not line:
                    return
                if not line.strip():
                    continue
                event: JSON = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiError(
                        int(status.get("code") or 500),
                        str(status.get("reason") or "Error"),
                        str(status.get("message") or ""),
                    )
                yield event
        finally:
            response.release()
            response.close()


def _session_for(configuration: k8s_client.Configuration) -> aiohttp.ClientSession:
    """An aiohttp session with the kubeconfig's TLS settings (CA, client certificate, verify).

    Ours rather than the generated client's: that one reads proxy settings from the environment
    on every request (trust_env), which costs two thread-pool hops per request, about twice the
    client CPU of the request itself. A proxy from the kubeconfig is still honoured.
    """
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(limit=configuration.connection_pool_maxsize, ssl=context)
    return aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=2**21)


def _error_from(status: int, raw: bytes, retry_after: str | None) -> ApiError:
    reason, message = "Unknown", raw.decode(errors="replace")[:500]
    try:
        body = json.loads(raw)
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or message)
    except ValueError:
        pass
    delay: float | None = None
    if retry_after:
        try:
            delay = float(retry_after)
        except ValueError:
            delay = None
    return ApiError(status, reason, message, delay)
