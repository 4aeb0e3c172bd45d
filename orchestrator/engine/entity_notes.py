"""The entities a round prompt carries: the last round's in full, earlier rounds' while still in play, and whose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from concord.store.model import Entity
from concord.store.snapshot import Snapshot

#: Kinds a prompt lists, in the order it lists them within a round.
LISTED_KINDS = ("perspective", "recommendation", "tension")
#: Statuses that take an earlier round's entity out of play (a resolved tension is in the synthesis instead).
OUT_OF_PLAY = {
    "perspective": ("conceded", "merged"),
    "recommendation": ("rejected",),
    "tension": ("resolved",),
}


@dataclass(frozen=True)
class EntityNote:
    """One entity as a prompt shows it: global id, kind, round, status, authors, label, body, and the file it came from."""

    id: str
    kind: str
    round: int
    status: str
    authors: tuple[str, ...]
    label: str
    body: str
    file: str


def entity_notes(snap: Snapshot, number: int, name_of: Callable[[str], str], *, anonymous: bool) -> list[EntityNote]:
    """Round `number - 1`'s entities, then those of earlier rounds still in play, each round in id order.

    `name_of` turns an author's slug into the name the prompt shows; an anonymous prompt points to the
    round folder rather than to the author's answer file.
    """
    last = number - 1
    chosen = [
        e
        for e in snap.entities.values()
        if e.kind in LISTED_KINDS and e.round < number and (e.round == last or e.status not in OUT_OF_PLAY[e.kind])
    ]
    chosen.sort(key=lambda e: (e.round != last, e.round, LISTED_KINDS.index(e.kind), e.seq))
    return [_note(e, name_of, anonymous) for e in chosen]


def own_ids(snap: Snapshot, number: int, slug: str) -> list[str]:
    """Global ids of the entities `slug` contributed before round `number`, in round and id order."""
    mine = [e for e in snap.entities.values() if e.round < number and slug in e.contributors]
    return [e.id for e in sorted(mine, key=lambda e: (e.round, e.id[0], e.seq))]


def _note(entity: Entity, name_of: Callable[[str], str], anonymous: bool) -> EntityNote:
    author = entity.contributors[0] if entity.contributors else ""
    folder = f"round-{entity.round}/"
    return EntityNote(
        id=entity.id,
        kind=entity.kind,
        round=entity.round,
        status=entity.status,
        authors=tuple(name_of(c) for c in entity.contributors),
        label=entity.label,
        body=entity.content,
        file=folder if anonymous or not author else f"{folder}{author}.md",
    )
