"""Entity ids as experts write them: one grammar, read as a token or found in prose (protocol.md §3).

The forms, with K one of the kind letters P, R, T, E, C:

- `K` + 4 digits, `T0103`: a global display id (round 01, item 03), the only form Concord issues;
- `K` + 1 or 2 digits, `T01`, `T1`: a number local to its author's answer, or a recorded judge's
  published id (jira's `T01`), which an import keeps as an alias;
- namespaced by an expert: `MACARON-T01`, `MUFFIN R1-T01`, `STRUDEL-R1-T01`, `MUFFIN-P0101`;
- with a round suffix: `T04-R1`.

Three digits make no id: `T012` is neither a local number nor a display id, so it is refused, never
read as a global id. In prose only the forms that are not ordinary words count: a bare id needs 2 or
4 digits (`R1` is "round 1"), and a space-separated namespace needs its round (`MUFFIN R1-T01`,
while "See P01" does not name an expert See).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXPERT = r"[A-Z][A-Za-z]++[0-9]*+"
_KIND = r"[PRTEC]"
_NUMBER = r"(?:[0-9]{4}|[0-9]{1,2})"
_ROUND = r"[0-9]{1,2}"
DISPLAY_DIGITS = 4

# Possessive quantifiers keep both patterns linear on adversarial input.
_TOKEN = re.compile(
    rf"(?:(?P<expert>{_EXPERT})(?:-|[ ]++))?"
    rf"(?:R(?P<round>{_ROUND})-)?"
    rf"(?P<kind>{_KIND})(?P<num>{_NUMBER})"
    rf"(?:-R(?P<after>{_ROUND}))?"
)
#: A namespaced id in prose: `MUFFIN R1-T01`, `STRUDEL-R1-T01`, `MACARON-T01`.
NAMESPACED_IN_PROSE = rf"{_EXPERT}(?:-|[ ]++)R{_ROUND}-{_KIND}{_NUMBER}|{_EXPERT}-{_KIND}{_NUMBER}"
_IN_PROSE = re.compile(rf"\b(?:{NAMESPACED_IN_PROSE}|{_KIND}(?:[0-9]{{4}}|[0-9]{{2}}))\b")


@dataclass(frozen=True)
class Reference:
    """An entity id as written, and what it says: kind letter, number, author, round, and whether it is global."""

    raw: str
    kind: str
    number: int
    expert: str | None = None
    round: int | None = None
    is_global: bool = False

    @property
    def is_qualified(self) -> bool:
        """True when the id alone says which entity it is: a global display id, or one namespaced by its expert."""
        return self.is_global or self.expert is not None


def parse_reference(text: str) -> Reference | None:
    """Read one written id such as T01, T0103, T04-R1, STRUDEL R1-T01 or MUFFIN-P0101; None for anything else."""
    raw = text.strip()
    match = _TOKEN.fullmatch(raw)
    if match is None:
        return None
    digits = match["num"]
    expert = match["expert"].lower() if match["expert"] else None
    given_round = match["round"] or match["after"]
    round_: int | None = int(given_round) if given_round else None
    number = int(digits)
    is_global = False
    if len(digits) == DISPLAY_DIGITS:
        number = int(digits[2:])
        if round_ is None:
            round_ = int(digits[:2])
            is_global = expert is None
    return Reference(raw=raw, kind=match["kind"], number=number, expert=expert, round=round_, is_global=is_global)


def ids_in_prose(text: str) -> list[Reference]:
    """The ids a free text mentions, in order (repeats kept)."""
    refs = (parse_reference(match.group(0)) for match in _IN_PROSE.finditer(text))
    return [ref for ref in refs if ref is not None]
