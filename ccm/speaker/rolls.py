"""Which L2 addresses another speaker joining or leaving can move, kept per candidate field.

Rendezvous hashing moves little: a node that joins takes only the addresses it outweighs the
owner for, and a node that leaves gives up only its own. From one node's side, then, a
joiner can take only addresses this node owns (one weight each decides), and a leaver can
give back only addresses it outweighed this node for. A ``Roll`` keeps, for the addresses of
one field (``plan.Candidates``), those this node owns and, for each of the others, one node
found to outweigh this one (its blocker, ``election.Electorate.blocker``); a re-election
then looks at the owned addresses when a node joins and at the ones the leaver blocked when
one leaves: about addresses ÷ nodes each time, not every address. ``Rolls`` holds one roll
per field in use, and finds the fields a change of the live set can reach.
"""

from __future__ import annotations

from collections.abc import Iterator

from ccm.speaker.election import Electorate, outranks
from ccm.speaker.plan import Candidates


class Roll:
    """The addresses of one field, indexed for a re-election. The indexes are made on first
    use: in most Local fields this node is not a candidate, and there is nothing to index."""

    __slots__ = ("_blocked", "_blocker_of", "_mine", "owned", "size")

    def __init__(self, owned: set[str]) -> None:
        self.size = 0  # addresses
        self.owned = owned  # every roll's owned addresses together (shared)
        self._mine: set[str] | None = None
        self._blocked: dict[str, set[str]] | None = None  # blocker -> the addresses it blocks
        self._blocker_of: dict[str, str] | None = None

    def add(self, ip: str, mine: bool, blocker: str | None) -> None:
        self.size += 1
        if mine:
            self._own(ip)
        elif blocker is not None:
            self._block(ip, blocker)

    def remove(self, ip: str) -> None:
        """Forget ``ip`` (one of this roll's addresses)."""
        self.size -= 1
        if self._mine is not None and ip in self._mine:
            self._mine.remove(ip)
            self.owned.discard(ip)
        blocker = self._blocker_of.pop(ip, None) if self._blocker_of else None
        if blocker is not None and self._blocked is not None:
            blocked = self._blocked[blocker]
            blocked.discard(ip)
            if not blocked:
                del self._blocked[blocker]

    def re_elect(self, electorate: Electorate, joined: frozenset[str], left: frozenset[str]
                 ) -> Iterator[tuple[str, bool]]:
        """The addresses whose election changed, each with whether this node now owns it.

        ``electorate`` is already the new one. A node that left gave up only the addresses
        it outweighed us for (the ones it blocked: elected again over the new field, joiners
        included); one that joined takes from us only what it outweighs us for. Every other
        address keeps its answer: its blocker is still there, or nobody new outweighs us."""
        if self._blocked and self._blocker_of is not None:
            for node in left:
                for ip in self._blocked.pop(node, ()):
                    del self._blocker_of[ip]
                    blocker = electorate.blocker(ip)
                    if blocker is None:
                        self._own(ip)
                        yield ip, True
                    else:
                        self._block(ip, blocker)
        if self._mine:
            for node in joined:
                lost = [ip for ip in self._mine if outranks(ip, node, electorate.node)]
                for ip in lost:
                    self._mine.remove(ip)
                    self.owned.discard(ip)
                    self._block(ip, node)
                    yield ip, False

    def _own(self, ip: str) -> None:
        if self._mine is None:
            self._mine = set()
        self._mine.add(ip)
        self.owned.add(ip)

    def _block(self, ip: str, blocker: str) -> None:
        if self._blocked is None or self._blocker_of is None:
            self._blocked, self._blocker_of = {}, {}
        self._blocker_of[ip] = blocker
        self._blocked.setdefault(blocker, set()).add(ip)


class Rolls:
    """One ``Roll`` per field the plan's L2 duties refer to."""

    def __init__(self) -> None:
        self._rolls: dict[Candidates, Roll] = {}
        self.owned: set[str] = set()  # every L2 address this node owns
        self._unlimited: set[Candidates] = set()  # fields not limited to ready nodes
        self._by_ready_node: dict[str, set[Candidates]] = {}  # Local fields, by ready node

    def __contains__(self, field: object) -> bool:
        return field in self._rolls

    def __len__(self) -> int:
        return len(self._rolls)

    def add(self, ip: str, field: Candidates, mine: bool, blocker: str | None) -> None:
        roll = self._rolls.get(field)
        if roll is None:
            roll = self._rolls[field] = Roll(self.owned)
            if field.ready is None:
                self._unlimited.add(field)
            for node in field.ready or ():
                self._by_ready_node.setdefault(node, set()).add(field)
        roll.add(ip, mine, blocker)

    def remove(self, ip: str, field: Candidates) -> None:
        roll = self._rolls[field]
        roll.remove(ip)
        if roll.size:
            return
        del self._rolls[field]
        self._unlimited.discard(field)
        for node in field.ready or ():
            fields = self._by_ready_node[node]
            fields.discard(field)
            if not fields:
                del self._by_ready_node[node]

    def reached_by(self, moved: frozenset[str]) -> Iterator[tuple[Candidates, Roll]]:
        """The fields whose candidates ``moved`` (nodes that came or went) may change: every
        one not limited to ready nodes, and the Local ones with a moved node ready."""
        fields = set(self._unlimited)
        for node in moved:
            fields.update(self._by_ready_node.get(node, ()))
        for field in fields:
            yield field, self._rolls[field]
