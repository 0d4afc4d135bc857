"""Defaulting and validation for built-in kinds: the checks a controller can trip over.

Only what a LoadBalancer controller touches is modelled (object names, labels, Service type,
ports, loadBalancerClass immutability, ingress IPs); other fields pass through unchanged.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from devkit.emulator import service_ips
from devkit.emulator.errors import ApiError, invalid
from devkit.emulator.resources import ResourceType

Errors = list[tuple[str, str]]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_NAMES_ONLY = {"namespaces", "services"}
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")


def validate_name(rt: ResourceType, name: str) -> Errors:
    if rt.plural in _LABEL_NAMES_ONLY and rt.builtin:
        ok = len(name) <= 63 and _DNS_LABEL.fullmatch(name) is not None
        rule = "a lowercase RFC 1123 label"
    else:
        ok = len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) is not None
        rule = "a lowercase RFC 1123 subdomain"
    if rt.plural == "events" and rt.builtin:
        ok = bool(name) and "/" not in name and "%" not in name
    return [] if ok else [("metadata.name", f'Invalid value: "{name}": must be {rule}')]


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def validate_metadata(rt: ResourceType, obj: dict[str, Any]) -> Errors:
    meta = obj.get("metadata") or {}
    errors = validate_name(rt, meta.get("name", ""))
    for key, value in (meta.get("labels") or {}).items():
        if not _label_key_ok(str(key)):
            errors.append(("metadata.labels", f'Invalid value: "{key}": invalid label key'))
        if not isinstance(value, str) or len(value) > 63 or (
            value and not _LABEL_NAME.fullmatch(value)
        ):
            errors.append(("metadata.labels", f'Invalid value: "{value}": invalid label value'))
    for key, value in (meta.get("annotations") or {}).items():
        if not _label_key_ok(str(key)):
            errors.append(("metadata.annotations", f'Invalid value: "{key}": invalid key'))
        if not isinstance(value, str):
            errors.append(("metadata.annotations", f"Invalid value: {value!r}: must be a string"))
    return errors


# ------------------------------------------------------------------------- Services


def default_service(obj: dict[str, Any]) -> None:
    """Fill the defaults the apiserver adds, so controllers can read them back."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        service_ips.default_families(spec)
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def default_ingress_ip_mode(obj: dict[str, Any]) -> None:
    """Decoding defaults of a Service body as sent: `ipMode: VIP` on ingress entries with an
    `ip`, but only when the body says `type: LoadBalancer` (kube-apiserver's SetDefaults_Service);
    and the zero values Go's typed decoding gives a condition's missing fields (the real server
    then serves `lastTransitionTime: null`, which some clients cannot read back)."""
    spec, status = _mapping(obj.get("spec")), _mapping(obj.get("status"))
    if spec.get("type") == "LoadBalancer":
        for entry in _mapping(status.get("loadBalancer")).get("ingress") or []:
            if isinstance(entry, dict) and entry.get("ip") and entry.get("ipMode") is None:
                entry["ipMode"] = "VIP"
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict):
            for name in ("type", "status", "reason", "message"):
                condition.setdefault(name, "")
            condition.setdefault("lastTransitionTime", None)


def drop_type_dependent_fields(new: dict[str, Any], old: dict[str, Any]) -> None:
    """When a Service leaves type LoadBalancer (or NodePort), the apiserver drops the fields
    that only made sense there, if the writer left them unchanged; so switching a Service to
    ClusterIP is not an error and its loadBalancerClass goes away."""
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind != "LoadBalancer":
        for field in ("loadBalancerClass", "allocateLoadBalancerNodePorts"):
            if field in spec and spec.get(field) == old_spec.get(field):
                del spec[field]
    if kind not in ("NodePort", "LoadBalancer"):
        for field in ("externalTrafficPolicy", "healthCheckNodePort"):
            if field in spec and spec.get(field) == old_spec.get(field):
                del spec[field]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)


def _valid_ip(text: Any) -> bool:
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return isinstance(text, str)


def validate_service(new: dict[str, Any], old: dict[str, Any] | None) -> Errors:
    spec = new.get("spec") or {}
    errors: Errors = []
    kind = spec.get("type", "ClusterIP")
    if kind not in SERVICE_TYPES:
        allowed = ", ".join(f'"{t}"' for t in SERVICE_TYPES)
        errors.append(("spec.type", f'Unsupported value: "{kind}": supported values: {allowed}'))
    errors += _validate_ports(spec, kind)
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None and kind != "LoadBalancer":
        errors.append(("spec.loadBalancerClass",
                       "Invalid value: may only be used when `type` is 'LoadBalancer'"))
    if lb_class is not None and not _label_key_ok(str(lb_class)):
        errors.append(("spec.loadBalancerClass", f'Invalid value: "{lb_class}": must be a '
                                                 "label-style name"))
    if old is not None:
        old_spec = old.get("spec") or {}
        both_lb = old_spec.get("type") == "LoadBalancer" and kind == "LoadBalancer"
        if both_lb and old_spec.get("loadBalancerClass") != lb_class:
            errors.append(("spec.loadBalancerClass",
                           f'Invalid value: "{lb_class}": may not change once set'))
    if spec.get("loadBalancerIP") and not _valid_ip(spec["loadBalancerIP"]):
        errors.append(("spec.loadBalancerIP",
                       f'Invalid value: "{spec["loadBalancerIP"]}": must be a valid IP address'))
    for field, allowed_values in (
        ("externalTrafficPolicy", ("Cluster", "Local")),
        ("internalTrafficPolicy", ("Cluster", "Local")),
        ("ipFamilyPolicy", ("SingleStack", "PreferDualStack", "RequireDualStack")),
    ):
        value = spec.get(field)
        if value is not None and value not in allowed_values:
            errors.append((f"spec.{field}", f'Unsupported value: "{value}"'))
    families = spec.get("ipFamilies") or []
    if len(families) > 2 or len(set(families)) != len(families) or any(
        f not in ("IPv4", "IPv6") for f in families
    ):
        errors.append(("spec.ipFamilies", f"Invalid value: {families}"))
    # status.conditions are not validated: kube-apiserver 1.36 stores whatever a writer sends
    # (an empty reason, duplicate types, no lastTransitionTime); `validate_conditions` states
    # the metav1 rules for tests that hold the product to them
    errors += _validate_ingress(new)
    return errors


def _validate_ports(spec: dict[str, Any], kind: str) -> Errors:
    ports = spec.get("ports") or []
    errors: Errors = []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        errors.append(("spec.ports", "Required value"))
    seen: set[tuple[Any, Any]] = set()
    names: set[Any] = set()
    for index, port in enumerate(ports):
        where = f"spec.ports[{index}]"
        if not isinstance(port, dict):
            errors.append((where, "Invalid value: must be an object"))
            continue
        number = port.get("port")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
            errors.append((f"{where}.port", f"Invalid value: {number}: must be between 1 and "
                                            "65535, inclusive"))
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            errors.append((f"{where}.protocol", f'Unsupported value: "{protocol}": supported '
                                                'values: "SCTP", "TCP", "UDP"'))
        if (number, protocol) in seen:
            errors.append((where, f'Duplicate value: {{"port": {number}, "protocol": '
                                  f'"{protocol}"}}'))
        seen.add((number, protocol))
        name = port.get("name")
        if len(ports) > 1 and not name:
            errors.append((f"{where}.name", "Required value"))
        if name and name in names:
            errors.append((f"{where}.name", f'Duplicate value: "{name}"'))
        names.add(name)
    return errors


def _validate_ingress(obj: dict[str, Any]) -> Errors:
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    errors: Errors = []
    for index, entry in enumerate(ingress):
        where = f"status.loadBalancer.ingress[{index}]"
        if not isinstance(entry, dict):
            errors.append((where, "Invalid value: must be an object"))
            continue
        if "ip" in entry and not _valid_ip(entry["ip"]):
            errors.append((f"{where}.ip", f'Invalid value: "{entry["ip"]}": must be a valid IP '
                                          "address"))
        mode = entry.get("ipMode")
        if mode is not None and mode not in ("VIP", "Proxy"):
            errors.append((f"{where}.ipMode", f'Unsupported value: "{mode}": supported values: '
                                              '"Proxy", "VIP"'))
        if mode is None and entry.get("ip"):
            errors.append((f"{where}.ipMode", "Required value: must be specified when `ip` is "
                                              "set"))
        if mode is not None and not entry.get("ip"):
            errors.append((f"{where}.ipMode", "Forbidden: may not be specified when `ip` is "
                                              "not set"))
    return errors


_REASON = re.compile(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def validate_conditions(conditions: Any, where: str) -> Errors:
    """metav1.Condition rules (the API conventions, and what CRD schemas like ours enforce).
    Not applied to Service status by the server (the real one does not either): tests use it
    to hold the controller's conditions to the rules."""
    if conditions is None:
        return []
    if not isinstance(conditions, list):
        return [(where, "Invalid value: must be a list")]
    errors: Errors = []
    seen: set[Any] = set()
    for index, condition in enumerate(conditions):
        at = f"{where}[{index}]"
        if not isinstance(condition, dict):
            errors.append((at, "Invalid value: must be an object"))
            continue
        kind = condition.get("type")
        if not kind:
            errors.append((f"{at}.type", "Required value"))
        elif not _label_key_ok(str(kind)):
            errors.append((f"{at}.type", f'Invalid value: "{kind}": must be a qualified name'))
        elif kind in seen:
            errors.append((f"{at}.type", f'Duplicate value: "{kind}"'))
        seen.add(kind)
        if condition.get("status") not in ("True", "False", "Unknown"):
            errors.append((f"{at}.status", f'Unsupported value: "{condition.get("status")}": '
                                           'supported values: "False", "True", "Unknown"'))
        stamp = condition.get("lastTransitionTime")
        if not stamp:
            errors.append((f"{at}.lastTransitionTime", "Required value"))
        elif not _RFC3339.fullmatch(str(stamp)):
            errors.append((f"{at}.lastTransitionTime", f'Invalid value: "{stamp}"'))
        reason = condition.get("reason")
        if not reason:
            errors.append((f"{at}.reason", "Required value"))
        elif len(str(reason)) > 1024 or not _REASON.fullmatch(str(reason)):
            errors.append((f"{at}.reason", f'Invalid value: "{reason}": a condition reason '
                                           "must start with a letter and contain letters, "
                                           "digits, '_', ',' or ':'"))
        if len(str(condition.get("message", ""))) > 32768:
            errors.append((f"{at}.message", "Too long: may not be more than 32768 bytes"))
        generation = condition.get("observedGeneration", 0)
        if not isinstance(generation, int) or generation < 0:
            errors.append((f"{at}.observedGeneration", f"Invalid value: {generation}: must be "
                                                       "greater than or equal to zero"))
    return errors


def validate_lease(obj: dict[str, Any]) -> Errors:
    spec = obj.get("spec") or {}
    errors: Errors = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        errors.append(("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be "
                                                    "greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        errors.append(("spec.leaseTransitions", f"Invalid value: {transitions}: must be "
                                                "greater than or equal to 0"))
    return errors


def validate_endpoint_slice(obj: dict[str, Any]) -> Errors:
    """addressType and address families: the speaker reads slices to find local endpoints,
    and test fixtures that a real apiserver would refuse should fail here too."""
    family = obj.get("addressType")
    if family not in ("IPv4", "IPv6", "FQDN"):
        return [("addressType", f'Unsupported value: "{family}": supported values: "FQDN", '
                                '"IPv4", "IPv6"')]
    errors: Errors = []
    for index, endpoint in enumerate(obj.get("endpoints") or []):
        addresses = endpoint.get("addresses") if isinstance(endpoint, dict) else None
        if not addresses or not isinstance(addresses, list) or len(addresses) > 100:
            errors.append((f"endpoints[{index}].addresses", "Required value: between 1 and "
                                                            "100 addresses"))
            continue
        for address in addresses:
            if family == "FQDN":
                continue
            try:
                ok = ipaddress.ip_address(str(address)).version == (4 if family == "IPv4" else 6)
            except ValueError:
                ok = False
            if not ok:  # the real server names the list, not the item
                errors.append((f"endpoints[{index}].addresses",
                               f'Invalid value: "{address}": must be an {family} address'))
    for index, port in enumerate(obj.get("ports") or []):
        if isinstance(port, dict) and port.get("protocol", "TCP") not in PROTOCOLS:
            errors.append((f"ports[{index}].protocol", f'Unsupported value: '
                                                       f'"{port.get("protocol")}"'))
    return errors


def validate_event(rt: ResourceType, obj: dict[str, Any]) -> Errors:
    """Event rules, as kube-apiserver applies them to both Event APIs: an event without
    eventTime is an old-style event (its namespace must match involvedObject's); one with
    eventTime must name its reporter, instance, action and reason. events.k8s.io/v1 also
    requires eventTime. The object is in core form here; fields are named as the API the
    request came through names them."""
    errors: Errors = []
    new_api = rt.group == "events.k8s.io"
    if obj.get("type") not in (None, "", "Normal", "Warning") or (
            new_api and obj.get("type") not in ("Normal", "Warning")):
        errors.append(("type", f'Invalid value: "": has invalid value: {obj.get("type") or ""}'))
    involved = obj.get("involvedObject") or {}
    namespace = (obj.get("metadata") or {}).get("namespace")
    involved_field = "regarding.namespace" if new_api else "involvedObject.namespace"
    if not obj.get("eventTime"):
        if involved.get("namespace", "") not in ("", namespace) or (
                not involved.get("namespace") and namespace not in (None, "", "default")):
            errors.append((involved_field, f'Invalid value: "{involved.get("namespace", "")}"'
                                           ": does not match event.namespace"))
        if new_api:
            errors.append(("eventTime", "Required value"))
        return errors
    if not involved.get("namespace") and namespace not in ("default", "kube-system"):
        errors.append((involved_field, 'Invalid value: "": does not match event.namespace'))
    reporter = "reportingController" if new_api else "reportingComponent"
    for core_name, name, limit in (("reportingComponent", reporter, 253),
                                   ("reportingInstance", "reportingInstance", 128),
                                   ("action", "action", 128), ("reason", "reason", 128)):
        value = obj.get(core_name)
        if not value:
            errors.append((name, "Required value"))
        elif len(str(value)) > limit:
            errors.append((name, f'Invalid value: "": can have at most {limit} characters'))
    if len(str(obj.get("message") or "")) > 1024:
        errors.append(("note" if new_api else "message",
                       'Invalid value: "": can have at most 1024 characters'))
    return errors


# what an update through events.k8s.io/v1 may not change (core names, as the server reports
# them; series is what a recorder updates)
_IMMUTABLE_EVENT_FIELDS = ("involvedObject", "reason", "message", "source", "firstTimestamp",
                           "lastTimestamp", "count", "type", "eventTime", "action", "related",
                           "reportingComponent", "reportingInstance")


def _immutable_event_fields(new: dict[str, Any], old: dict[str, Any]) -> Errors:
    errors: Errors = []
    for field in _IMMUTABLE_EVENT_FIELDS:
        if new.get(field) != old.get(field):
            value = new.get(field)
            shown = f'"{value}"' if isinstance(value, str) else json.dumps(value)
            errors.append((field, f"Invalid value: {shown}: field is immutable"))
    return errors


def check_builtin(rt: ResourceType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise 422 Invalid with every cause found, as the apiserver aggregates them."""
    errors = validate_metadata(rt, new)
    if rt.group == "" and rt.plural == "services":
        errors += validate_service(new, old)
    if rt.plural == "events" and rt.group in ("", "events.k8s.io"):
        errors += validate_event(rt, new)
        if old is not None and rt.group == "events.k8s.io":
            errors += _immutable_event_fields(new, old)
    if rt.plural == "leases" and rt.group == "coordination.k8s.io":
        errors += validate_lease(new)
    if rt.plural == "endpointslices" and rt.group == "discovery.k8s.io":
        errors += validate_endpoint_slice(new)
    if errors:
        raise invalid(rt.kind, rt.group, (new.get("metadata") or {}).get("name", ""), errors)


def reject(message: str) -> ApiError:
    return ApiError(422, message)
