"""Where a dialogue stands after a round, computed from the snapshot alone: what is agreed and what is contested."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from concord.store.model import UNRESOLVED_TENSION, Entity
from concord.store.snapshot import Snapshot

#: Most-supported perspectives and recommendations a synthesis names.
MOST_SUPPORTED = 5
#: Moves that back an entity (a concession gives ground to it) and moves that contest it.
BACKING_MOVES = ("concede", "defend")
CONTESTING_MOVES = ("challenge",)


@dataclass(frozen=True)
class Standing:
    """One entity in a synthesis: its id, label, status, how often it was backed or opposed, and by which ids."""

    id: str
    label: str
    status: str
    count: int = 0
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Synthesis:
    """The state of the dialogue after `round`: resolved and most-supported ids, open tensions and opposed ids."""

    round: int
    resolved: tuple[Standing, ...] = ()
    supported: tuple[Standing, ...] = ()
    open: tuple[Standing, ...] = ()
    opposed: tuple[Standing, ...] = ()

    def relabelled(self, relabel: Callable[[str], str]) -> Synthesis:
        """The same synthesis with every label passed through `relabel` (to mask names in an anonymous dialogue)."""

        def each(part: tuple[Standing, ...]) -> tuple[Standing, ...]:
            return tuple(replace(s, label=relabel(s.label)) for s in part)

        return Synthesis(self.round, each(self.resolved), each(self.supported), each(self.open), each(self.opposed))


def synthesise(snap: Snapshot, through: int) -> Synthesis:
    """The synthesis of every entity, ref and move of rounds 0..`through`, deterministic for a snapshot."""
    entities = {i: e for i, e in snap.entities.items() if e.round <= through}
    refs = [r for r in snap.refs if r.source in entities and r.target in entities]
    moves = [m for m in snap.moves if m.round <= through]
    backers: defaultdict[str, list[str]] = defaultdict(list)
    opposers: defaultdict[str, list[str]] = defaultdict(list)
    for ref in refs:
        if ref.ref_type == "support":
            backers[ref.target].append(ref.source)
        elif ref.ref_type == "oppose":
            opposers[ref.target].append(ref.source)
    moved: Counter[tuple[str, str]] = Counter()
    for move in moves:
        for target in move.targets:
            if move.move_type in BACKING_MOVES:
                moved[(target, "backed")] += 1
            elif move.move_type in CONTESTING_MOVES:
                moved[(target, "opposed")] += 1
    tensions = [e for e in entities.values() if e.kind == "tension"]
    supported = sorted(
        (
            _standing(e, backers[e.id], moved[(e.id, "backed")])
            for e in entities.values()
            if e.kind in ("perspective", "recommendation")
        ),
        key=lambda s: (-s.count, s.id),
    )
    opposed = [_standing(e, opposers[e.id], moved[(e.id, "opposed")]) for e in sorted(entities.values(), key=_order)]
    return Synthesis(
        round=through,
        resolved=tuple(_standing(t) for t in sorted(tensions, key=_order) if t.status == "resolved"),
        supported=tuple(s for s in supported if s.count)[:MOST_SUPPORTED],
        open=tuple(_standing(t) for t in sorted(tensions, key=_order) if t.status in UNRESOLVED_TENSION),
        opposed=tuple(s for s in opposed if s.count),
    )


def _standing(entity: Entity, by: list[str] | None = None, moves: int = 0) -> Standing:
    sources = tuple(sorted(set(by or ())))
    return Standing(entity.id, entity.label, entity.status, len(by or ()) + moves, sources)


def _order(entity: Entity) -> tuple[int, str, int]:
    return entity.round, entity.id[0], entity.seq
