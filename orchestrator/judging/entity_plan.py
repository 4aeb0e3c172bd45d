"""Which entities the markers of one answer become, with their batch-unique local ids and labels.

Every PERSPECTIVE, TENSION and extended R/E/C marker (`[MUFFIN-R0101: …]`) becomes an entity of that
kind, and a REFINEMENT with any text becomes a perspective. An entity's local id is
`{AUTHOR}-{letter}{round:02}{n:02}`, where n is the number the author wrote (`P02`, `T04-R1`,
`MUFFIN-P0102`) or, for markers without one (`[REFINEMENT: …]`, `T-NEW`), the lowest number the
author left free in that answer. A marker with neither label nor body makes no entity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from concord.orchestrator.judging.markers import Marker, ParsedAnswer
from concord.orchestrator.judging.written_ids import parse_reference
from concord.store.ids import PREFIX_BY_KIND

LABEL_LENGTH = 120

#: The entity kind each content marker kind becomes.
ENTITY_KIND = {
    "perspective": "perspective",
    "tension": "tension",
    "refinement": "perspective",
    "recommendation": "recommendation",
    "evidence": "evidence",
    "claim": "claim",
}

_DECORATION = re.compile(r"^[\s#>*_\-+]+")


@dataclass(frozen=True)
class PlannedEntity:
    """An entity one marker of an answer will become."""

    index: int
    kind: str
    local_id: str
    label: str
    content: str


def plan_entities(expert: str, round: int, parsed: ParsedAnswer) -> list[PlannedEntity]:
    """The entities an answer's markers become, with their batch-unique local ids."""
    chosen: dict[int, tuple[str, int | None]] = {}
    taken: dict[str, set[int]] = {}
    for index, marker in enumerate(parsed.markers):
        kind = ENTITY_KIND.get(marker.kind)
        if kind is None or not (marker.label.strip() or marker.body.strip()):
            continue
        letter = PREFIX_BY_KIND[kind]
        used = taken.setdefault(letter, set())
        written = parse_reference(marker.local_id) if marker.local_id else None
        number = written.number if written and written.kind == letter and 1 <= written.number <= 99 else None
        if number in used:
            number = None
        if number is not None:
            used.add(number)
        chosen[index] = (kind, number)
    planned = []
    for index, (kind, number) in chosen.items():
        letter = PREFIX_BY_KIND[kind]
        if number is None:
            number = next(n for n in range(1, 100) if n not in taken[letter])
            taken[letter].add(number)
        marker = parsed.markers[index]
        label = _label(marker)
        planned.append(
            PlannedEntity(
                index, kind, f"{expert.upper()}-{letter}{round:02d}{number:02d}", label, marker.body.strip() or label
            )
        )
    return planned


def _label(marker: Marker) -> str:
    """The marker's label, else the first sentence of its body, cut to LABEL_LENGTH."""
    label = " ".join(marker.label.split())
    if not label:
        line = next((ln for ln in marker.body.splitlines() if ln.strip()), "")
        label = " ".join(_DECORATION.sub("", line).replace("**", "").split())
        label = re.split(r"(?<=[.!?])\s", label, maxsplit=1)[0]
    label = label or marker.raw.strip("[]")
    if len(label) > LABEL_LENGTH:
        label = label[:LABEL_LENGTH].rsplit(" ", 1)[0] + "…"
    return label
