"""Mutation inputs."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from concord.schema.enums import Confidence, VerdictType


@strawberry.input(description="A question for a new panel, run in the background.")
class StartDialogueInput:
    title: str
    question: str
    pool: JSON = strawberry.field(description="The expert pool document, as `concord run --pool` reads it.")
    background: JSON | None = None
    max_rounds: int | None = strawberry.field(default=None, description="Round cap; the server default when omitted.")
    seed: int | None = strawberry.field(default=None, description="Seed of the panel sampler.")


@strawberry.input(description="A verdict to register; a final one must pass the convergence gate unless forced.")
class VerdictInput:
    id: str
    verdict_type: VerdictType
    round: int
    recommendation: str
    confidence: Confidence = Confidence.STRONG
    description: str = ""
    author_expert: str | None = None
    conditions: list[str] = strawberry.field(default_factory=list)
    vote: str | None = None
    supporting_experts: list[str] = strawberry.field(default_factory=list)
    tensions_accepted: list[str] = strawberry.field(default_factory=list)
    adopted: list[str] = strawberry.field(default_factory=list, description="Recommendation ids the verdict adopts.")
