"""Recorded judge ids (from a blue `tensions.md`) matched to the tension entities an import creates.

A recorded judge names tensions in its own way: jira's table uses global-looking `T01`…`T11`,
rfc-0058's headings use namespaced `MACARON-T01 (R0)` and `MUFFIN R1-T01`. Import keeps each
matched id as an alias of the entity, so that `[REFINEMENT on T01]` in a later answer resolves to
the tension the recorded judge meant. Matching rule:

1. A namespaced id names its author, number and round (`R1-`, or `(R0)` in the heading, else the
   earliest round): it matches that author's tension with that local number in that round.
2. A plain id (`T01`) is matched by label: the score is the share of the recorded label's content
   words found in the tension's label (`orchestrator.similarity`), ties broken by Jaccard overlap,
   then by the earlier round. Recorded labels are short ("Sync direction") while expert labels are
   full sentences, so coverage of the recorded words is what tells them apart. A match needs a
   score of at least MIN_LABEL_SCORE = 0.5; the best-scoring pairs are taken first and each
   entity takes at most one plain id. An id that answers already use in round N can only name a
   tension of an earlier round (experts cite what the judge published after earlier rounds).

Rows that match nothing are reported, and references to them stay unresolved (also reported).
An alias names one entity; the other tensions a recorded judge merged under the same id, and what
it ruled on them, are `recorded_rulings`'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from concord.orchestrator.blue.markdown_tables import plain, read_tables
from concord.orchestrator.judging.similarity import content_words, jaccard
from concord.orchestrator.judging.written_ids import NAMESPACED_IN_PROSE, parse_reference

MIN_LABEL_SCORE = 0.5

_HEADING = re.compile(
    rf"^#{{2,6}}\s+(?P<id>{NAMESPACED_IN_PROSE})(?:\s*\(R(?P<round>[0-9]{{1,2}})\))?\s*:\s*(?P<label>.+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class RecordedTension:
    """One tension as a recorded judge listed it."""

    id: str
    label: str
    round: int | None = None


@dataclass(frozen=True)
class Candidate:
    """A tension entity an import will create: its local id, author, round and label."""

    local_id: str
    author: str
    round: int
    number: int
    label: str


@dataclass(frozen=True)
class AliasMatch:
    """A recorded id matched to an entity's local id, how, and how well."""

    alias: str
    local_id: str
    method: str
    score: float

    def to_json(self) -> dict[str, object]:
        """Plain data."""
        return {"alias": self.alias, "local_id": self.local_id, "method": self.method, "score": round(self.score, 2)}


def read_recorded_tensions(text: str) -> list[RecordedTension]:
    """Tension rows of a blue tensions.md: `### EXPERT-T01 (R0): label` headings and `| T01 | label |` rows.

    Rows whose id is one of Concord's own display ids (`T0001`) are skipped: an exported
    dialogue carries its aliases in dialogue.json instead.
    """
    found = [
        RecordedTension(m["id"], m["label"].strip(), int(m["round"]) if m["round"] else None)
        for m in _HEADING.finditer(text)
        if _kind_letter(m["id"]) == "T"
    ]
    for table in read_tables(text):
        id_col = table.column("ID")
        label_col = table.column("Tension", "Label")
        if id_col is None or label_col is None:
            continue
        for row in table.rows:
            if max(id_col, label_col) < len(row) and _is_plain_tension_id(plain(row[id_col])):
                found.append(RecordedTension(plain(row[id_col]), _first_clause(plain(row[label_col]))))
    unique: dict[str, RecordedTension] = {}
    for tension in found:
        unique.setdefault(tension.id, tension)
    return list(unique.values())


def match_aliases(
    recorded: Sequence[RecordedTension], candidates: Sequence[Candidate], first_used: Mapping[str, int] | None = None
) -> tuple[list[AliasMatch], list[RecordedTension]]:
    """Match recorded ids to candidate tensions by the rule in the module docstring; return (matches, unmatched).

    `first_used` maps a plain id (`T05`) to the first round whose answers cite it.
    """
    first_used = first_used or {}
    matches: list[AliasMatch] = []
    unmatched: list[RecordedTension] = []
    plain_ids: list[RecordedTension] = []
    for tension in recorded:
        ref = parse_reference(tension.id)
        if ref is None:
            unmatched.append(tension)
        elif ref.expert is None:
            plain_ids.append(tension)
        else:
            wanted_round = ref.round if ref.round is not None else tension.round
            hits = sorted(
                (
                    c
                    for c in candidates
                    if c.author == ref.expert
                    and c.number == ref.number
                    and (wanted_round is None or c.round == wanted_round)
                ),
                key=lambda c: c.round,
            )
            if hits:
                score = jaccard(content_words(tension.label), content_words(hits[0].label))
                matches.append(AliasMatch(tension.id, hits[0].local_id, "namespaced id", score))
            else:
                unmatched.append(tension)
    scored = []
    for tension in plain_ids:
        words = content_words(tension.label)
        for c in candidates:
            if c.round >= first_used.get(tension.id, c.round + 1):
                continue
            theirs = content_words(c.label)
            coverage = len(words & theirs) / len(words) if words else 0.0
            if coverage >= MIN_LABEL_SCORE:
                scored.append((-coverage, -jaccard(words, theirs), c.round, tension.id, c.local_id, coverage))
    taken_ids: set[str] = set()
    taken_entities: set[str] = set()
    for _, _, _, alias, local_id, coverage in sorted(scored):
        if alias in taken_ids or local_id in taken_entities:
            continue
        taken_ids.add(alias)
        taken_entities.add(local_id)
        matches.append(AliasMatch(alias, local_id, "label similarity", coverage))
    unmatched += [t for t in plain_ids if t.id not in taken_ids]
    return matches, unmatched


def _kind_letter(text: str) -> str | None:
    """The kind letter of a written id (`T` for `MUFFIN R1-T01`), None when it is not one."""
    ref = parse_reference(text)
    return ref.kind if ref else None


def _is_plain_tension_id(text: str) -> bool:
    """True for a recorded judge's own tension id, `T01`: no author, no round, not one of Concord's display ids."""
    ref = parse_reference(text)
    return ref is not None and ref.kind == "T" and ref.expert is None and ref.round is None


def _first_clause(label: str) -> str:
    """A table label up to its first dash-separated description (`**label** — desc`)."""
    return re.split(r"\s+[—–-]{1,2}\s+", label, maxsplit=1)[0].strip()
