"""JSON shapes of the built-in kinds, checked the way the apiserver's typed decoding does.

A body whose fields have the wrong JSON type (a string where a list is expected, ...) is
rejected with 400 "cannot be handled as a <Kind>", before any semantic validation; null is
accepted anywhere, as Go decoding leaves the zero value. Only fields the emulator or a
LoadBalancer controller touches are declared; the rest pass through.
"""

from __future__ import annotations

from typing import Any

from devkit.emulator.errors import DecodeError
from devkit.emulator.resources import ResourceType

Shape = dict[str, Any]
# Each shape carries the Go type kube-apiserver decodes into ("go"), and objects their struct
# name ("struct"), so a decoding error reads like the real one:
# `json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32`
STR: Shape = {"type": "string", "go": "string"}
INT: Shape = {"type": "integer", "go": "int32"}
INT64: Shape = {"type": "integer", "go": "int64"}
BOOL: Shape = {"type": "boolean", "go": "bool"}
INT_OR_STRING: Shape = {"type": "int-or-string", "go": "int32"}


def named(go: str) -> Shape:
    """A string of a named Go type (v1.ServiceType, v1.Protocol...)."""
    return {"type": "string", "go": go}


def obj(_struct: str = "", **properties: Shape) -> Shape:
    return {"type": "object", "properties": properties, "struct": _struct,
            "go": f"v1.{_struct}" if _struct else "map[string]interface {}"}


def array(items: Shape) -> Shape:
    return {"type": "array", "items": items, "go": f"[]{items['go']}"}


def string_map() -> Shape:
    return {"type": "object", "values": STR, "go": "map[string]string"}


OBJECT_META = obj(
    "ObjectMeta",
    name=STR, generateName=STR, namespace=STR, uid=named("types.UID"), resourceVersion=STR,
    generation=INT64, creationTimestamp=STR, deletionTimestamp=STR,
    deletionGracePeriodSeconds=INT64, labels=string_map(), annotations=string_map(),
    finalizers=array(STR),
    ownerReferences=array(obj("OwnerReference", apiVersion=STR, kind=STR, name=STR,
                              uid=named("types.UID"), controller=BOOL,
                              blockOwnerDeletion=BOOL)),
    managedFields=array({"type": "object", "go": "v1.ManagedFieldsEntry"}),
)
CONDITION = obj("Condition", type=STR, status=named("v1.ConditionStatus"), reason=STR,
                message=STR, lastTransitionTime=STR, lastHeartbeatTime=STR,
                observedGeneration=INT64)
OBJECT_REFERENCE = obj("ObjectReference", apiVersion=STR, kind=STR, name=STR, namespace=STR,
                       uid=named("types.UID"), resourceVersion=STR, fieldPath=STR)
EVENT_SERIES = obj("EventSeries", count=INT, lastObservedTime=STR)
PROTOCOL = named("v1.Protocol")

SHAPES: dict[tuple[str, str], Shape] = {
    ("", "services"): obj(
        "Service",
        metadata=OBJECT_META,
        spec=obj("ServiceSpec", type=named("v1.ServiceType"), selector=string_map(),
                 clusterIP=STR, clusterIPs=array(STR), loadBalancerIP=STR,
                 loadBalancerClass=STR, loadBalancerSourceRanges=array(STR),
                 externalIPs=array(STR), externalName=STR,
                 externalTrafficPolicy=named("v1.ServiceExternalTrafficPolicy"),
                 internalTrafficPolicy=named("v1.ServiceInternalTrafficPolicy"),
                 ipFamilies=array(named("v1.IPFamily")),
                 ipFamilyPolicy=named("v1.IPFamilyPolicy"),
                 sessionAffinity=named("v1.ServiceAffinity"),
                 allocateLoadBalancerNodePorts=BOOL, healthCheckNodePort=INT,
                 publishNotReadyAddresses=BOOL,
                 ports=array(obj("ServicePort", name=STR, port=INT, protocol=PROTOCOL,
                                 targetPort=INT_OR_STRING, nodePort=INT, appProtocol=STR))),
        status=obj("ServiceStatus", conditions=array(CONDITION), loadBalancer=obj(
            "LoadBalancerStatus", ingress=array(obj(
                "LoadBalancerIngress", ip=STR, hostname=STR,
                ipMode=named("v1.LoadBalancerIPMode"),
                ports=array(obj("PortStatus", port=INT, protocol=PROTOCOL, error=STR)))))),
    ),
    ("", "namespaces"): obj("Namespace", metadata=OBJECT_META,
                            spec=obj("NamespaceSpec", finalizers=array(named("v1.FinalizerName"))),
                            status=obj("NamespaceStatus", phase=named("v1.NamespacePhase"),
                                       conditions=array({"type": "object",
                                                         "go": "v1.NamespaceCondition"}))),
    ("", "nodes"): obj("Node", metadata=OBJECT_META,
                       spec=obj("NodeSpec", unschedulable=BOOL, podCIDRs=array(STR)),
                       status=obj("NodeStatus",
                                  addresses=array(obj("NodeAddress",
                                                      type=named("v1.NodeAddressType"),
                                                      address=STR)),
                                  conditions=array({"type": "object",
                                                    "go": "v1.NodeCondition"}))),
    ("", "configmaps"): obj("ConfigMap", metadata=OBJECT_META, data=string_map(),
                            binaryData={"type": "object", "values": STR,
                                        "go": "map[string][]uint8"},
                            immutable=BOOL),
    ("", "secrets"): obj("Secret", metadata=OBJECT_META,
                         data={"type": "object", "values": STR, "go": "map[string][]uint8"},
                         stringData=string_map(), type=named("v1.SecretType"), immutable=BOOL),
    ("", "endpoints"): obj("Endpoints", metadata=OBJECT_META, subsets=array(obj(
        "EndpointSubset",
        addresses=array(obj("EndpointAddress", ip=STR, hostname=STR, nodeName=STR)),
        notReadyAddresses=array(obj("EndpointAddress", ip=STR, hostname=STR, nodeName=STR)),
        ports=array(obj("EndpointPort", name=STR, port=INT, protocol=PROTOCOL))))),
    ("", "events"): obj(
        "Event",
        metadata=OBJECT_META, involvedObject=OBJECT_REFERENCE, related=OBJECT_REFERENCE,
        reason=STR, message=STR, type=STR, action=STR, count=INT, firstTimestamp=STR,
        lastTimestamp=STR,
        eventTime=STR, reportingComponent=STR, reportingInstance=STR, series=EVENT_SERIES,
        source=obj("EventSource", component=STR, host=STR)),
    ("discovery.k8s.io", "endpointslices"): obj(
        "EndpointSlice",
        metadata=OBJECT_META, addressType=named("v1.AddressType"),
        endpoints=array(obj("Endpoint", addresses=array(STR), nodeName=STR, hostname=STR,
                            zone=STR,
                            conditions=obj("EndpointConditions", ready=BOOL, serving=BOOL,
                                           terminating=BOOL))),
        ports=array(obj("EndpointPort", name=STR, port=INT, protocol=PROTOCOL,
                        appProtocol=STR))),
    ("coordination.k8s.io", "leases"): obj("Lease", metadata=OBJECT_META, spec=obj(
        "LeaseSpec",
        holderIdentity=STR, leaseDurationSeconds=INT, acquireTime=STR, renewTime=STR,
        leaseTransitions=INT, strategy=named("v1.CoordinatedLeaseStrategy"),
        preferredHolder=STR)),
    ("apiextensions.k8s.io", "customresourcedefinitions"): obj(
        "CustomResourceDefinition",
        metadata=OBJECT_META,
        spec=obj("CustomResourceDefinitionSpec", group=STR,
                 scope=named("v1.ResourceScope"),
                 names=obj("CustomResourceDefinitionNames", plural=STR, singular=STR, kind=STR,
                           listKind=STR, shortNames=array(STR), categories=array(STR)),
                 versions=array(obj("CustomResourceDefinitionVersion", name=STR, served=BOOL,
                                    storage=BOOL,
                                    schema=obj("CustomResourceValidation",
                                               openAPIV3Schema={"type": "object",
                                                                "go": "v1.JSONSchemaProps"}),
                                    subresources={"type": "object",
                                                  "go": "v1.CustomResourceSubresources"},
                                    additionalPrinterColumns=array(obj(
                                        "CustomResourceColumnDefinition",
                                        name=STR, type=STR, jsonPath=STR, format=STR,
                                        priority=INT, description=STR)))))),
}
CUSTOM_RESOURCE = obj(metadata=OBJECT_META)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fits(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, str)) and not isinstance(value, bool)  # int-or-string


_ZERO: dict[str, Any] = {"object": dict, "array": list, "string": str, "integer": int,
                         "boolean": bool, "int-or-string": int}


def shape_error(value: Any, shape: Shape, path: str = "", owner: str = "") -> str | None:
    """The first field whose JSON type does not fit, described like Go's decoder does: the
    struct that holds the field, the JSON path without indices, the field's Go type.

    Nulls are normalised in place as Go decoding would leave them: a null member is dropped
    (the zero value, omitted), a null list item becomes its type's zero value.
    """
    if value is None:
        return None
    if not _fits(value, shape["type"]):
        field = f"{owner}.{path}" if owner and path else (path or owner or "<root>")
        return (f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                f"{field} of type {shape.get('go', shape['type'])}")
    if isinstance(value, dict):
        properties = shape.get("properties", {})
        values = shape.get("values")
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for key, child in value.items():
            if key in properties:
                found = shape_error(child, properties[key], f"{path}.{key}" if path else key,
                                    shape.get("struct") or owner)
            elif values is not None:  # a map value: Go names the map field and its owner
                found = shape_error(child, values, path, owner)
            else:
                found = None
            if found:
                return found
    elif isinstance(value, list) and "items" in shape:
        for index, child in enumerate(value):
            if child is None:
                value[index] = child = _ZERO[shape["items"]["type"]]()
            found = shape_error(child, shape["items"], path, owner)
            if found:
                return found
    return None


def check_shape(rt: ResourceType, obj: dict[str, Any]) -> None:
    shape = SHAPES.get((rt.group, rt.plural), CUSTOM_RESOURCE) if rt.builtin else CUSTOM_RESOURCE
    found = shape_error(obj, shape, "", rt.kind)
    if found:
        raise DecodeError(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                          f"{rt.kind}: {found}", found)
