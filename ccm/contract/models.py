"""Pydantic models of every vipam kind, the same ones the controller, the speaker and `vipam check`
use, so that what `check` accepts is what the processes accept.

IPPool's spec lives in :mod:`pools.model` (the allocator needs it without Kubernetes); the
advertisement and peer specs live here. Like the CRDs (config/crd), the models refuse unknown
fields and values of the wrong type (``autoAssign: "yes"`` is not a boolean); they also check
what the CRD checks with patterns and CEL (addresses, AS numbers, durations, communities), so
both sides agree on the same objects (tests/unit/contract compares them case by case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from ccm.contract import names
from pools.addresses import AddressError, parse_ip
from pools.model import IPPoolSpec, PoolValidationError, parse_pool, readable_errors
from pools.selectors import LabelSelector, _CamelModel

__all__ = [
    "BGPAdvertisementSpec",
    "BGPPeerSpec",
    "IPPoolSpec",
    "L2AdvertisementSpec",
    "ParsedObject",
    "SecretKeyRef",
    "parse_object",
]

MAX_ASN = 2**32 - 1
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_STANDARD_COMMUNITY = re.compile(r"^([0-9]{1,5}):([0-9]{1,5})$")
_LARGE_COMMUNITY = re.compile(r"^([0-9]{1,10}):([0-9]{1,10}):([0-9]{1,10})$")
_INTERFACE = r"^[^/\s:]+$"


def duration_seconds(text: str) -> float:
    """A Go duration ("90s", "1m30s", "500ms") in seconds; ValueError if it is not one."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 90s, 3m or 1m30s")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _ip_address(text: str) -> str:
    try:
        parse_ip(text)
    except AddressError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    return text


def _hold_time(text: str) -> str:
    seconds = duration_seconds(text)
    if seconds != 0 and not 3 <= seconds <= 65535:
        raise ValueError(f"holdTime {text!r} must be 0s or between 3s and 65535s (RFC 4271)")
    return text


def _community(text: str) -> str:
    standard = _STANDARD_COMMUNITY.match(text)
    if standard and all(int(part) <= 0xFFFF for part in standard.groups()):
        return text
    large = _LARGE_COMMUNITY.match(text)
    if large and all(int(part) <= MAX_ASN for part in large.groups()):
        return text
    raise ValueError(
        f"{text!r} is not a BGP community: standard 65000:100 (each part up to 65535) or "
        f"large 65000:1:2 (each part up to 4294967295)"
    )


IPAddressText = Annotated[str, Field(max_length=45), AfterValidator(_ip_address)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253)]
ASN = Annotated[int, Field(ge=1, le=MAX_ASN)]
Community = Annotated[str, Field(max_length=32), AfterValidator(_community)]
InterfaceName = Annotated[str, Field(max_length=15, pattern=_INTERFACE)]


class _Advertisement(_CamelModel):
    """What both advertisements select: pools (by name or labels) and nodes."""

    ip_pools: list[ObjectName] = Field(default_factory=list, alias="ipPools", max_length=256)
    ip_pool_selectors: list[LabelSelector] = Field(
        default_factory=list, alias="ipPoolSelectors", max_length=16
    )
    node_selectors: list[LabelSelector] = Field(
        default_factory=list, alias="nodeSelectors", max_length=16
    )

    def selects_pool(self, pool: str, pool_labels: Mapping[str, str]) -> bool:
        """No pool named and no selector: every pool; else named, or labels match a selector."""
        if not self.ip_pools and not self.ip_pool_selectors:
            return True
        return pool in self.ip_pools or any(s.matches(pool_labels) for s in self.ip_pool_selectors)

    def selects_node(self, node_labels: Mapping[str, str]) -> bool:
        return not self.node_selectors or any(s.matches(node_labels) for s in self.node_selectors)


class L2AdvertisementSpec(_Advertisement):
    interfaces: list[InterfaceName] = Field(default_factory=list, max_length=64)


class BGPAdvertisementSpec(_Advertisement):
    peers: list[ObjectName] = Field(default_factory=list, max_length=256)
    communities: list[Community] = Field(default_factory=list, max_length=64)
    local_pref: int | None = Field(default=None, ge=0, le=MAX_ASN, alias="localPref")
    aggregation_length: int = Field(default=32, ge=0, le=32, alias="aggregationLength")
    aggregation_length_v6: int = Field(default=128, ge=0, le=128, alias="aggregationLengthV6")


class SecretKeyRef(_CamelModel):
    name: ObjectName
    namespace: str | None = Field(default=None, max_length=63)
    key: ObjectName


class BGPPeerSpec(_CamelModel):
    address: IPAddressText
    asn: ASN
    local_asn: ASN = Field(alias="localASN")
    port: int = Field(default=179, ge=1, le=65535)
    hold_time: Annotated[str, Field(max_length=32), AfterValidator(_hold_time)] = Field(
        default="90s", alias="holdTime"
    )
    password_secret_ref: SecretKeyRef | None = Field(default=None, alias="passwordSecretRef")
    source_address: IPAddressText | None = Field(default=None, alias="sourceAddress")
    node_selectors: list[LabelSelector] = Field(
        default_factory=list, alias="nodeSelectors", max_length=16
    )
    ebgp_multi_hop: bool = Field(default=False, alias="ebgpMultiHop")

    @property
    def hold_seconds(self) -> int:
        return int(duration_seconds(self.hold_time))

    def selects_node(self, node_labels: Mapping[str, str]) -> bool:
        return not self.node_selectors or any(s.matches(node_labels) for s in self.node_selectors)


SPEC_MODELS: dict[str, type[BaseModel]] = {
    "L2Advertisement": L2AdvertisementSpec,
    "BGPAdvertisement": BGPAdvertisementSpec,
    "BGPPeer": BGPPeerSpec,
}

Kind = Literal["IPPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer"]


@dataclass(frozen=True)
class ParsedObject:
    kind: str
    name: str
    spec: Any  # a pools.model.Pool for IPPool, else the kind's spec model


class ObjectError(ValueError):
    """Everything wrong with one object, one readable ``field: message`` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def parse_spec(kind: str, name: str, spec: object) -> Any:
    """Validate one object's spec with its kind's model; ObjectError with readable lines."""
    if kind == "IPPool":
        try:
            return parse_pool(name, spec if isinstance(spec, Mapping) else {})
        except PoolValidationError as exc:
            raise ObjectError(exc.errors) from None
    model = SPEC_MODELS[kind]
    if not isinstance(spec, Mapping):
        raise ObjectError([f"spec: expected a mapping, got {type(spec).__name__}"])
    try:
        return model.model_validate(dict(spec))
    except ValidationError as err:
        raise ObjectError(readable_errors(err)) from None


def parse_object(doc: Mapping[str, Any]) -> ParsedObject:
    """A whole vipam object (apiVersion, kind, metadata.name, spec) → its parsed spec."""
    errors: list[str] = []
    kind = doc.get("kind")
    if doc.get("apiVersion") != names.API_VERSION:
        errors.append(
            f"apiVersion: {doc.get('apiVersion')!r} is not {names.API_VERSION!r}"
        )
    if kind not in names.KINDS:
        errors.append(f"kind: {kind!r} is not a vipam kind ({', '.join(names.KINDS)})")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        errors.append("metadata.name: is required")
    if "spec" not in doc:
        errors.append("spec: is required")
    if errors:
        raise ObjectError(errors)
    assert isinstance(kind, str) and isinstance(name, str)
    return ParsedObject(kind, name, parse_spec(kind, name, doc["spec"]))
