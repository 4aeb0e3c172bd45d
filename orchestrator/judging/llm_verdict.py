"""The `llm` judge's final verdict: the model writes the sections as structured output, Concord checks them.

`VerdictDraft` is the schema: the provider sends it as the request's structured-output format
(Messages `output_config.format`, a JSON schema the SDK derives from the pydantic model), and
`accept_draft` validates the reply against it again, then checks it against the record: all
sections present, at least one reason, every cited id an entity of the dialogue, every tension
listed exactly once (by a tension id), every dissenter an expert of the dialogue. Anything else is
rejected and the run keeps the rules verdict, saying why in its notes. Statuses, rounds, the vote
and the gate's outcome always come from the code, never from the model.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, Field, ValidationError

from concord.store.errors import ConcordError
from concord.store.model import Verdict, VerdictDissent, VerdictReason, VerdictTension
from concord.store.snapshot import Snapshot

#: The slug the verdict call is made under: its files are round-N/verdict.prompt.md and round-N/verdict.md.
VERDICT_WRITER = "verdict"


class DraftReason(BaseModel):
    """One reason for the recommendation."""

    text: str = Field(description="The reason, in a sentence or two.")
    cites: list[str] = Field(description="Ids of the entities that support it, e.g. P0103, R0201, E0102.")


class DraftTension(BaseModel):
    """How one tension ended."""

    id: str = Field(description="The tension's id, e.g. T0102.")
    how: str = Field(
        description="How it was resolved (by whom, through which ids, in which round), or why it stays open."
    )
    cites: list[str] = Field(description="Ids of the entities that resolved or addressed it.")


class DraftDissent(BaseModel):
    """One expert who does not stand behind the verdict."""

    expert: str = Field(description="The expert's name, e.g. Muffin.")
    why: str = Field(description="Why: their dissent, what they opposed, or that they did not signal convergence.")
    cites: list[str] = Field(description="Ids of the entities the dissent rests on.")


class VerdictDraft(BaseModel):
    """The sections of a final verdict, as the llm judge writes them."""

    recommendation: str = Field(
        description="A few sentences answering the question, drawn from the panel's own entities."
    )
    reasons: list[DraftReason] = Field(description="Why the panel recommends it, each reason citing its support.")
    tensions: list[DraftTension] = Field(description="Every tension of the dialogue, exactly once.")
    dissent: list[DraftDissent] = Field(description="Experts who dissent, and why; empty when none.")
    risks: list[str] = Field(description="What could still go wrong; empty when none is recorded.")


class VerdictRejected(ConcordError):
    """The model's verdict is not valid structured output, or cites what the dialogue does not hold."""


def accept_draft(text: str, snap: Snapshot, rules: Verdict, model: str) -> Verdict:
    """The rules verdict with the model's sections, once the reply passes every check; else VerdictRejected."""
    try:
        draft = VerdictDraft.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the reply"
        raise VerdictRejected(f"not the verdict schema: {where}: {first['msg']}") from None
    if not draft.recommendation.strip():
        raise VerdictRejected("the recommendation is empty")
    if not draft.reasons or any(not r.cites for r in draft.reasons):
        raise VerdictRejected("every verdict needs reasons, each citing at least one id")
    cited = [i for r in draft.reasons for i in r.cites] + [i for t in draft.tensions for i in [t.id, *t.cites]]
    cited += [i for d in draft.dissent for i in d.cites]
    unknown = sorted({i for i in cited if i not in snap.entities})
    if unknown:
        raise VerdictRejected(f"cites ids the dialogue does not hold: {', '.join(unknown)}")
    listed = [t.id for t in draft.tensions]
    tensions = sorted(t.id for t in snap.of_kind("tension"))
    if sorted(listed) != tensions:
        raise VerdictRejected(f"the tensions section must list each of {', '.join(tensions) or 'no tension'} once")
    experts = {slug.casefold() for slug in snap.experts}
    strangers = sorted({d.expert for d in draft.dissent if d.expert.casefold() not in experts})
    if strangers:
        raise VerdictRejected(f"dissent names who is not on the dialogue's panel: {', '.join(strangers)}")
    ended = {t.id: t for t in rules.tensions}
    reasons = [VerdictReason(r.text.strip(), list(dict.fromkeys(r.cites))) for r in draft.reasons]
    return replace(
        rules,
        recommendation=draft.recommendation.strip(),
        confidence=rules.confidence
        if rules.confidence == "contested"
        else ("strong" if draft.dissent else "unanimous"),
        adopted=[i for r in reasons for i in r.cites if snap.entities[i].kind == "recommendation"],
        reasons=reasons,
        tensions=[
            VerdictTension(
                t.id,
                snap.entities[t.id].status,
                t.how.strip(),
                list(t.cites),
                ended[t.id].round if t.id in ended else None,
            )
            for t in sorted(draft.tensions, key=lambda t: t.id)
        ],
        dissent=[VerdictDissent(d.expert.casefold(), d.why.strip(), list(d.cites)) for d in draft.dissent],
        risks=[risk.strip() for risk in draft.risks if risk.strip()],
        notes=[
            f"Written by the llm judge ({model}) as structured output; every cited id was checked against the dialogue."
        ],
    )
