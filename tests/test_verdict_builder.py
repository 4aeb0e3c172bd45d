"""The rules verdict from a hand-built snapshot: support decides the recommendation, dissent and risks are named."""

from __future__ import annotations

from dataclasses import replace

from concord.orchestrator.judging.verdict_builder import Standing, build_verdict, rank_candidates, recommendation_text
from concord.store.model import (
    Dialogue,
    Entity,
    Event,
    Expert,
    Move,
    Perspective,
    Recommendation,
    Ref,
    Round,
    Signal,
    Tension,
    TextRecord,
    Verdict,
)
from concord.store.snapshot import Snapshot

QUESTION = "Which queue should the team adopt?"


def entity(cls: type[Entity], entity_id: str, author: str, label: str, status: str = "open") -> Entity:
    return cls(
        entity_id,
        int(entity_id[1:3]),
        int(entity_id[3:]),
        label,
        f"{label} is what we should do. More.",
        status,
        [author],
    )


def snapshot(
    refs: list[Ref], *, signals: tuple[str, ...] = ("muffin", "cupcake", "scone"), **extra: object
) -> Snapshot:
    entities = [
        entity(Perspective, "P0001", "muffin", "Use the managed queue"),
        entity(Perspective, "P0002", "cupcake", "Run our own broker"),
        entity(Perspective, "P0101", "scone", "Start with the managed queue and measure"),
        entity(Tension, "T0001", "cupcake", "Cost versus control", "resolved"),
        entity(Tension, "T0002", "scone", "Vendor lock-in", "open"),
    ]
    last = Round(1, seated=["muffin", "cupcake", "scone"], signals=len(signals), answered=3, summary="Round 1.")
    return Snapshot(
        Dialogue("d1", "local", "Queues", QUESTION),
        rounds={0: Round(0, seated=["muffin", "cupcake", "scone"]), 1: last},
        entities={e.id: e for e in entities},
        refs=refs,
        signals=[Signal(1, s) for s in signals],
        **extra,  # type: ignore[arg-type]
    )


def test_support_refs_decide_the_recommendation_and_its_reasons_cite_them() -> None:
    snap = snapshot([Ref("P0101", "support", "P0002"), Ref("P0001", "support", "P0002")])
    verdict = build_verdict(snap, converged=True)
    assert verdict.recommendation.startswith("Run our own broker is what we should do. More. (P0002). The panel also")
    assert verdict.reasons[0].cites == ["P0002", "P0001", "P0101"]
    assert verdict.question == QUESTION and verdict.confidence == "unanimous"


def test_ties_go_to_recommendations_then_the_lower_id_and_oppose_counts_against() -> None:
    tied = snapshot([])
    assert [s.entity.id for s in rank_candidates(tied)] == ["P0001", "P0002", "P0101"]
    tied.entities["R0102"] = entity(Recommendation, "R0102", "muffin", "Adopt the managed queue", "proposed")
    assert rank_candidates(tied)[0].entity.id == "R0102"
    opposed = snapshot([Ref("P0101", "oppose", "P0001")])
    assert [s.entity.id for s in rank_candidates(opposed)][-1] == "P0001"


def test_lasting_resolutions_and_concessions_count_for_the_settling_entity() -> None:
    snap = snapshot(
        [Ref("P0101", "resolve", "T0001"), Ref("P0002", "resolve", "T0001")],
        moves=[Move(1, "muffin", 1, "concede", ["T0001"], "Cupcake is right")],
    )
    top = rank_candidates(snap)[0]
    assert top.entity.id == "P0002" and top.points == 3  # resolved T0001, conceded to, author signalled
    (t1, t2) = build_verdict(snap, converged=True).tensions
    assert t1.id == "T0001" and t1.cites == ["P0002", "P0101"] and "Resolved" in t1.how
    assert t2.id == "T0002" and t2.status == "open" and "no expert resolved or addressed it" in t2.how


def test_dissent_markers_oppose_refs_and_missing_signals_are_named_with_risks() -> None:
    answer = "[PERSPECTIVE P01: Run our own broker]\nBody.\n\n[DISSENT: the managed queue's limits will bite]\n"
    snap = snapshot(
        [Ref("P0002", "oppose", "P0101"), Ref("P0001", "support", "P0101"), Ref("P0002", "support", "P0101")],
        signals=("muffin", "cupcake"),
        texts=[TextRecord("answer", 1, "cupcake", answer)],
        events=[Event("tension", "T0002", "addressed", 1, actors=["muffin"])],
        experts={name: Expert(name, "engineer") for name in ("muffin", "cupcake", "scone")},
    )
    verdict = build_verdict(snap, converged=False)
    by = {d.expert: d for d in verdict.dissent}
    assert sorted(by) == ["cupcake", "scone"]
    assert "dissent in round 1: the managed queue's limits will bite" in by["cupcake"].why
    assert "opposed P0101 in P0002" in by["cupcake"].why and by["cupcake"].cites == ["P0101", "P0002"]
    assert "did not signal convergence" in by["scone"].why
    assert verdict.confidence == "contested"
    assert any(r.startswith("T0002 stays open") for r in verdict.risks)
    assert any(r.startswith("Cupcake does not stand behind the verdict: dissent in round 1") for r in verdict.risks)
    assert "did not converge" in verdict.risks[-1]


def test_a_verdict_without_sections_still_renders_none_recorded() -> None:
    from concord.orchestrator.blue.judge_files import render_verdict

    text = render_verdict(snapshot([]), Verdict("final", "final", 1, "Old one-line verdict."))
    assert "## Question\n\nWhich queue should the team adopt?" in text
    assert "## Reasons\n\n- none recorded" in text and "## Risks\n\n- none recorded" in text


def test_the_recommendation_names_a_label_once_and_keeps_one_that_adds_to_the_text() -> None:
    echoed = entity(Perspective, "P0002", "cupcake", "Run our own broker")
    assert recommendation_text([Standing(echoed)]) == "Run our own broker is what we should do. More. (P0002)."
    distinct = replace(echoed, label="Control first.")
    assert recommendation_text([Standing(distinct)]) == (
        "Control first (P0002): Run our own broker is what we should do. More."
    )
