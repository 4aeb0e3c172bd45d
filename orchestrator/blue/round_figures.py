"""One round's headline figures: from a stored round, or read from a recorded scoreboard.

`parse_scoreboard` reads the per-round table of a blue scoreboard (any of its column spellings) and of
ours, so recorded figures can be kept beside the rules judge's and compared.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from concord.orchestrator.blue.markdown_tables import Table, plain, read_tables
from concord.store.model import Round

_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_ROUND_COLUMN = re.compile(r"R([0-9]+)")


@dataclass
class RoundFigures:
    """One round's headline figures, as a judge recorded them."""

    round: int
    w: int
    c: int
    t: int
    r: int
    score: int
    open_tensions: int
    new_perspectives: int
    velocity: int
    converge_percent: float
    experts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data (stored as a round's `recorded` figures)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoundFigures:
        """Figures from `to_json` output."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def figures_of(rnd: Round) -> RoundFigures:
    """The rules judge's figures of a stored round; totals summed from its per-expert scores."""
    totals = rnd.totals
    return RoundFigures(
        rnd.number,
        totals.w,
        totals.c,
        totals.t,
        totals.r,
        totals.total,
        rnd.open_tensions,
        rnd.new_perspectives,
        rnd.velocity,
        rnd.converge_percent,
        {name: score.total for name, score in sorted(rnd.scores.items())},
    )


def parse_scoreboard(text: str) -> list[RoundFigures]:
    """The per-round figures of a scoreboard.md (blue's column spellings or ours), with per-expert scores."""
    tables = read_tables(text)
    rounds_table = next((t for t in tables if _is_rounds_table(t)), None)
    if rounds_table is None:
        return []
    figures = [f for f in (_round_row(rounds_table, row) for row in rounds_table.rows) if f is not None]
    by_round = {f.round: f for f in figures}
    for table in tables:
        for number, name, score in _expert_scores(table):
            if number in by_round:
                by_round[number].experts[name] = score
    return figures


def parse_round_scoreboard(text: str, number: int) -> RoundFigures | None:
    """Figures of the older per-round scoreboard (`round-N/scoreboard.md`): expert rows summed."""
    table = next((t for t in read_tables(text) if t.column("Expert") is not None and t.column("W") is not None), None)
    if table is None:
        return None
    name_col = table.column("Expert")
    cols = [table.column(n) for n in ("W", "C", "T", "R")]
    experts: dict[str, int] = {}
    sums = [0, 0, 0, 0]
    for row in table.rows:
        values = [_int(_cell(row, c)) for c in cols]
        parts = [v for v in values if v is not None]
        if len(parts) < 4:
            continue
        sums = [a + b for a, b in zip(sums, parts, strict=False)]
        experts[_cell(row, name_col).lower()] = sum(parts)
    open_t = _labelled(text, "Open Tensions")
    new_p = _labelled(text, "New Perspectives")
    converge = re.search(r"Converge[^\n]*?([0-9]+(?:\.[0-9]+)?)%", text)
    w, c, t, r = sums
    return RoundFigures(
        number,
        w,
        c,
        t,
        r,
        sum(sums),
        open_t or 0,
        new_p or 0,
        (open_t or 0) + (new_p or 0),
        float(converge.group(1)) if converge else 0.0,
        experts,
    )


def _is_rounds_table(table: Table) -> bool:
    return all(table.column(n) is not None for n in ("Round", "W", "C", "T", "R")) and table.column("Expert") is None


def _round_row(table: Table, row: list[str]) -> RoundFigures | None:
    number = _int(_cell(row, table.column("Round")))
    if number is None:
        return None
    w, c, t, r = (_int(_cell(row, table.column(n))) or 0 for n in ("W", "C", "T", "R"))
    score = _int(_cell(row, table.column("Score")))
    open_t = _int(_cell(row, table.column("Open T", "Open Tensions"))) or 0
    new_p = _int(_cell(row, table.column("New P", "New Perspectives"))) or 0
    velocity = _int(_cell(row, table.column("Velocity")))
    converge = _float(_cell(row, table.column("Converge %", "Converge")))
    return RoundFigures(
        number,
        w,
        c,
        t,
        r,
        score if score is not None else w + c + t + r,
        open_t,
        new_p,
        velocity if velocity is not None else open_t + new_p,
        converge or 0.0,
    )


def _expert_scores(table: Table) -> list[tuple[int, str, int]]:
    """(round, expert slug, score) from an expert table: `| Round | Expert | … | Score |` or `| Expert | … | R0 | R1 |`."""
    name_col = table.column("Expert")
    if name_col is None:
        return []
    round_col, score_col = table.column("Round"), table.column("Score")
    found = []
    if round_col is not None and score_col is not None:
        for row in table.rows:
            number, score = _int(_cell(row, round_col)), _int(_cell(row, score_col))
            if number is not None and score is not None:
                found.append((number, plain(row[name_col]).lower(), score))
        return found
    columns = {i: int(m.group(1)) for i, h in enumerate(table.header) if (m := _ROUND_COLUMN.fullmatch(plain(h)))}
    for row in table.rows:
        for i, number in columns.items():
            score = _int(_cell(row, i))
            if score is not None:
                found.append((number, plain(row[name_col]).lower(), score))
    return found


def _labelled(text: str, label: str) -> int | None:
    match = re.search(rf"{label}\W+([0-9]+)", text)
    return int(match.group(1)) if match else None


def _cell(row: list[str], index: int | None) -> str:
    return plain(row[index]) if index is not None and index < len(row) else ""


def _int(cell: str) -> int | None:
    match = _NUMBER.search(cell)
    return int(float(match.group(0))) if match else None


def _float(cell: str) -> float | None:
    match = _NUMBER.search(cell)
    return float(match.group(0)) if match else None
