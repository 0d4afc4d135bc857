"""What to do about each allocation failure, so an Event stands alone in `kubectl describe svc`.

`kubectl describe` shows Events, not conditions: an AllocationFailed Event names its reason
and says what would fix it. The condition carries the same sentence (its reason is a field).
"""

from __future__ import annotations

ADVICE: dict[str, str] = {
    "NoMatchingPool": "create an IPPool whose serviceAllocation selects this Service, or name "
    "one with the vipam.io/pool annotation",
    "PoolExhausted": "add addresses to the pool, delete LoadBalancer Services that no longer "
    "need theirs, or name another pool with vipam.io/pool",
    "UnknownPool": "fix the pool name in the vipam.io/pool annotation, or create that IPPool",
    "PoolDisabled": "set spec.disabled: false on the pool, or name another pool",
    "RequestedIPOutsidePools": "request an address inside an IPPool (kubectl get ippools), "
    "or add an IPPool that contains it",
    "RequestedIPInUse": "request another address, or give both Services the same "
    "vipam.io/sharing-key and ports that do not overlap",
    "SharingConflict": "use ports that no other Service with this sharing key uses, or "
    "another sharing key",
    "FamilyMismatch": "request one address per family listed in spec.ipFamilies",
    "InvalidRequest": "fix the annotation or field named above",
    "DualStackUnavailable": "give a pool that selects this Service both IPv4 and IPv6 "
    "addresses, or use ipFamilyPolicy: PreferDualStack",
    "ExternalPool": "check the external IPAM named above; vipam retries with backoff",
}


def with_advice(reason: str, message: str) -> str:
    """The failure's sentence followed by what to do (for the condition and the Event)."""
    advice = ADVICE.get(reason)
    return f"{message.rstrip('.')}. To fix: {advice}." if advice else message


def event_message(reason: str, message: str) -> str:
    """An Event message that names its reason: Events show no separate reason field for it."""
    return f"{reason}: {message}"
