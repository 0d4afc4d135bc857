"""Names users see (DESIGN.md) on Services, Leases, Events and pools, in one place."""

from __future__ import annotations

LOAD_BALANCER_CLASS = "vipam.io/vipam"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
CONDITION_ALLOCATED = "vipam.io/IPAllocated"

ANN_POOL = "vipam.io/pool"
ANN_IPS = "vipam.io/loadBalancerIPs"
ANN_SHARING_KEY = "vipam.io/sharing-key"
ANN_ALLOCATED_FROM = "vipam.io/allocated-from"
ANN_ANNOUNCING_NODE = "vipam.io/announcing-node"
# Not in DESIGN.md: remembers that spec.loadBalancerIP was written by us rather than requested by
# the user, so that release clears only what we set (the rule) even after a restart.
ANN_SET_LB_IP = "vipam.io/set-load-balancer-ip"
# Not in DESIGN.md: the external IPAM allocation key (cluster id/Service uid), written with the
# finalizer before the first backend call, so every backend address has an owner on both sides.
ANN_EXTERNAL_KEY = "vipam.io/external-key"

# Compatibility annotations, enabled per project with --compat.
COMPAT_IPS = {
    "metallb": "metallb.io/loadBalancerIPs",
    "kube-vip": "kube-vip.io/loadbalancerIPs",
    "cilium": "lbipam.cilium.io/ips",
}
COMPAT_POOL = {"metallb": "metallb.io/address-pool"}
COMPAT_SHARING_KEY = {
    "metallb": "metallb.io/allow-shared-ip",
    "cilium": "lbipam.cilium.io/sharing-key",
}
COMPAT_PROJECTS = frozenset({"metallb", "kube-vip", "cilium"})

# Leases (DESIGN.md): the controller's leader Lease and one liveness Lease per speaker.
CONTROLLER_LEASE = "vipam-controller"
SPEAKER_LEASE_PREFIX = "vipam-speaker-"

# Event reasons (DESIGN.md).
REASON_ALLOCATED = "IPAllocated"
REASON_FAILED = "AllocationFailed"
REASON_RELEASED = "IPReleased"
REASON_CONFLICT = "IPConflict"
REASON_POOL_OVERLAP = "PoolOverlap"
REASON_INVALID_POOL = "InvalidPool"
REASON_NODE_ASSIGNED = "NodeAssigned"
REASON_ANNOUNCE_FAILED = "AnnounceFailed"

# The vipam API group and the version every kind is served at.
GROUP = "vipam.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KINDS = ("IPPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer")
