"""`concord compare ID`: the rules judge's per-round figures next to the recorded judge's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concord.orchestrator.blue.round_figures import RoundFigures, figures_of
from concord.store.snapshot import Snapshot


@dataclass
class RoundComparison:
    """One round as the rules judge scored it and as the recorded judge did (None when not recorded)."""

    round: int
    rules: RoundFigures
    recorded: RoundFigures | None


@dataclass
class Comparison:
    """Per-round comparison of one dialogue."""

    dialogue_id: str
    title: str
    rounds: list[RoundComparison]

    def to_json(self) -> dict[str, Any]:
        """`{dialogue_id, title, rounds: [{round, rules: {...}, recorded: {...}|null}]}`."""
        return {
            "dialogue_id": self.dialogue_id,
            "title": self.title,
            "rounds": [
                {"round": r.round, "rules": r.rules.to_json(), "recorded": r.recorded.to_json() if r.recorded else None}
                for r in self.rounds
            ],
        }


def compare_recorded(snap: Snapshot) -> Comparison:
    """Pair each stored round's rules-judge figures with the figures recorded beside it at import."""
    rounds = [
        RoundComparison(rnd.number, figures_of(rnd), RoundFigures.from_json(rnd.recorded) if rnd.recorded else None)
        for rnd in snap.rounds.values()
    ]
    return Comparison(snap.dialogue.id, snap.dialogue.title, rounds)


def format_comparison(comparison: Comparison) -> str:
    """A side-by-side table: W/C/T/R, score, open + new = velocity, converge %, rules judge vs recorded."""
    lines = [
        f"{comparison.title} ({comparison.dialogue_id})",
        "",
        f"{'round':>5}  {'judge':<8} {'W':>4} {'C':>4} {'T':>4} {'R':>4} {'score':>6}  {'open':>4} + {'new':>4} = {'vel':>4}  conv",
    ]
    for r in comparison.rounds:
        for name, f in (("rules", r.rules), ("recorded", r.recorded)):
            if f is None:
                lines.append(f"{r.round:>5}  {name:<8} (not recorded)")
                continue
            lines.append(
                f"{r.round:>5}  {name:<8} {f.w:>4} {f.c:>4} {f.t:>4} {f.r:>4} {f.score:>6}  "
                f"{f.open_tensions:>4} + {f.new_perspectives:>4} = {f.velocity:>4}  {f.converge_percent:>3.0f}%"
            )
    return "\n".join(lines)
