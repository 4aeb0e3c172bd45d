"""Validation of the llm judge's assessment: anything off-schema is rejected, never half-used."""

from __future__ import annotations

import json

import pytest

from concord.orchestrator.judging.llm_judge import AssessmentError, parse_assessment
from concord.store.model import Score


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
