"""Validation of the llm judge's assessment and verdict: anything off-schema or off the record is rejected, never half-used."""

from __future__ import annotations

import json
import re

import pytest

from concord.orchestrator.judging.llm_judge import AssessmentError, parse_assessment
from concord.orchestrator.judging.llm_verdict import VerdictRejected, accept_draft
from concord.orchestrator.judging.verdict_builder import build_verdict
from concord.store.model import Expert, Ref, Score, Verdict
from concord.store.snapshot import Snapshot
from tests.test_verdict_builder import snapshot


def reply(*experts: dict, summary: str = "ok") -> str:
    return json.dumps({"experts": list(experts), "summary": summary})


def expert(name: str, w: object = 5, c: object = 4, t: object = 3, r: object = 2) -> dict:
    return {"name": name, "W": w, "C": c, "T": t, "R": r, "note": "n"}


def test_valid_assessment_maps_names_to_slugs() -> None:
    parsed = parse_assessment(
        reply(expert("Muffin"), expert("Cupcake (Key-Value Store Specialist)", 1, 2, 3, 4)), ["muffin", "cupcake"]
    )
    assert parsed.scores == {"muffin": Score(5, 4, 3, 2), "cupcake": Score(1, 2, 3, 4)}
    assert parse_assessment("```json\n" + reply(expert("Muffin")) + "\n```", ["muffin"]).summary == "ok"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("I think everyone did well.", "not JSON"),
        (json.dumps({"experts": []}), "'summary' string"),
        (reply(expert("Muffin"), expert("Scone")), "did not answer"),
        (reply(expert("Muffin"), expert("muffin")), "second time"),
        (reply(expert("Muffin", w=11)), "0-10"),
        (reply(expert("Muffin", c=2.5)), "0-10"),
        (reply(expert("Muffin", t=True)), "0-10"),
        (reply(expert("Muffin")), "no score for cupcake"),
    ],
)
def test_invalid_assessments_are_rejected(text: str, problem: str) -> None:
    with pytest.raises(AssessmentError, match=problem):
        parse_assessment(text, ["muffin", "cupcake"])


def verdict_reply(**changes: object) -> str:
    draft: dict[str, object] = {
        "recommendation": "Run our own broker.",
        "reasons": [{"text": "Cupcake's case held.", "cites": ["P0002"]}],
        "tensions": [{"id": "T0001", "how": "Settled by P0002.", "cites": ["P0002"]}],
        "dissent": [{"expert": "Scone", "why": "Prefers the managed queue.", "cites": ["P0101"]}],
        "risks": ["Running a broker costs on-call time."],
    }
    return json.dumps({**draft, **changes})


def verdict_snapshot() -> tuple[Snapshot, Verdict]:
    snap = snapshot([Ref("P0101", "resolve", "T0002")])
    snap.entities = {k: v for k, v in snap.entities.items() if k != "T0002"}
    snap.experts = {name: Expert(name, "engineer") for name in ("muffin", "cupcake", "scone")}
    return snap, build_verdict(snap, converged=True)


def test_a_verdict_draft_citing_the_record_replaces_the_rules_sections() -> None:
    snap, rules = verdict_snapshot()
    verdict = accept_draft(verdict_reply(), snap, rules, "model-x")
    assert verdict.recommendation == "Run our own broker." and verdict.reasons[0].cites == ["P0002"]
    assert verdict.tensions[0].status == snap.entities["T0001"].status  # the status is the store's
    assert verdict.dissent[0].expert == "scone" and verdict.confidence == "strong"
    assert verdict.vote == rules.vote and verdict.round == rules.round
    assert "llm judge (model-x)" in verdict.notes[0]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"reasons": [{"text": "x", "cites": ["P0999"]}]}, "does not hold: P0999"),
        ({"tensions": [{"id": "T0009", "how": "x", "cites": []}]}, "does not hold: T0009"),
        ({"tensions": []}, "must list each of T0001 once"),
        ({"tensions": [{"id": "P0001", "how": "x", "cites": []}]}, "must list each of T0001"),
        ({"dissent": [{"expert": "Brioche", "why": "x", "cites": []}]}, "not on the dialogue's panel: Brioche"),
        ({"reasons": []}, "needs reasons"),
        ({"reasons": [{"text": "x", "cites": []}]}, "needs reasons, each citing"),
        ({"recommendation": " "}, "recommendation is empty"),
        ({"risks": None}, "not the verdict schema: risks"),
    ],
)
def test_a_verdict_draft_off_the_record_is_rejected(changes: dict, problem: str) -> None:
    snap, rules = verdict_snapshot()
    with pytest.raises(VerdictRejected, match=re.escape(problem)):
        accept_draft(verdict_reply(**changes), snap, rules, "model-x")


def test_a_reply_missing_a_section_is_rejected() -> None:
    snap, rules = verdict_snapshot()
    with pytest.raises(VerdictRejected, match="not the verdict schema: dissent"):
        accept_draft(
            json.dumps({k: v for k, v in json.loads(verdict_reply()).items() if k != "dissent"}), snap, rules, "m"
        )
