"""API errors rendered as `Status` objects with the reason and code a real apiserver uses.

Controllers branch on `reason` (e.g. retry on Conflict, relist on Expired), so the emulator must
never answer an error with a bare text body.
"""

from __future__ import annotations

import json
from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error that becomes a `Status` response (or a watch ERROR event)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # reason="" leaves it out, as the apiserver does for errors of its storage layer
        self.reason = REASONS.get(code, "Unknown") if reason is None else reason
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]
        if self.details:
            body["details"] = self.details
        return body


def _details(kind_plural: str, group: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": kind_plural}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(plural, group)} "{name}" not found',
        details=_details(plural, group, name),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(plural, group)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(plural, group, name),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        details=_details(plural, group, name),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; `causes` are (field, message) pairs as in a FieldValueInvalid cause list."""
    text = ", ".join(f"{field}: {message}" for field, message in causes)
    details = _details(kind, group, name)
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": message, "field": field}
        for field, message in causes
    ]
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, f'{qualified} "{name}" is invalid: {text}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def gone(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")


class DecodeError(ApiError):
    """A body whose JSON types do not fit the kind (400); `decoding` is Go's own words."""

    def __init__(self, message: str, decoding: str) -> None:
        super().__init__(400, message)
        self.decoding = decoding


def patch_decode_error(patched: Any, decoding: str) -> ApiError:
    """A patch that leaves the object undecodable is Invalid (422), blamed on the patch."""
    shown = json.dumps(json.dumps(patched, separators=(",", ":")))
    message = f"Invalid value: {shown}: {decoding}"
    return ApiError(422, f' "" is invalid: patch: {message}', details={"causes": [
        {"reason": "FieldValueInvalid", "message": message, "field": "patch"}]})

