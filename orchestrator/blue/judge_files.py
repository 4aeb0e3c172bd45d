"""The judge's files in Concord's own format, and the round_verify check of a round's files.

Written: `scoreboard.md` (per-round and per-expert W/C/T/R; every total is summed from the per-expert
scores), `tensions.md` (one `| T…` row per tension, never dropped), `round-N.summary.md`,
`verdict.md` and `dialogue.json` (`blue.dialogue_json`). Recorded scoreboards are read by
`blue.round_figures`, so re-rendering them gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from concord.orchestrator.blue.atomic import write_atomic
from concord.orchestrator.blue.dialogue_json import dialogue_json_text
from concord.orchestrator.blue.layout import (
    DIALOGUE_FILE,
    SCOREBOARD_FILE,
    TENSIONS_FILE,
    VERDICT_FILE,
    answer_file,
    round_dir,
    summary_file,
)
from concord.orchestrator.blue.markdown_tables import render_table
from concord.orchestrator.blue.round_figures import RoundFigures, figures_of, parse_scoreboard
from concord.orchestrator.judging.scoring import scoring_rule
from concord.orchestrator.judging.tension_lifecycle import AUTHORITY_RULE
from concord.store.model import Verdict, sum_scores
from concord.store.rules import gate
from concord.store.snapshot import Snapshot

SCORING_NOTE = f"Rules judge: {scoring_rule()}. Velocity = open tensions + new perspectives."
ROUNDS_HEADER = ("Round", "W", "C", "T", "R", "Score", "Σ", "Open T", "New P", "Velocity", "Converge %")


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


# --- writing -----------------------------------------------------------------------------


def write_judge_files(directory: Path, snap: Snapshot) -> list[Path]:
    """Write scoreboard.md, tensions.md, every round-N.summary.md and dialogue.json (atomically)."""
    files = {SCOREBOARD_FILE: render_scoreboard(snap), TENSIONS_FILE: render_tensions(snap)}
    files |= {summary_file(n): render_round_summary(snap, n) for n in snap.rounds}
    files[DIALOGUE_FILE] = dialogue_json_text(snap)
    written = []
    for name, text in files.items():
        write_atomic(directory / name, text)
        written.append(directory / name)
    return written


def write_verdict_file(directory: Path, snap: Snapshot, verdict: Verdict) -> Path:
    """Write verdict.md for a registered verdict, and refresh dialogue.json so it holds the verdict too."""
    path = directory / VERDICT_FILE
    write_atomic(path, render_verdict(snap, verdict))
    write_atomic(directory / DIALOGUE_FILE, dialogue_json_text(snap))
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
