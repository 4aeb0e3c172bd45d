"""The `llm` judge: a model assesses each answering expert's W/C/T/R; Concord validates and sums.

The model only assesses. Its reply must be one JSON object matching ASSESSMENT_SCHEMA, naming
every answering expert exactly once with four whole numbers from 0 to 10; anything else is
rejected and the round keeps the rules judge's scores (the run records why). Totals, velocity,
converge % and tension statuses always come from the rules judge and the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from concord.orchestrator.engine.prompts import RenderedPrompt, render_judge_prompt
from concord.store.errors import ConcordError
from concord.store.model import PanelSeat, Score

#: The expert slug under which judge calls are sent and their prompt/answer records are stored.
JUDGE = "judge"
SCALE = range(0, 11)
ASSESSMENT_SCHEMA = {
    "type": "object",
    "required": ["experts", "summary"],
    "properties": {
        "experts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "W", "C", "T", "R"],
                "properties": {
                    "name": {"type": "string"},
                    **{part: {"type": "integer", "minimum": 0, "maximum": 10} for part in "WCTR"},
                    "note": {"type": "string"},
                },
            },
        },
        "summary": {"type": "string"},
    },
}
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class AssessmentError(ConcordError):
    """The model's reply is not a valid assessment."""


@dataclass(frozen=True)
class Assessment:
    """Validated per-expert scores and the model's round summary."""

    scores: dict[str, Score]
    summary: str


def parse_assessment(text: str, answered: Sequence[str]) -> Assessment:
    """Validate a reply against ASSESSMENT_SCHEMA and the round's answering experts (slugs)."""
    fenced = _FENCE.match(text)
    try:
        data = json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError as exc:
        raise AssessmentError(f"the reply is not JSON ({exc.msg})") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("experts"), list)
        or not isinstance(data.get("summary"), str)
    ):
        raise AssessmentError("the reply must be an object with an 'experts' list and a 'summary' string")
    wanted = {slug.casefold() for slug in answered}
    scores: dict[str, Score] = {}
    for n, entry in enumerate(data["experts"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise AssessmentError(f"experts[{n}] needs a 'name'")
        slug = entry["name"].split("(")[0].strip().casefold()
        if slug not in wanted:
            raise AssessmentError(f"experts[{n}] names {entry['name']!r}, who did not answer this round")
        if slug in scores:
            raise AssessmentError(f"experts[{n}] scores {entry['name']!r} a second time")
        parts = [p for p in (entry.get(part) for part in "WCTR") if isinstance(p, int) and not isinstance(p, bool)]
        if len(parts) != 4 or not all(p in SCALE for p in parts):
            raise AssessmentError(f"experts[{n}] needs whole numbers 0-10 for W, C, T and R")
        scores[slug] = Score(*parts)
    if set(scores) != wanted:
        raise AssessmentError(f"no score for {', '.join(sorted(wanted - set(scores)))}")
    return Assessment(scores, data["summary"].strip())


def judge_prompt(
    question: str, round: int, answers: Mapping[str, str], tensions_table: str, panel: Sequence[PanelSeat]
) -> RenderedPrompt:
    """The prompt asking the model to assess one round (answers keyed by slug)."""
    named = {next((m.name for m in panel if m.slug == slug), slug.capitalize()): text for slug, text in answers.items()}
    return render_judge_prompt(question, round, named, tensions_table=tensions_table, panel=panel)
