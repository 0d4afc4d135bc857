"""The arithmetic that keeps two nodes from answering for one L2 address, even after a SIGKILL.

Another node may take an address over from a node whose Lease stops changing no earlier than
``lease_duration`` after that node's last successful renewal *began*: a watcher cannot see a
renewal before it was sent, and it judges expiry on its own clock from the moment it saw it.

A killed speaker runs no code, so its addresses must go by themselves: they carry a kernel
lifetime (``valid_lft``, whole seconds) that only a recent successful renewal lets the speaker
extend. The kernel removes an expired address on a timer that it rounds up to a whole second
when that costs less than HZ/4 (``check_lifetime`` in net/ipv4/devinet.c,
``addrconf_verify_rtnl`` in net/ipv6/addrconf.c): at most ``KERNEL_TIMER_SLACK`` late. So when
every address is added or refreshed within ``window`` of the start of a successful renewal,

    window + address_lifetime + KERNEL_TIMER_SLACK + MARGIN = lease_duration

the address of a speaker killed at any instant is gone before any other node may announce it.
Shipped defaults: 1.5 s lease, 1 s lifetime, 0.25 s slack, 0.05 s margin, so a 0.2 s window.

The exact bound, and its condition: a killed speaker's addresses are gone at most
``window + address_lifetime + KERNEL_TIMER_SLACK`` (1.45 s) after its last renewal began, while
nothing else adds or changes an address with a lifetime in the node's network namespace during
the second before they expire. The kernel re-plans its lifetime timer on every such change and
never sooner than one second after it, so a change then can postpone the removal by up to
0.75 s more (on kernels that keep one timer for all namespaces, a change in any namespace
counts). Takeover comes at 1.5 s or later. ``tests/netns/test_speaker_handover.py`` and
``bench/l2_outage.py`` measure it with a fresh ARP/NDP probe every 50 ms.
"""

from __future__ import annotations

#: Latest removal of an expired address after its lifetime, from the kernel's rounded timer.
KERNEL_TIMER_SLACK = 0.25
#: Room for the netlink call between our clock check and the kernel stamping the address.
MARGIN = 0.05


def refresh_window(lease_duration: float, address_lifetime: int) -> float:
    """Seconds after a successful renewal began during which an address may be (re)added."""
    return lease_duration - address_lifetime - KERNEL_TIMER_SLACK - MARGIN


def check(lease_duration: float, address_lifetime: int) -> None:
    """Refuse settings under which a killed speaker's address could outlive its Lease."""
    if address_lifetime and refresh_window(lease_duration, address_lifetime) <= 0:
        raise ValueError(
            f"address lifetime {address_lifetime} s plus the kernel's "
            f"{KERNEL_TIMER_SLACK} s timer slack and a {MARGIN} s margin must end before the "
            f"lease duration {lease_duration} s: a killed speaker's addresses would still "
            "answer after another node took them over (raise the lease duration, or lower "
            "the lifetime)"
        )
