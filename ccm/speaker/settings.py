"""Speaker settings: flags and `VIPAM_<NAME>` environment variables (NODE_NAME for the node)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SpeakerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIPAM_", extra="forbid")

    node_name: str = Field(
        default_factory=lambda: os.environ.get("NODE_NAME") or socket.gethostname(),
        description="this node's name (the DaemonSet sets NODE_NAME from spec.nodeName)",
    )
    kubeconfig: str | None = Field(None, description="kubeconfig path; in-cluster if unset")
    context: str | None = None
    namespace: str = Field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", "kube-system"),
        description="namespace of the speaker Leases",
    )
    renew_interval: float = Field(0.5, gt=0, description="speaker Lease renew period")
    lease_duration: float = Field(1.5, gt=0, description="a speaker silent this long is dead")
    fence_after: float = Field(1.2, gt=0, description="stop announcing after failing to renew")
    announcer: str = Field(
        "auto", pattern="^(auto|kernel|log)$",
        description="kernel: add addresses and send ARP/NDP; log: only log (no privileges); "
        "auto: kernel when running as root",
    )
    coalesce_seconds: float = Field(
        0.05, ge=0, le=1, description="wait this long after a change before re-planning"
    )
    address_lifetime: int = Field(
        1, ge=0, le=3600,
        description="kernel lifetime (s) of announced addresses, extended while the Lease is "
        "renewed, so a killed or hung speaker's addresses vanish by themselves; a node taking "
        "over waits for that (at most this long after the Lease expired); 0 = forever",
    )
    garp_repeats: int = Field(3, ge=1, le=20)
    garp_interval: float = Field(0.5, gt=0)
    bgp: bool = Field(True, description="run ExaBGP when a BGPAdvertisement selects this node")
    bgp_router_id: str | None = None
    bgp_workdir: str | None = None
    serve_unclassed: bool = True
    health_host: str = "0.0.0.0"
    health_port: int = Field(8081, ge=0, le=65535)
    qps: float = Field(50.0, ge=0)
    burst: int = Field(100, ge=1)
    log_format: str = Field("json", pattern="^(json|text)$")
    log_level: str = "INFO"
