"""External IPAM backends: pools whose addresses live in an IPAM vipam does not own.

`make_backend` builds the backend an IPPool's `spec.external` names; the controller calls it with
the token it read from the pool's Secret. See base.py for the contract every backend keeps.
"""

from __future__ import annotations

from typing import Any, Protocol

from pools.external.base import (
    AllocationKey,
    BackendError,
    CallObserver,
    ExternalAddress,
    IPAMBackend,
    RetryPolicy,
)

__all__ = [
    "AllocationKey",
    "BackendError",
    "CallObserver",
    "ExternalAddress",
    "ExternalSpecLike",
    "IPAMBackend",
    "RetryPolicy",
    "backend_for",
    "make_backend",
]


class ExternalSpecLike(Protocol):
    """What backend_for reads from an IPPool's spec.external (pools.model.ExternalSpec has it);
    a protocol so this package does not depend on the model's import path."""

    @property
    def provider(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def ca_bundle(self) -> str | None: ...
    @property
    def timeout_seconds(self) -> float: ...
    @property
    def options(self) -> dict[str, Any]: ...


def make_backend(
    provider: str,
    *,
    url: str,
    token: str | None,
    ca_bundle: str | None = None,
    timeout: float = 5.0,
    options: dict[str, Any] | None = None,
    name: str | None = None,
    on_call: CallObserver | None = None,
    retry: RetryPolicy | None = None,
) -> IPAMBackend:
    """The backend for `provider` ("http" or "netbox"); raises ValueError on bad options."""
    if provider == "http":
        from pools.external.http import HTTPBackend

        return HTTPBackend(url, token, ca_bundle=ca_bundle, timeout=timeout, options=options,
                           name=name or provider, on_call=on_call, retry=retry)
    if provider == "netbox":
        from pools.external.netbox import NetBoxBackend

        return NetBoxBackend(url, token, ca_bundle=ca_bundle, timeout=timeout, options=options,
                             name=name or provider, on_call=on_call, retry=retry)
    raise ValueError(f"unknown external IPAM provider {provider!r} (expected http or netbox)")


def backend_for(
    spec: ExternalSpecLike,
    token: str | None,
    *,
    name: str,
    on_call: CallObserver | None = None,
    retry: RetryPolicy | None = None,
) -> IPAMBackend:
    """The backend of one IPPool: `name` is the pool's name (the label its metrics carry)."""
    return make_backend(spec.provider, url=spec.url, token=token, ca_bundle=spec.ca_bundle,
                        timeout=spec.timeout_seconds, options=dict(spec.options), name=name,
                        on_call=on_call, retry=retry)
