"""Fault injection, so tests can show a controller surviving what a real apiserver does to it:
dropped watches, compacted history (410), 5xx and 429 answers, latency, restarts."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from devkit.emulator.errors import ApiError
from devkit.emulator.watch import ABORT, GRACEFUL, WatchHub


@dataclass
class _PlannedFailure:
    remaining: int
    status: int
    retry_after: float | None
    methods: frozenset[str] | None
    path_contains: str | None

    def applies(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path_contains is None or self.path_contains in path


class Faults:
    def __init__(self, hub: WatchHub, current_rv: Callable[[], int]) -> None:
        self._hub = hub
        self._current_rv = current_rv
        self._failures: list[_PlannedFailure] = []
        self.latency = 0.0

    def drop_watches(self, *, graceful: bool = False) -> int:
        """Close every open watch now; by default abruptly (connection reset mid-stream),
        with graceful=True as a normal end of stream. Returns how many were closed."""
        return self._hub.close_all(GRACEFUL if graceful else ABORT)

    def expire_history(self) -> None:
        """Any resourceVersion older than the current one now gets 410 on watch/continue."""
        self._hub.expire(self._current_rv())

    def fail_next(self, n: int, status: int = 500, *, retry_after: float | None = None,
                  methods: Collection[str] | None = None,
                  path_contains: str | None = None) -> None:
        """Answer the next `n` matching requests with `status` (e.g. 500, 429 + Retry-After)."""
        self._failures.append(_PlannedFailure(
            n, status, retry_after,
            frozenset(m.upper() for m in methods) if methods is not None else None,
            path_contains,
        ))

    def set_latency(self, seconds: float) -> None:
        self.latency = max(0.0, seconds)

    def clear(self) -> None:
        self._failures.clear()
        self.latency = 0.0

    def planned_failure(self, method: str, path: str) -> ApiError | None:
        """Consume one planned failure matching this request, if any."""
        for failure in self._failures:
            if failure.remaining > 0 and failure.applies(method, path):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._failures.remove(failure)
                headers = {}
                message = "injected failure"
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(max(1, round(failure.retry_after)))
                    message = "injected failure: the server is busy, retry later"
                return ApiError(failure.status, message, headers=headers,
                                details={"retryAfterSeconds": max(1, round(
                                    failure.retry_after))} if failure.retry_after else None)
        return None
