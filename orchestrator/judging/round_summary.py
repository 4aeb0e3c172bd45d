"""The rules judge's plain-text account of one round, stored as the round's summary."""

from __future__ import annotations

from collections.abc import Sequence

from concord.orchestrator.judging.tension_lifecycle import AUTHORITY_RULE
from concord.store.model import RoundBatch, StatusChange, sum_scores


def summarise_round(batch: RoundBatch, changes: Sequence[StatusChange], velocity: int, percent: float) -> str:
    """Who answered, what was raised, the round's figures and every tension change, in the judge's words."""
    totals = sum_scores(batch.scores.values())
    kinds = [d.kind for d in batch.entities]
    lines = [
        f"Round {batch.round}: {len(batch.answered)} of {len(batch.panel)} experts answered"
        + (f"; absent: {', '.join(batch.absent)}." if batch.absent else "."),
        f"Perspectives {kinds.count('perspective')} ({batch.new_perspectives} new), tensions raised {kinds.count('tension')}.",
        f"Open tensions {batch.open_tensions}, velocity {velocity}, converge {percent:.0f}% "
        f"({len(batch.signals)}/{len(batch.panel)} seated).",
        f"ALIGNMENT {totals.total} (W:{totals.w} C:{totals.c} T:{totals.t} R:{totals.r}).",
    ]
    lines += [f"{c.id} -> {c.status}: {c.reason}" for c in changes]
    lines.append(AUTHORITY_RULE)
    return "\n".join(lines)
