"""A fixed round-0 snapshot and a helper that judges round 1 against it (shared by the rules-judge tests)."""

from __future__ import annotations

from collections.abc import Mapping

from concord.orchestrator.judging.rules_judge import ExpertAnswer, JudgedRound, judge_round
from concord.store.model import Dialogue, Entity, Expert, PanelSeat, Perspective, Tension
from concord.store.snapshot import Snapshot

PANEL = [PanelSeat("Muffin", "Storage"), PanelSeat("Cupcake", "Security"), PanelSeat("Scone", "Product")]


def entity(cls: type[Entity], display: str, local_id: str, label: str, status: str = "open") -> Entity:
    """A round-0 entity under its global and its author's local id (`MUFFIN-T0001`: muffin's T01)."""
    author = local_id.split("-")[0].lower()
    return cls(display, 0, int(display[3:]), label, f"{label}, explained.", status, [author], local_id=local_id)


def snapshot(*entities: Entity, experts: tuple[str, ...] = ()) -> Snapshot:
    """A dialogue after round 0 holding `entities`; the panel's experts (and `experts`) have joined it."""
    slugs = [seat.name.lower() for seat in PANEL] + list(experts)
    return Snapshot(
        Dialogue("d1", "local", "Scoring", "How should we store dialogues?", total_rounds=1),
        experts={slug: Expert(slug, "Expert") for slug in slugs},
        entities={e.id: e for e in entities},
    )


#: Round 0: cupcake wrote P0001 and T0001 (its P01/T01), muffin P0002 and T0002 (its P01/T01).
EARLIER = snapshot(
    entity(Perspective, "P0001", "CUPCAKE-P0001", "Rotate data keys monthly"),
    entity(Perspective, "P0002", "MUFFIN-P0001", "One writer per partition"),
    entity(Tension, "T0001", "CUPCAKE-T0001", "Audit depth against storage cost"),
    entity(Tension, "T0002", "MUFFIN-T0001", "Throughput against strict ordering"),
)


def judge(
    answers: Mapping[str, str],
    *,
    earlier: Snapshot = EARLIER,
    panel: list[PanelSeat] = PANEL,
    aliases: Mapping[str, str] | None = None,
) -> JudgedRound:
    """Judge round 1 with these answers; seated experts without one are absent."""
    seats = [ExpertAnswer(s.name.lower(), answers.get(s.name.lower())) for s in panel]
    return judge_round(earlier, 1, panel, seats, aliases=aliases)
