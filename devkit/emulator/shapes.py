"""JSON shapes of the built-in kinds, checked the way the apiserver's typed decoding does.

A body whose fields have the wrong JSON type (a string where a list is expected, ...) is
rejected with 400 "cannot be handled as a <Kind>", before any semantic validation; null is
accepted anywhere, as Go decoding leaves the zero value. Only fields the emulator or a
LoadBalancer controller touches are declared; the rest pass through.
"""

from __future__ import annotations

from typing import Any

from devkit.emulator.errors import bad_request
from devkit.emulator.resources import ResourceType

Shape = dict[str, Any]
STR: Shape = {"type": "string"}
INT: Shape = {"type": "integer"}
BOOL: Shape = {"type": "boolean"}
INT_OR_STRING: Shape = {"type": "int-or-string"}


def obj(**properties: Shape) -> Shape:
    return {"type": "object", "properties": properties}


def array(items: Shape) -> Shape:
    return {"type": "array", "items": items}


def string_map() -> Shape:
    return {"type": "object", "values": STR}


OBJECT_META = obj(
    name=STR, generateName=STR, namespace=STR, uid=STR, resourceVersion=STR, generation=INT,
    creationTimestamp=STR, deletionTimestamp=STR, deletionGracePeriodSeconds=INT,
    labels=string_map(), annotations=string_map(), finalizers=array(STR),
    ownerReferences=array(obj(apiVersion=STR, kind=STR, name=STR, uid=STR, controller=BOOL,
                              blockOwnerDeletion=BOOL)),
    managedFields=array({"type": "object"}),
)
CONDITION = obj(type=STR, status=STR, reason=STR, message=STR, lastTransitionTime=STR,
                lastHeartbeatTime=STR, observedGeneration=INT)
OBJECT_REFERENCE = obj(apiVersion=STR, kind=STR, name=STR, namespace=STR, uid=STR,
                       resourceVersion=STR, fieldPath=STR)
EVENT_SERIES = obj(count=INT, lastObservedTime=STR)

SHAPES: dict[tuple[str, str], Shape] = {
    ("", "services"): obj(
        metadata=OBJECT_META,
        spec=obj(type=STR, selector=string_map(), clusterIP=STR, clusterIPs=array(STR),
                 loadBalancerIP=STR, loadBalancerClass=STR, loadBalancerSourceRanges=array(STR),
                 externalIPs=array(STR), externalName=STR, externalTrafficPolicy=STR,
                 internalTrafficPolicy=STR, ipFamilies=array(STR), ipFamilyPolicy=STR,
                 sessionAffinity=STR, allocateLoadBalancerNodePorts=BOOL, healthCheckNodePort=INT,
                 publishNotReadyAddresses=BOOL,
                 ports=array(obj(name=STR, port=INT, protocol=STR, targetPort=INT_OR_STRING,
                                 nodePort=INT, appProtocol=STR))),
        status=obj(conditions=array(CONDITION), loadBalancer=obj(ingress=array(obj(
            ip=STR, hostname=STR, ipMode=STR,
            ports=array(obj(port=INT, protocol=STR, error=STR)))))),
    ),
    ("", "namespaces"): obj(metadata=OBJECT_META, spec=obj(finalizers=array(STR)),
                            status=obj(phase=STR, conditions=array({"type": "object"}))),
    ("", "nodes"): obj(metadata=OBJECT_META, spec=obj(unschedulable=BOOL, podCIDRs=array(STR)),
                       status=obj(addresses=array(obj(type=STR, address=STR)),
                                  conditions=array({"type": "object"}))),
    ("", "configmaps"): obj(metadata=OBJECT_META, data=string_map(), binaryData=string_map(),
                            immutable=BOOL),
    ("", "secrets"): obj(metadata=OBJECT_META, data=string_map(), stringData=string_map(),
                         type=STR, immutable=BOOL),
    ("", "endpoints"): obj(metadata=OBJECT_META, subsets=array(obj(
        addresses=array(obj(ip=STR, hostname=STR, nodeName=STR)),
        notReadyAddresses=array(obj(ip=STR, hostname=STR, nodeName=STR)),
        ports=array(obj(name=STR, port=INT, protocol=STR))))),
    ("", "events"): obj(
        metadata=OBJECT_META, involvedObject=OBJECT_REFERENCE, related=OBJECT_REFERENCE,
        reason=STR, message=STR, type=STR, action=STR, count=INT, firstTimestamp=STR,
        lastTimestamp=STR,
        eventTime=STR, reportingComponent=STR, reportingInstance=STR, series=EVENT_SERIES,
        source=obj(component=STR, host=STR)),
    ("discovery.k8s.io", "endpointslices"): obj(
        metadata=OBJECT_META, addressType=STR,
        endpoints=array(obj(addresses=array(STR), nodeName=STR, hostname=STR, zone=STR,
                            conditions=obj(ready=BOOL, serving=BOOL, terminating=BOOL))),
        ports=array(obj(name=STR, port=INT, protocol=STR, appProtocol=STR))),
    ("coordination.k8s.io", "leases"): obj(metadata=OBJECT_META, spec=obj(
        holderIdentity=STR, leaseDurationSeconds=INT, acquireTime=STR, renewTime=STR,
        leaseTransitions=INT, strategy=STR, preferredHolder=STR)),
    ("apiextensions.k8s.io", "customresourcedefinitions"): obj(
        metadata=OBJECT_META,
        spec=obj(group=STR, scope=STR, names=obj(plural=STR, singular=STR, kind=STR, listKind=STR,
                                             shortNames=array(STR), categories=array(STR)),
                 versions=array(obj(name=STR, served=BOOL, storage=BOOL,
                                    schema=obj(openAPIV3Schema={"type": "object"}),
                                    subresources={"type": "object"},
                                    additionalPrinterColumns=array(obj(
                                        name=STR, type=STR, jsonPath=STR, format=STR, priority=INT,
                                        description=STR)))))),
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


def shape_error(value: Any, shape: Shape, path: str = "") -> str | None:
    """The first field whose JSON type does not fit, described like Go's decoder does.

    Nulls are normalised in place as Go decoding would leave them: a null member is dropped
    (the zero value, omitted), a null list item becomes its type's zero value.
    """
    if value is None:
        return None
    if not _fits(value, shape["type"]):
        return (f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                f"{path or '<root>'} of type {shape['type']}")
    if isinstance(value, dict):
        properties = shape.get("properties", {})
        values = shape.get("values")
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for key, child in value.items():
            child_shape = properties.get(key) or values
            if child_shape is not None:
                found = shape_error(child, child_shape, f"{path}.{key}" if path else key)
                if found:
                    return found
    elif isinstance(value, list) and "items" in shape:
        for index, child in enumerate(value):
            if child is None:
                value[index] = child = _ZERO[shape["items"]["type"]]()
            found = shape_error(child, shape["items"], f"{path}[{index}]")
            if found:
                return found
    return None


def check_shape(rt: ResourceType, obj: dict[str, Any]) -> None:
    shape = SHAPES.get((rt.group, rt.plural), CUSTOM_RESOURCE) if rt.builtin else CUSTOM_RESOURCE
    found = shape_error(obj, shape)
    if found:
        raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                          f"{rt.kind}: {found}")
