"""One JSON-over-HTTP client shared by the backends: TLS, auth header, timeouts, error mapping.

Every failure leaves here as a BackendError, so the providers only deal with the meaning of a
status code in their own API, and the retry policy sees one kind of error.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp

from pools.external.base import BackendError, Reason, parse_retry_after

JSON = Any


def ssl_context(url: str, ca_bundle: str | None) -> ssl.SSLContext | None:
    """A verifying TLS context for https URLs, trusting only `ca_bundle` (PEM text) when given."""
    if not url.lower().startswith("https://"):
        return None
    if ca_bundle:
        return ssl.create_default_context(cadata=ca_bundle)
    return ssl.create_default_context()


def reason_for_status(status: int) -> Reason:
    """The BackendError reason of an HTTP error status, before any provider-specific meaning."""
    if status in (401, 403):
        return "Unauthorized"
    if status == 404:
        return "NotFound"
    if status == 408:
        return "Timeout"
    if status == 429 or status >= 500:
        return "Unavailable"
    return "Rejected"


def error_text(body: JSON, fallback: str) -> str:
    """A short human message from an error body (ours: {"message"}, NetBox/DRF: {"detail"})."""
    if isinstance(body, dict):
        for field_name in ("message", "detail", "error"):
            if isinstance(body.get(field_name), str):
                return str(body[field_name])
        return json.dumps(body)[:300]
    if isinstance(body, list) and body:
        return json.dumps(body)[:300]
    return fallback


class JsonClient:
    """A lazily opened aiohttp session bound to one base URL and one credential."""

    def __init__(
        self,
        base_url: str,
        *,
        authorization: str | None,
        ca_bundle: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if authorization:
            self._headers["Authorization"] = authorization
        self._ssl = ssl_context(self.base_url, ca_bundle)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: JSON = None,
    ) -> tuple[int, JSON]:
        """Send one request; return (status, decoded JSON or None) for 2xx, raise otherwise."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        try:
            async with self._open().request(
                method, url, params=params, json=body
            ) as response:
                text = await response.text()
                payload = _decode(text)
                if response.status < 300:
                    return response.status, payload
                raise BackendError(
                    reason_for_status(response.status),
                    f"{method} {path}: HTTP {response.status}: "
                    f"{error_text(payload, text[:200] or response.reason or '')}",
                    status=response.status,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    body=payload,
                ) from None
        except TimeoutError as exc:
            raise BackendError("Timeout", f"{method} {path}: no answer in time") from exc
        except aiohttp.ClientResponseError as exc:
            raise BackendError(
                reason_for_status(exc.status), f"{method} {path}: {exc.message}", status=exc.status
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            # A certificate the CA bundle does not vouch for will not get better by retrying.
            raise BackendError(
                "Unavailable", f"{method} {path}: TLS: {exc}", retryable=False
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendError(
                "Unavailable", f"{method} {path}: {type(exc).__name__}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # Let the connector's transports finish closing (avoids "unclosed" warnings on SSL).
            await asyncio.sleep(0)
        self._session = None


def _decode(text: str) -> JSON:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
