"""Process settings: every flag also reads an environment variable `VIPAM_<NAME>`."""

from __future__ import annotations

import os
import socket
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ccm.contract import names


def _default_identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIPAM_", extra="forbid")

    kubeconfig: str | None = Field(None, description="kubeconfig path; in-cluster config if unset")
    context: str | None = None
    namespace: str = Field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", "kube-system"),
        description="namespace of the Lease and of Secrets for external IPAM",
    )
    lease_name: str = names.CONTROLLER_LEASE
    identity: str = Field(default_factory=_default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    workers: int = Field(4, ge=1, le=256)
    # A safety net against a hot loop, not the pace: the server's priority and fairness sets
    # that (its 429 + Retry-After is waited out). The floor of bench/scale.py (1,000 creates +
    # 2,000 writes, no controller, 2-core machine) served 125 Services/s; following that takes
    # 2 Service writes each, 250 writes/s, which the old 200/400 capped at 100 Services/s once
    # its burst was spent. 500 leaves room for 2x that pace. Events have their own limit.
    qps: float = Field(500.0, ge=0, description="client-side request rate; 0 = unlimited")
    burst: int = Field(1000, ge=1)
    health_host: str = "0.0.0.0"
    health_port: int = Field(8081, ge=0, le=65535)
    serve_unclassed: bool = Field(True, description="serve LoadBalancer Services with no class")
    set_load_balancer_ip: bool = Field(True, description="write spec.loadBalancerIP (1 family)")
    # NoDecode: VIPAM_COMPAT=metallb,cilium is a comma list, not JSON (split below)
    compat: Annotated[frozenset[str], NoDecode] = frozenset()
    watch_timeout: int = Field(300, ge=5)
    pool_status_interval: float = Field(1.0, gt=0)
    cluster_id: str = Field("default", description="owner id recorded in an external IPAM")
    external_grace_seconds: float = Field(
        300.0, ge=0, description="an external address without a Service is released after this"
    )
    external_reconcile_seconds: float = Field(
        60.0, gt=0, description="how often the external IPAM's list is reconciled"
    )
    log_format: str = Field("json", pattern="^(json|text)$")
    log_level: str = "INFO"

    @field_validator("compat", mode="before")
    @classmethod
    def _split_compat(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("compat")
    @classmethod
    def _known_compat(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = value - names.COMPAT_PROJECTS
        if unknown:
            known = ", ".join(sorted(names.COMPAT_PROJECTS))
            raise ValueError(f"unknown compat project(s) {sorted(unknown)}; known: {known}")
        return value
