"""An in-memory fake of OUR client layer (ccm.kube.client.KubeApi), for unit tests of the core.

Not a fake Kubernetes: it fakes the few behaviours of the API server that our client surface
exposes and that our code depends on, and nothing else:

* every object has a resourceVersion from one counter; a PUT whose body carries a stale one
  answers 409, a missing object 404, a second create 409 AlreadyExists;
* an update that changes nothing is dropped like the real server drops it: same
  resourceVersion, no watch event, but the request is still counted;
* Services carry no ``metadata.generation`` and their conditions drop ``observedGeneration: 0``
  (Go's omitempty), as on a real kube-apiserver; custom resources get a generation that moves
  with their spec;
* ``status`` is a subresource: a PUT of the object ignores status, a PUT of status changes
  only status;
* deletion with finalizers sets ``deletionTimestamp``; the object goes when they are removed;
* watches replay history from a resourceVersion, answer 410 once history is compacted, and
  end after ``timeout_seconds`` as the server does; ``bookmark`` sends a BOOKMARK, and
  ``drop_watches`` breaks every open stream (a proxy or the server going away);
* ``fail_next`` answers the next requests of one verb and resource with an error (a 409 on a
  Lease update, a 429 with Retry-After, a 503 ...), and ``latency`` makes requests to a resource
  take that long (a slow or absent server); ``tamper`` is another client's write, landing at
  once (from inside a fault, between one of our reads and our write).

Every request is counted by (verb, resource label) with the labels KubeClient reports
(``services``, ``services/status``, ``events``, ...), so a test asserts "0 writes" by counting
requests, never by comparing resourceVersions; the observer sees each request's status, the
404s and 409s the fake answers included.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from ccm.kube.client import MERGE_PATCH, ApiError, ObjectList, RequestObserver
from ccm.kube.resources import SERVICES, Resource

JSON = dict[str, Any]
Key = tuple[str, str, str]  # (resource, namespace or "", name)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
Fault = Callable[[str, str], ApiError | None]  # (verb, resource label) -> error to raise
P = ParamSpec("P")
R = TypeVar("R")


def _observed(
    method: Callable[Concatenate[FakeKube, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[FakeKube, P], Coroutine[Any, Any, R]]:
    """Report the request's outcome to the observer as the real client does: its status,
    the 404 or 409 the fake answered included (a fault reports its own in _request)."""

    async def wrapper(self: FakeKube, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = await method(self, *args, **kwargs)
        except ApiError as exc:
            if self._request_ok:
                self._observe(*self._last_request, exc.status)
            raise
        self._observe(*self._last_request, 200)
        return result

    return wrapper


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


class FakeKube:
    """Implements KubeApi in memory; see the module docstring for what it fakes."""

    def __init__(self) -> None:
        self.objects: dict[Key, JSON] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self.observer: RequestObserver | None = None
        self.faults: list[Fault] = []
        self._rv = itertools.count(1)
        self._uids = itertools.count(1)
        self._names = itertools.count(1)
        self._history: list[tuple[int, str, str, JSON]] = []  # (rv, resource, type, object)
        self._compacted = 0
        self._changed = asyncio.Event()  # replaced on every change; watchers wait on it
        self._drops = 0  # bumped by drop_watches(); an open watch that sees it move ends
        self._drop_error: Exception | None = None
        self.latency: dict[str, float] = {}  # resource label -> seconds each request takes
        # resource label -> seconds between a write's commit (its watch event) and its reply,
        # as when a real server's watch delivers a change before the writer has read the answer
        self.reply_delay: dict[str, float] = {}
        self.last_rv = 0
        self._last_request = ("", "")
        self._request_ok = False  # the last request passed the faults (its outcome not observed)

    # -- accounting ------------------------------------------------------------------------

    async def _enter(self, verb: str, label: str) -> None:
        """A request arrives: wait out the injected latency (if any), then count it."""
        delay = self.latency.get(label, self.latency.get(label.split("/")[0], 0.0))
        if delay > 0:
            await asyncio.sleep(delay)
        self._request(verb, label)

    def _request(self, verb: str, label: str) -> None:
        self.requests[(verb, label)] += 1
        self._last_request, self._request_ok = (verb, label), False
        for fault in self.faults:
            error = fault(verb, label)
            if error is not None:
                self._observe(verb, label, error.status)
                raise error
        self._request_ok = True

    def _observe(self, verb: str, label: str, status: int) -> None:
        if self.observer is not None:
            self.observer(verb, label, status, 0.0)

    def writes(self, resource: str | None = None) -> Counter[tuple[str, str]]:
        """Write requests so far, by (verb, resource label); optionally one resource only."""
        return Counter({
            key: count for key, count in self.requests.items()
            if key[0] in WRITE_VERBS
            and (resource is None or key[1].split("/")[0] == resource)
        })

    def reset_counts(self) -> None:
        self.requests.clear()

    # -- storage helpers -------------------------------------------------------------------

    @staticmethod
    def _key(res: Resource, namespace: str | None, name: str) -> Key:
        return (str(res), (namespace or "") if res.namespaced else "", name)

    def _stored(self, res: Resource, namespace: str | None, name: str) -> JSON:
        obj = self.objects.get(self._key(res, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
        return obj

    def _normalize(self, res: Resource, obj: JSON) -> None:
        """What the real server does to what it stores that our code can notice."""
        meta = obj.setdefault("metadata", {})
        if res == SERVICES:
            meta.pop("generation", None)
            for condition in (obj.get("status") or {}).get("conditions") or []:
                if condition.get("observedGeneration") == 0:
                    del condition["observedGeneration"]  # Go's omitempty on an int64

    def _commit(self, res: Resource, kind: str, obj: JSON) -> JSON:
        rv = next(self._rv)
        self.last_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self._history.append((rv, str(res), kind, copy.deepcopy(obj)))
        self._notify()
        return copy.deepcopy(obj)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- KubeApi ---------------------------------------------------------------------------

    @_observed
    async def get(
        self, res: Resource, namespace: str | None, name: str, subresource: str | None = None
    ) -> JSON:
        await self._enter("get", str(res))
        return copy.deepcopy(self._stored(res, namespace, name))

    @_observed
    async def list_all(
        self, res: Resource, namespace: str | None = None, page: int = 500,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> ObjectList:
        await self._enter("list", str(res))
        items = [
            copy.deepcopy(obj) for (resource, ns, _), obj in sorted(self.objects.items())
            if resource == str(res) and (namespace is None or ns == namespace)
        ]
        if transform is not None:
            items = [transform(item) for item in items]
        return {"items": items, "metadata": {"resourceVersion": str(self.last_rv)}}

    @_observed
    async def create(self, res: Resource, namespace: str | None, body: JSON) -> JSON:
        await self._enter("create", str(res))
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            meta["name"] = f"{meta['generateName']}{next(self._names):05x}"
        if res.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        if self._key(res, meta.get("namespace"), meta["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
        meta["uid"] = f"uid-{next(self._uids)}"
        meta.setdefault("creationTimestamp", _now())
        meta["generation"] = 1
        self._normalize(res, obj)
        return self._commit(res, "ADDED", obj)

    @_observed
    async def replace(
        self, res: Resource, namespace: str | None, name: str, body: JSON,
        subresource: str | None = None,
    ) -> JSON:
        label = f"{res}/{subresource}" if subresource else str(res)
        await self._enter("update", label)
        stored = self._stored(res, namespace, name)
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != stored["metadata"]["resourceVersion"]:
            raise ApiError(
                409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": '
                "the object has been modified; please apply your changes to the latest version"
            )
        return self._update(res, stored, body, subresource)

    def _update(self, res: Resource, stored: JSON, body: JSON, subresource: str | None) -> JSON:
        new = copy.deepcopy(stored)
        if subresource == "status":
            new["status"] = copy.deepcopy(body.get("status") or {})
        else:
            keep = {"uid", "creationTimestamp", "resourceVersion", "generation", "namespace",
                    "name", "deletionTimestamp"}
            new_meta = {
                k: copy.deepcopy(v) for k, v in (body.get("metadata") or {}).items()
                if k not in keep
            }
            new_meta.update({k: stored["metadata"][k] for k in keep if k in stored["metadata"]})
            new = {**copy.deepcopy(body), "metadata": new_meta}
            if "status" in stored:
                new["status"] = copy.deepcopy(stored["status"])
            else:
                new.pop("status", None)
            if "generation" in stored["metadata"] and new.get("spec") != stored.get("spec"):
                new_meta["generation"] = int(stored["metadata"]["generation"]) + 1
        self._normalize(res, new)
        if new == stored:
            return copy.deepcopy(stored)  # a no-op update: the server drops it silently
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(res, "DELETED", new)
        return self._commit(res, "MODIFIED", new)

    @_observed
    async def patch(
        self, res: Resource, namespace: str | None, name: str, patch: Any,
        *, content_type: str = MERGE_PATCH, subresource: str | None = None,
    ) -> JSON:
        label = f"{res}/{subresource}" if subresource else str(res)
        await self._enter("patch", label)
        if content_type != MERGE_PATCH:
            raise ApiError(415, "UnsupportedMediaType", f"the fake speaks only {MERGE_PATCH}")
        stored = self._stored(res, namespace, name)
        merged = _merge(stored, patch)
        # a resourceVersion in the patch is a precondition, as at a real server: 409 if stale
        wanted = ((patch or {}).get("metadata") or {}).get("resourceVersion")
        if wanted not in (None, "") and wanted != stored["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f"{name}: the object has been modified")
        merged["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
        result = self._update(res, stored, merged, subresource)
        delay = self.reply_delay.get(label, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        return result

    @_observed
    async def delete(self, res: Resource, namespace: str | None, name: str) -> JSON:
        await self._enter("delete", str(res))
        stored = self._stored(res, namespace, name)
        if stored["metadata"].get("finalizers"):
            if stored["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(stored)
            new = copy.deepcopy(stored)
            new["metadata"]["deletionTimestamp"] = _now()
            return self._commit(res, "MODIFIED", new)
        return self._commit(res, "DELETED", copy.deepcopy(stored))

    async def watch(
        self,
        res: Resource,
        resource_version: str,
        *,
        namespace: str | None = None,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
    ) -> AsyncIterator[JSON]:
        await self._enter("watch", str(res))
        self._observe("watch", str(res), 200)
        since = int(resource_version or 0)
        if since < self._compacted:
            raise ApiError(410, "Expired", f"too old resource version: {since}")
        deadline = time.monotonic() + timeout_seconds
        drops = self._drops
        while True:
            for rv, resource, kind, obj in list(self._history):
                if drops != self._drops:
                    break
                if rv <= since or resource != str(res):
                    continue
                since = rv
                if kind == "BOOKMARK" or namespace is None \
                        or obj["metadata"].get("namespace") == namespace:
                    yield {"type": kind, "object": copy.deepcopy(obj)}
            if drops != self._drops:
                if self._drop_error is not None:
                    raise self._drop_error
                return
            if since < self._compacted:
                raise ApiError(410, "Expired", f"too old resource version: {since}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await changed.wait()

    async def close(self) -> None:
        return None

    # -- test controls ---------------------------------------------------------------------

    def compact(self) -> None:
        """Forget watch history: every open watch and every older resourceVersion gets 410."""
        self._compacted = self.last_rv
        self._history.clear()
        self._notify()

    def bookmark(self, res: Resource) -> int:
        """Send watchers of `res` a BOOKMARK at the current resourceVersion (which it returns),
        as the server does for a quiet resource while other resources move on."""
        rv = self.last_rv
        obj = {"kind": res.kind, "apiVersion": res.api_version,
               "metadata": {"resourceVersion": str(rv)}}
        self._history.append((rv, str(res), "BOOKMARK", obj))
        self._notify()
        return rv

    def drop_watches(self, error: Exception | None = None) -> None:
        """Break every open watch: it raises `error`, or ends as a closed stream if None.
        Our client raises ApiError(0, "TransportError") for a broken connection, and
        json.JSONDecodeError for a stream closed in the middle of a line."""
        self._drops += 1
        self._drop_error = error
        self._notify()

    def fail_next(
        self, verb: str, label: str, error: ApiError, times: int = 1
    ) -> Callable[[], int]:
        """The next `times` requests of (verb, label) raise `error` (-1: until removed).
        Returns a probe of how many were failed so far."""
        failed = 0

        def fault(v: str, lbl: str) -> ApiError | None:
            nonlocal failed
            if (v, lbl) != (verb, label) or (0 <= times <= failed):
                return None
            failed += 1
            return error

        self.faults.append(fault)
        return lambda: failed

    def tamper(self, res: Resource, namespace: str | None, name: str,
               change: Callable[[JSON], None]) -> JSON:
        """Another client's write, applied at once and not counted. Synchronous, so a fault can
        make it land between one of our reads and our write (which then gets a real 409)."""
        new = copy.deepcopy(self._stored(res, namespace, name))
        change(new)
        return self._update(res, self._stored(res, namespace, name), new, None)

    def stored(self, res: Resource, namespace: str | None, name: str) -> JSON:
        """The object as stored (a copy), without counting a request."""
        return copy.deepcopy(self._stored(res, namespace, name))
