"""Store records to schema objects: plain field mapping, nothing loaded."""

from __future__ import annotations

from typing import TypedDict, TypeVar

import strawberry
from strawberry.scalars import JSON

from concord.resolvers.ports import ProgressUpdate
from concord.schema import dialogue as gql
from concord.schema import entities as gqe
from concord.schema import results as gqr
from concord.schema.enums import Confidence, DialogueStatus, EntityKind, RefType, VerdictType
from concord.store import model
from concord.store.audit import AuditReport
from concord.store.errors import IntegrityError
from concord.store.graph import Link
from concord.store.model import Score, sum_scores
from concord.store.rules import gate

ENTITY_TYPES: dict[str, type[gqe.Entity]] = {
    "perspective": gqe.Perspective,
    "tension": gqe.Tension,
    "recommendation": gqe.Recommendation,
    "evidence": gqe.Evidence,
    "claim": gqe.Claim,
}


def dialogue(d: model.Dialogue) -> gql.Dialogue:
    """A dialogue's meta."""
    return gql.Dialogue(
        id=strawberry.ID(d.id),
        title=d.title,
        question=d.question,
        status=DialogueStatus(d.status),
        created_at=d.created_at,
        updated_at=d.updated_at,
        converged_at=d.converged_at,
        total_rounds=d.total_rounds,
        total_alignment=d.total_alignment,
        origin=d.origin,
    )


ENTITY_KINDS: dict[type[gqe.Entity], str] = {kind_type: kind for kind, kind_type in ENTITY_TYPES.items()}
E = TypeVar("E", bound=gqe.Entity)


class EntityFields(TypedDict):
    """The fields every entity type has."""

    id: strawberry.ID
    dialogue_id: strawberry.ID
    kind: EntityKind
    round: int
    label: str
    content: str
    status: str
    contributors: list[str]
    created_at: str
    updated_at: str


def entity(dialogue_id: str, e: model.Entity) -> gqe.Entity:
    """An entity as the schema type of its kind."""
    fields = EntityFields(
        id=strawberry.ID(e.id),
        dialogue_id=strawberry.ID(dialogue_id),
        kind=EntityKind(e.kind),
        round=e.round,
        label=e.label,
        content=e.content,
        status=e.status,
        contributors=e.contributors,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )
    if e.kind == "recommendation":
        return gqe.Recommendation(**fields, adopted_in_verdict=e.adopted_in_verdict)
    return ENTITY_TYPES[e.kind](**fields)


def entity_as(kind_type: type[E], dialogue_id: str, e: model.Entity) -> E:
    """An entity that has to be of `kind_type`; a stored one of another kind is an integrity failure."""
    made = entity(dialogue_id, e)
    if not isinstance(made, kind_type):
        raise IntegrityError(f"entity {e.id} of dialogue {dialogue_id} is a {e.kind}, not a {ENTITY_KINDS[kind_type]}")
    return made


def ref(dialogue_id: str, r: model.Ref) -> gqe.Ref:
    """A ref."""
    return gqe.Ref(
        dialogue_id=strawberry.ID(dialogue_id),
        source_id=strawberry.ID(r.source),
        ref_type=RefType(r.ref_type),
        target_id=strawberry.ID(r.target),
        created_at=r.created_at,
    )


def link(dialogue_id: str, found: Link, target: model.Entity) -> gqe.Link:
    """A link to a reached entity."""
    return gqe.Link(
        reached=lambda: entity(dialogue_id, target),
        depth=found.depth,
        route=lambda: [strawberry.ID(step) for step in found.path],
    )


def event(e: model.Event) -> gqe.Event:
    """A lifecycle event."""
    return gqe.Event(
        entity_id=strawberry.ID(e.entity_id),
        entity_kind=EntityKind(e.entity_type),
        event_type=e.event_type,
        round=e.round,
        created_at=e.created_at,
        actors=e.actors,
        reason=e.reason,
        reference=e.reference,
        result_id=e.result_id,
    )


def score(s: Score) -> gql.Score:
    """W/C/T/R and their total."""
    return gql.Score(w=s.w, c=s.c, t=s.t, r=s.r, total=s.total)


def expert_scores(scores: dict[str, Score]) -> list[gql.ExpertScore]:
    """Scores by expert, in expert order."""
    return [gql.ExpertScore(expert=name, score=score(s)) for name, s in sorted(scores.items())]


def round_(r: model.Round) -> gql.Round:
    """A round with its panel and stored metrics."""
    return gql.Round(
        number=r.number,
        status=r.status,
        created_at=r.created_at,
        title=r.title,
        summary=r.summary,
        open_tensions=r.open_tensions,
        new_perspectives=r.new_perspectives,
        answered=r.answered,
        signals=r.signals,
        panel_size=r.panel_size,
        velocity=r.velocity,
        converge_percent=r.converge_percent,
        totals=score(r.totals),
        scores=expert_scores(r.scores),
        absent=r.absent,
        seated=r.seated,
        panel=[
            gql.PanelSeat(name=s.name, role=s.role, tier=s.tier, source=s.source, relevance=s.relevance, focus=s.focus)
            for s in r.panel
        ],
    )


def expert(e: model.Expert) -> gql.Expert:
    """An expert."""
    return gql.Expert(
        slug=e.slug,
        role=e.role,
        tier=e.tier,
        source=e.source,
        relevance=e.relevance,
        first_round=e.first_round,
        description=e.description,
        focus=e.focus,
    )


def verdict(dialogue_id: str, v: model.Verdict) -> gql.Verdict:
    """A verdict."""
    return gql.Verdict(
        id=strawberry.ID(v.id),
        dialogue_id=strawberry.ID(dialogue_id),
        verdict_type=VerdictType(v.verdict_type),
        round=v.round,
        recommendation=v.recommendation,
        confidence=Confidence(v.confidence),
        description=v.description,
        author_expert=v.author_expert,
        conditions=v.conditions,
        vote=v.vote,
        supporting_experts=v.supporting_experts,
        tensions_accepted=v.tensions_accepted,
        adopted=v.adopted,
        forced=v.forced,
        warning=v.warning,
        created_at=v.created_at,
        question=v.question,
        reasons=[gql.VerdictReason(text=r.text, cites=list(r.cites)) for r in v.reasons],
        tensions=[
            gql.VerdictTension(id=t.id, status=t.status, how=t.how, cites=list(t.cites), round=t.round)
            for t in v.tensions
        ],
        dissent=[gql.VerdictDissent(expert=d.expert, why=d.why, cites=list(d.cites)) for d in v.dissent],
        risks=list(v.risks),
        notes=list(v.notes),
    )


def scoreboard(dialogue_id: str, rounds: list[model.Round]) -> gql.Scoreboard:
    """Per-round totals, per-expert sums and the convergence gate over the last round."""
    by_expert: dict[str, list[Score]] = {}
    for r in rounds:
        for name, s in r.scores.items():
            by_expert.setdefault(name, []).append(s)
    converged, blockers, _ = gate(rounds[-1]) if rounds else (False, ["no rounds registered"], {})
    return gql.Scoreboard(
        dialogue_id=strawberry.ID(dialogue_id),
        rounds=[
            gql.ScoreboardRound(
                round=r.number, totals=score(r.totals), velocity=r.velocity, converge_percent=r.converge_percent
            )
            for r in rounds
        ],
        experts=expert_scores({name: sum_scores(scores) for name, scores in by_expert.items()}),
        total=sum(r.totals.total for r in rounds),
        converged=converged,
        blockers=blockers,
    )


def audit_report(report: AuditReport) -> gqr.AuditReport:
    """An audit chain check."""
    return gqr.AuditReport(
        dialogue_id=strawberry.ID(report.dialogue_id),
        ok=report.ok,
        entries=report.entries,
        head=report.head,
        first_broken=report.first_broken,
        problem=report.problem,
    )


def progress(e: ProgressUpdate) -> gqr.ProgressEvent:
    """A progress event of a run."""
    return gqr.ProgressEvent(
        dialogue_id=strawberry.ID(e.dialogue_id),
        kind=e.kind,
        round=e.round,
        expert=e.expert,
        data=JSON(dict(e.data)),
        at=e.at,
    )
