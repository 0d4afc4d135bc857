"""The HTTP face of the emulator: one aiohttp handler that routes, counts, injects faults and
serves get/list/watch/create/update/patch/delete as the apiserver does over JSON."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import yaml
from aiohttp import web

from devkit.emulator import conversion, discovery, tables
from devkit.emulator.admission import WriteOptions
from devkit.emulator.errors import ApiError, bad_request, gone
from devkit.emulator.faults import Faults
from devkit.emulator.resources import Registry, ResourceType
from devkit.emulator.routing import ResourceRoute, parse_resource_path
from devkit.emulator.selectors import make_filter, parse_field_selector, parse_label_selector
from devkit.emulator.stats import RequestStats
from devkit.emulator.store import Store
from devkit.emulator.streaming import TRUE_WORDS, serve_watch
from devkit.emulator.watch import WatchHub

JSON = "application/json"
# what a POST or PUT body may be (protobuf is refused later, with its own message)
_WHOLE_OBJECT_TYPES = frozenset({JSON, "application/yaml", "application/vnd.kubernetes.protobuf",
                                 "application/octet-stream"})
LOG = logging.getLogger("devkit.emulator")


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                   ) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type=JSON, headers=headers)


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.status(), error.code, error.headers)


_served = conversion.served  # stored once per resource, shown at the version asked for


class ApiServer:
    """Request handling over a `Store`; owns no sockets (the `Emulator` does)."""

    def __init__(self, store: Store, hub: WatchHub, registry: Registry, faults: Faults,
                 stats: RequestStats, bookmark_interval: float) -> None:
        self.store = store
        self.hub = hub
        self.registry = registry
        self.faults = faults
        self.stats = stats
        self.bookmark_interval = bookmark_interval
        self.server_address = "127.0.0.1:0"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._handle(request)
        LOG.debug("%s %s -> %s", request.method, request.path_qs, response.status)
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._outside_the_api(request.path):
            # kube-apiserver's fallback handler: not a Status, plain text
            return web.Response(status=404, text="404 page not found\n")
        try:
            route = parse_resource_path(self.registry, request.path)
            verb = self._verb(request, route)
            if route is not None and verb is not None:
                self.stats.record(verb, route.stats_resource,
                                  request.headers.get("User-Agent", ""))
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            failure = self.faults.planned_failure(request.method, request.path_qs)
            if failure is not None:
                return _error_response(failure)
            if route is None:
                return self._discovery(request)
            if verb is None:
                raise ApiError(405, f"the server does not allow this method ({request.method}) "
                                    "on the requested resource")
            return await self._resource(request, route, verb)
        except ApiError as error:
            return _error_response(error)
        except (ValueError, yaml.YAMLError) as error:
            return _error_response(bad_request(f"invalid request: {error}"))
        except Exception as error:  # an emulator bug: still answer with a Status, and log it
            LOG.exception("internal error on %s %s", request.method, request.path_qs)
            return _error_response(ApiError(500, f"emulator internal error: {error!r}"))

    _TOP_LEVEL = frozenset({"api", "apis", "version", "openapi", "healthz", "readyz", "livez"})

    def _outside_the_api(self, path: str) -> bool:
        """Paths no API group serves: an unknown top-level path or group."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return False
        if parts[0] not in self._TOP_LEVEL:
            return True
        return parts[0] == "apis" and len(parts) > 1 and (
            parts[1] not in self.registry.group_versions())

    @staticmethod
    def _verb(request: web.Request, route: ResourceRoute | None) -> str | None:
        if route is None:
            return None
        method = request.method
        if method == "GET":
            watch = request.query.get("watch", "") in TRUE_WORDS or route.legacy_watch
            if watch:
                return "watch"  # with a name: a watch of that one object
            return "get" if route.name is not None else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method)

    # -------------------------------------------------------------- discovery

    def _discovery(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p]
        body: dict[str, Any] | None = None
        if request.method != "GET":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if parts == ["version"]:
            body = discovery.VERSION_INFO
        elif parts == ["api"]:
            body = discovery.api_versions(self.server_address)
        elif parts == ["apis"]:
            body = discovery.api_group_list(self.registry)
        elif len(parts) == 2 and parts[0] == "api":
            body = discovery.api_resource_list(self.registry, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            body = discovery.api_group(self.registry, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            body = discovery.api_resource_list(self.registry, parts[1], parts[2])
        elif parts == ["openapi", "v3"]:
            body = discovery.openapi_v3_index(self.registry)
        elif parts[:3] == ["openapi", "v3", "api"] and len(parts) == 4:
            body = discovery.openapi_v3_document(self.registry, "", parts[3])
        elif parts[:3] == ["openapi", "v3", "apis"] and len(parts) == 5:
            body = discovery.openapi_v3_document(self.registry, parts[3], parts[4])
        elif parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if body is None:
            raise ApiError(404, f"the server could not find the requested resource "
                                f"({request.path})")
        return _json_response(body)

    # -------------------------------------------------------------- resources

    async def _read_body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        content_type = request.content_type
        if "protobuf" in content_type:
            raise ApiError(415, "protobuf is not supported by this emulator; send JSON")
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)

    async def _resource(self, request: web.Request, route: ResourceRoute,
                        verb: str) -> web.StreamResponse:
        rt, namespace, name = route.rt, route.namespace, route.name
        query = request.query
        options = WriteOptions(dry_run=query.get("dryRun") == "All",
                               field_validation=query.get("fieldValidation") or "Warn")
        if verb == "get":
            assert name is not None
            obj = _served(self.store.get(rt, namespace, name), rt)
            if tables.wants_table(request.headers.get("Accept", "")):
                return _json_response(tables.to_table(
                    rt, [obj], obj["metadata"]["resourceVersion"],
                    query.get("includeObject", "Metadata")))
            return _json_response(obj)
        if verb == "list":
            return self._list(request, route)
        if verb == "watch":
            return await serve_watch(request, route, self._filter(request, route), self.store,
                                     self.hub, self.bookmark_interval)
        if verb in ("create", "update") and request.content_type not in _WHOLE_OBJECT_TYPES:
            raise ApiError(415, "the body of the request was in an unknown format - accepted "
                                "media types include: application/json, application/yaml, "
                                "application/vnd.kubernetes.protobuf")
        if verb == "create":
            if name is not None:
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource")
            if rt.namespaced and namespace is None:
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource (a namespace is required)")
            created = self.store.create(rt, namespace, await self._read_body(request), options)
            return _json_response(_served(created, rt), 201, _warnings(options))
        if name is None and verb != "delete":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        assert verb in ("update", "patch", "delete"), verb
        subresource = "status" if route.subresource == "status" else None
        if verb == "update":
            assert name is not None
            updated, created_now = self.store.update_or_create(
                rt, namespace, name, await self._read_body(request), subresource, options)
            return _json_response(_served(updated, rt), 201 if created_now else 200,
                                  _warnings(options))
        if verb == "patch":
            assert name is not None
            patched = self.store.patch(rt, namespace, name, request.content_type,
                                       await self._read_body(request), subresource, options)
            return _json_response(_served(patched, rt), 200, _warnings(options))
        return await self._delete(request, route, options.dry_run)

    async def _delete(self, request: web.Request, route: ResourceRoute,
                      dry_run: bool) -> web.Response:
        rt = route.rt
        options = await self._read_body(request) or {}
        if not isinstance(options, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        if route.name is None:  # deletecollection
            if rt.namespaced and route.namespace is None:
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource (deletecollection needs a namespace)")
            accept = self._filter(request, route)
            deleted = []
            for obj in self.store.select(rt, accept):
                meta = obj["metadata"]
                final, _ = self.store.delete(rt, meta.get("namespace"), meta["name"], None,
                                             dry_run)
                deleted.append(_served(final, rt))
            return _json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                                   "metadata": {"resourceVersion": str(self.store.rv)},
                                   "items": deleted})
        obj, gone_now = self.store.delete(rt, route.namespace, route.name, options, dry_run)
        if not gone_now:
            return _json_response(_served(obj, rt))
        details: dict[str, Any] = {"name": route.name, "kind": rt.plural,
                                   "uid": obj["metadata"]["uid"]}
        if rt.group:
            details["group"] = rt.group
        return _json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Success", "details": details})

    def _filter(self, request: web.Request, route: ResourceRoute) -> Any:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"),
                                      route.rt.field_selectors)
        fields = tuple((conversion.storage_field_path(route.rt, path), equal, value)
                       for path, equal, value in fields)
        return make_filter(route.namespace, labels, fields)

    def _list(self, request: web.Request, route: ResourceRoute) -> web.Response:
        rt, query = route.rt, request.query
        self._check_list_version(route, query.get("resourceVersion", ""),
                                 query.get("resourceVersionMatch", ""))
        items = self.store.select(rt, self._filter(request, route))
        list_rv = self.store.rv
        token = query.get("continue")
        if token:
            list_rv, start = self._decode_continue(rt, token)
            items = [o for o in items if _key(o) > start]
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
            meta["continue"] = _encode_continue(list_rv, _key(items[-1]))
        items = [_served(o, rt) for o in items]
        if tables.wants_table(request.headers.get("Accept", "")):
            return _json_response(tables.to_table(rt, items, meta.pop("resourceVersion"),
                                                  query.get("includeObject", "Metadata"), meta))
        return _json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                               "metadata": meta, "items": items})

    def _check_list_version(self, route: ResourceRoute, rv: str, match: str) -> None:
        if rv in ("", "0") or match != "Exact":
            return
        if not rv.isdigit():
            raise bad_request(f"invalid resourceVersion {rv!r}")
        if self.hub.too_old(route.rt.storage_key, int(rv)):
            raise gone(f"too old resource version: {rv}")

    def _decode_continue(self, rt: ResourceType, token: str) -> tuple[int, tuple[str, str]]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            rv, start = int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise bad_request(f"continue key is not valid: {error}") from error
        if self.hub.too_old(rt.storage_key, rv):
            raise gone("The provided continue parameter is too old to display a consistent list "
                       "result. You can start a new list without the continue parameter.")
        return rv, start

def _warnings(options: WriteOptions) -> dict[str, str] | None:
    """Warnings travel in `Warning: 299 - "text"` headers (quotes escaped, RFC 7234 style, as
    kube-apiserver writes them), which kubectl prints."""
    if not options.warnings:
        return None
    return {"Warning": ", ".join(
        '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for w in options.warnings)}


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def _encode_continue(rv: int, start: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(start)}).encode()).decode()


