"""The judge's files in Concord's own format, plus the reader of recorded blue scoreboards.

Written: `scoreboard.md` (per-round and per-expert W/C/T/R; every total is summed from the per-expert
scores), `tensions.md` (one `| T…` row per tension, never dropped), `round-N.summary.md`,
`verdict.md` and `dialogue.json` (the whole dialogue as data). `parse_scoreboard` reads the
per-round table of a blue scoreboard (any of its column spellings) and of ours, so recorded
figures can be kept and compared, and re-rendering them gives the same numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from concord.orchestrator.blue.atomic import write_atomic
from concord.orchestrator.blue.layout import (
    DIALOGUE_FILE,
    SCOREBOARD_FILE,
    TENSIONS_FILE,
    VERDICT_FILE,
    answer_file,
    round_dir,
    summary_file,
)
from concord.orchestrator.blue.markdown_tables import Table, plain, read_tables, render_table
from concord.orchestrator.judging.scoring import scoring_rule
from concord.orchestrator.judging.tension_lifecycle import AUTHORITY_RULE
from concord.store.dialogue_store import gate
from concord.store.model import Round, Verdict, sum_scores
from concord.store.snapshot import Snapshot

DIALOGUE_FORMAT = "concord.dialogue/1"
SCORING_NOTE = f"Rules judge: {scoring_rule()}. Velocity = open tensions + new perspectives."
ROUNDS_HEADER = ("Round", "W", "C", "T", "R", "Score", "Σ", "Open T", "New P", "Velocity", "Converge %")
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


# --- reading recorded scoreboards ------------------------------------------------------


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


# --- rendering ---------------------------------------------------------------------------


def render_rounds_table(figures: Sequence[RoundFigures]) -> str:
    """The per-round table: W/C/T/R, score, running total, open tensions, new perspectives, velocity, converge %."""
    rows, running = [], 0
    for f in figures:
        running += f.score
        rows.append(
            [
                f.round,
                f.w,
                f.c,
                f.t,
                f.r,
                f.score,
                running,
                f.open_tensions,
                f.new_perspectives,
                f.velocity,
                f"{f.converge_percent:.0f}%",
            ]
        )
    return render_table(ROUNDS_HEADER, rows)


def render_scoreboard(snap: Snapshot) -> str:
    """scoreboard.md: per-round and per-expert W/C/T/R, totals summed from the expert scores."""
    rounds = list(snap.rounds.values())
    figures = [figures_of(r) for r in rounds]
    numbers = [r.number for r in rounds]
    experts = sorted(
        {name for r in rounds for name in r.scores},
        key=lambda n: (snap.experts[n].first_round if n in snap.experts else 0, n),
    )
    totals_rows = []
    for name in experts:
        total = sum_scores(r.scores[name] for r in rounds if name in r.scores)
        role = snap.experts[name].role if name in snap.experts else ""
        cells = [r.scores[name].total if name in r.scores else "—" for r in rounds]
        totals_rows.append([name.capitalize(), role, *cells, total.w, total.c, total.t, total.r, total.total])
    by_round = [
        [r.number, name.capitalize(), s.w, s.c, s.t, s.r, s.total]
        for r in rounds
        for name, s in sorted(r.scores.items())
    ]
    grand = sum_scores(r.totals for r in rounds)
    lines = [
        f"# Scoreboard: {snap.dialogue.title}",
        "",
        SCORING_NOTE,
        "",
        "## Rounds",
        "",
        render_rounds_table(figures),
        "",
        "## Experts",
        "",
        render_table(["Expert", "Role", *(f"R{n}" for n in numbers), "W", "C", "T", "R", "Total"], totals_rows),
        "",
        "## Experts by round",
        "",
        render_table(["Round", "Expert", "W", "C", "T", "R", "Score"], by_round),
        "",
        f"**Total ALIGNMENT:** {grand.total} (W:{grand.w} C:{grand.c} T:{grand.t} R:{grand.r})",
        f"**Convergence:** {_convergence_line(snap)}",
    ]
    return "\n".join(lines) + "\n"


def _convergence_line(snap: Snapshot) -> str:
    last = snap.last_round
    if last is None:
        return "no rounds registered"
    ok, blockers, _ = gate(last)
    if ok:
        return f"converged at round {last.number} (velocity 0, {last.signals}/{last.answered} signalled)"
    return f"not converged after round {last.number}: " + "; ".join(blockers)


def render_tensions(snap: Snapshot) -> str:
    """tensions.md: every tension ever raised, one `| T…` row each, with who raised and resolved it."""
    rows = []
    for tension in sorted(snap.of_kind("tension"), key=lambda t: t.id):
        author = tension.contributors[0].capitalize() if tension.contributors else "—"
        resolved = [e for e in snap.events_of(tension.id) if e.event_type == "resolved"]
        last = resolved[-1] if resolved and tension.status == "resolved" else None
        by = ", ".join(a.capitalize() for a in last.actors) if last and last.actors else "the judge"
        rows.append(
            [
                tension.id,
                tension.label,
                tension.status,
                f"{author}, round {tension.round}",
                f"round {last.round}, by {by}" if last else "—",
                (last.reason or "—") if last else "—",
                ", ".join(tension.aliases) or "—",
            ]
        )
    table = render_table(["ID", "Label", "Status", "Raised", "Resolved", "Resolution", "Aliases"], rows)
    return f"# Tensions: {snap.dialogue.title}\n\n{AUTHORITY_RULE}\n\n{table}\n"


def render_round_summary(snap: Snapshot, number: int) -> str:
    """round-N.summary.md: the round's figures, tension changes, new perspectives and the judge's notes."""
    rnd = snap.rounds[number]
    f = figures_of(rnd)
    metrics = render_table(
        ["Panel", "Answered", "Absent", "New P", "Open T", "Velocity", "Converge %", "W", "C", "T", "R", "Score"],
        [
            [
                rnd.panel_size,
                rnd.answered,
                ", ".join(rnd.absent) or "—",
                f.new_perspectives,
                f.open_tensions,
                f.velocity,
                f"{f.converge_percent:.0f}%",
                f.w,
                f.c,
                f.t,
                f.r,
                f.score,
            ]
        ],
    )
    changes = [e for e in snap.events if e.round == number and e.entity_type == "tension" and e.event_type != "created"]
    new = [e for e in snap.of_kind("perspective", number) if (e.parameters or {}).get("new")]
    lines = [f"# Round {number} summary: {snap.dialogue.title}", "", metrics, "", "## Tension changes", ""]
    lines += [f"- {e.entity_id} → {e.event_type}: {e.reason or ''}".rstrip(": ") for e in changes] or ["- none"]
    lines += ["", "## New perspectives", ""]
    lines += [f"- {e.id} ({', '.join(e.contributors)}): {e.label}" for e in new] or ["- none"]
    lines += ["", "## Summary", "", rnd.summary.strip() or "—"]
    if rnd.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in rnd.notes]
    return "\n".join(lines) + "\n"


def render_verdict(snap: Snapshot, verdict: Verdict) -> str:
    """verdict.md: converged or forced (with the gate's blockers), the figures, and the verdict text."""
    tensions = snap.of_kind("tension")
    resolved = sum(t.status == "resolved" for t in tensions)
    grand = sum_scores(r.totals for r in snap.rounds.values())
    last = snap.last_round
    head = f"## FORCED CONVERGENCE\n\n{verdict.warning}" if verdict.forced else "## CONVERGED"
    box = render_table(
        ["Metric", "Value"],
        [
            ["Rounds", len(snap.rounds)],
            ["Total ALIGNMENT", f"{grand.total} (W:{grand.w} C:{grand.c} T:{grand.t} R:{grand.r})"],
            ["Experts", len(snap.experts)],
            ["Tensions resolved", f"{resolved}/{len(tensions)}"],
            ["Final velocity", last.velocity if last else "—"],
            ["Converge %", f"{last.converge_percent:.0f}%" if last else "—"],
        ],
    )
    lines = [
        f"# Verdict: {snap.dialogue.title}",
        "",
        head,
        "",
        box,
        "",
        "## Recommendation",
        "",
        verdict.recommendation,
    ]
    if verdict.description.strip():
        lines += ["", "## Details", "", verdict.description.strip()]
    return "\n".join(lines) + "\n"


def dialogue_json(snap: Snapshot) -> dict[str, Any]:
    """The whole dialogue as data (what an import of this directory reads back besides the answers)."""
    d = snap.dialogue
    return {
        "format": DIALOGUE_FORMAT,
        "dialogue": {
            "id": d.id,
            "title": d.title,
            "question": d.question,
            "status": d.status,
            "origin": d.origin,
            "created_at": d.created_at,
            "converged_at": d.converged_at,
            "total_rounds": d.total_rounds,
            "total_alignment": d.total_alignment,
            "background": d.background,
        },
        "experts": [asdict(e) for e in snap.experts.values()],
        "rounds": [_round_json(snap, r) for r in snap.rounds.values()],
        "entities": [{"kind": e.kind, **asdict(e)} for e in sorted(snap.entities.values(), key=lambda e: e.id)],
        "refs": [asdict(r) for r in snap.refs],
        "events": [asdict(e) for e in snap.events],
        "moves": [asdict(m) for m in snap.moves],
        "verdicts": [asdict(v) for v in snap.verdicts],
    }


def _dialogue_json_text(snap: Snapshot) -> str:
    return json.dumps(dialogue_json(snap), indent=2, ensure_ascii=False, default=str) + "\n"


def _round_json(snap: Snapshot, rnd: Round) -> dict[str, Any]:
    return {
        "round": rnd.number,
        "panel": [asdict(s) for s in rnd.panel],
        "answered": rnd.answered,
        "absent": rnd.absent,
        "signals": sorted(s.expert for s in snap.signals if s.round == rnd.number),
        "scores": {name: s.to_list() for name, s in sorted(rnd.scores.items())},
        "figures": figures_of(rnd).to_json(),
        "summary": rnd.summary,
        "recorded": rnd.recorded,
        "notes": rnd.notes,
    }


# --- writing -----------------------------------------------------------------------------


def write_judge_files(directory: Path, snap: Snapshot) -> list[Path]:
    """Write scoreboard.md, tensions.md, every round-N.summary.md and dialogue.json (atomically)."""
    files = {SCOREBOARD_FILE: render_scoreboard(snap), TENSIONS_FILE: render_tensions(snap)}
    files |= {summary_file(n): render_round_summary(snap, n) for n in snap.rounds}
    files[DIALOGUE_FILE] = _dialogue_json_text(snap)
    written = []
    for name, text in files.items():
        write_atomic(directory / name, text)
        written.append(directory / name)
    return written


def write_verdict_file(directory: Path, snap: Snapshot, verdict: Verdict) -> Path:
    """Write verdict.md for a registered verdict, and refresh dialogue.json so it holds the verdict too."""
    path = directory / VERDICT_FILE
    write_atomic(path, render_verdict(snap, verdict))
    write_atomic(directory / DIALOGUE_FILE, _dialogue_json_text(snap))
    return path


# --- round_verify ------------------------------------------------------------------------


@dataclass
class RoundCheck:
    """Which of a round's files exist; `stale` lists judge files that do not cover the round yet."""

    status: str
    present: list[str]
    missing: list[str]
    stale: list[str]

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def verify_round(directory: Path, number: int, names: Sequence[str]) -> RoundCheck:
    """Check round-N/, each expert's answer, scoreboard.md, tensions.md and round-N.summary.md exist.

    Status is `ok` when nothing is missing. Beyond blue's existence check, a scoreboard.md without a
    row for round N is reported as stale (it exists but was not rewritten after the round).
    """
    wanted = [round_dir(number)] + [answer_file(number, name.lower()) for name in names]
    wanted += [SCOREBOARD_FILE, TENSIONS_FILE, summary_file(number)]
    present = [name for name in wanted if (directory / name).exists()]
    missing = [name for name in wanted if name not in present]
    stale = []
    if SCOREBOARD_FILE in present:
        rounds = {f.round for f in parse_scoreboard((directory / SCOREBOARD_FILE).read_text(encoding="utf-8"))}
        if number not in rounds:
            stale.append(SCOREBOARD_FILE)
    return RoundCheck("missing_files" if missing else "ok", present, missing, stale)
