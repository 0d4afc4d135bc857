"""docs/ipam-http.yaml and the reference server describe the same API."""

from __future__ import annotations

from pathlib import Path

import yaml

from devkit.reference_ipam import ReferenceServer

SPEC = Path(__file__).resolve().parents[3] / "docs" / "ipam-http.yaml"


def _normalise(path: str) -> str:
    """Path templates with their parameter names erased: /a/{x}/b -> /a/{}/b."""
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))


def test_reference_server_routes_exactly_the_published_operations() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    published = {
        (method.upper(), _normalise(path))
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    server = ReferenceServer({"p": ["192.0.2.0/30"]})
    routed = {
        (route.method, _normalise(route.resource.canonical))
        for route in server.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
        and not route.resource.canonical.startswith("/_")
    }
    assert len(published) == 4  # health, list, allocate (PUT), release (DELETE)
    assert routed == published


def test_every_error_reason_the_client_maps_is_published() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    reasons = set(spec["components"]["schemas"]["Error"]["properties"]["reason"]["enum"])
    assert {"Exhausted", "InUse", "Rejected", "Unauthorized"} <= reasons
