"""Why two nodes never answer for one L2 address, even after a speaker is killed.

A speaker's addresses carry a kernel lifetime (``valid_lft``, 1 s by default) that the speaker
extends, every renew period, only while its Lease is being renewed. A killed or hung speaker
runs no code, so its addresses go by themselves: the kernel removes an expired address on a
timer that it rounds up to a whole second when that costs less than HZ/4 (``check_lifetime``
in net/ipv4/devinet.c, ``addrconf_verify_rtnl`` in net/ipv6/addrconf.c), so at most
``KERNEL_TIMER_SLACK`` late. (The kernel re-plans that timer on every address change in the
namespace, never sooner than a second after it: a change by another program during the second
before expiry can postpone the removal by up to 0.75 s more.)

That alone does not order the two events. Another node may take an address over once it has
not seen the owner's Lease renewed for ``lease_duration``; a renewal that was slow to reach the
server, or a refresh just before the kill, can leave the dead node's address alive a little
longer. So a node taking an address over from a node whose Lease *expired* (a clean stop
releases its Lease and hands over itself) first makes sure, on the segment, that nobody answers
for it any more: an ARP probe or a DAD-style neighbour solicitation, repeated until one gets no
answer. It waits at most until the dead node's addresses must have expired:

    expired + address_lifetime + KERNEL_TIMER_SLACK + MARGIN

(the dead speaker refreshed nothing after the moment we saw its Lease expire), then announces.
With the shipped defaults (0.5 s renewals, 1.5 s lease, 1 s lifetime) the dead node's address is
usually gone already when the takeover comes, so the check costs one probe (30 ms); the bound
on the extra wait is 1.5 s, and the takeover stays under 2 s after a SIGKILL.
"""

from __future__ import annotations

#: Latest removal of an expired address after its lifetime, from the kernel's rounded timer.
KERNEL_TIMER_SLACK = 0.25
#: Room for a refresh that was in flight when the speaker died, and for scheduling.
MARGIN = 0.25
#: How long a probe waits for an answer before the address counts as silent.
PROBE_WAIT = 0.03


def silence_deadline(expired_at: float, address_lifetime: int) -> float:
    """By then (monotonic) a node whose Lease expired at ``expired_at`` answers for nothing."""
    return expired_at + address_lifetime + KERNEL_TIMER_SLACK + MARGIN
