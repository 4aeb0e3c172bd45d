"""A dialogue and what hangs off it: rounds, panels, experts, verdicts and the scoreboard."""

from __future__ import annotations

import strawberry

from concord.schema.entities import Claim, Event, Evidence, Perspective, Recommendation, Tension
from concord.schema.enums import Confidence, DialogueStatus, VerdictType
from concord.schema.reader import MaybeAwaitable, reader


@strawberry.type(description="Wisdom, consistency, truth and relationships points.")
class Score:
    w: int
    c: int
    t: int
    r: int
    total: int


@strawberry.type(description="One expert's score in one round.")
class ExpertScore:
    expert: str
    score: Score


@strawberry.type(description="One expert's seat on a round's panel.")
class PanelSeat:
    name: str
    role: str
    tier: str
    source: str
    relevance: float
    focus: str | None


@strawberry.type(description="A registered round with the metrics its judge stored.")
class Round:
    number: int
    status: str
    created_at: str
    title: str
    summary: str
    open_tensions: int
    new_perspectives: int
    answered: int
    signals: int
    panel_size: int
    velocity: int = strawberry.field(description="Open tensions plus new perspectives.")
    converge_percent: float = strawberry.field(
        description="Share of the seated panel who signalled converge (absent experts have not)."
    )
    totals: Score
    scores: list[ExpertScore]
    panel: list[PanelSeat]
    absent: list[str]
    seated: list[str] = strawberry.field(
        description="Slugs of the experts seated this round, answered or absent: the gate's denominator."
    )


@strawberry.type(description="An expert who joined the dialogue, keyed by its pastry slug.")
class Expert:
    slug: str
    role: str
    tier: str
    source: str
    relevance: float
    first_round: int
    description: str | None
    focus: str | None


@strawberry.type(description="What a verdict rests on, derived when read.")
class VerdictContext:
    adopted: list[Recommendation]
    resolved_tensions: list[Tension]
    key_evidence: list[Evidence]
    key_claims: list[Claim]


@strawberry.type(description="One reason for a verdict's recommendation.")
class VerdictReason:
    text: str
    cites: list[str] = strawberry.field(description="Ids of the dialogue's entities that support this reason.")


@strawberry.type(description="How one tension ended by the verdict: resolved, or why it stays open.")
class VerdictTension:
    id: str = strawberry.field(description="The tension's display id, e.g. T0102.")
    status: str = strawberry.field(description="The tension's status when the verdict was drawn.")
    how: str = strawberry.field(description="How it was resolved, or why it stays open.")
    cites: list[str] = strawberry.field(description="Ids of the entities that resolved or addressed it.")
    round: int | None = strawberry.field(description="The round it was resolved in; null while open.")


@strawberry.type(description="An expert who does not stand behind the verdict, and why.")
class VerdictDissent:
    expert: str
    why: str
    cites: list[str] = strawberry.field(description="Ids of the entities the dissent rests on.")


@strawberry.type(description="A verdict; verdicts are never edited.")
class Verdict:
    id: strawberry.ID
    dialogue_id: strawberry.ID
    verdict_type: VerdictType
    round: int
    recommendation: str
    confidence: Confidence
    description: str
    author_expert: str | None
    conditions: list[str]
    vote: str | None
    supporting_experts: list[str]
    tensions_accepted: list[str]
    adopted: list[str]
    forced: bool
    warning: str | None
    created_at: str
    question: str = strawberry.field(
        description="The question the verdict answers (empty on verdicts drawn before it was kept)."
    )
    reasons: list[VerdictReason] = strawberry.field(
        description="Why the panel recommends what it does, each citing its support."
    )
    tensions: list[VerdictTension] = strawberry.field(description="Every tension of the dialogue and how it ended.")
    dissent: list[VerdictDissent] = strawberry.field(
        description="Experts who dissented, opposed what is recommended, or did not signal convergence."
    )
    risks: list[str] = strawberry.field(description="What could still go wrong: open tensions, dissent, conditions.")
    notes: list[str] = strawberry.field(description="How the verdict was drawn (rules or llm judge, and any fallback).")

    @strawberry.field(description="Adopted recommendations, resolved tensions and the evidence and claims behind them.")
    def context(self, info: strawberry.Info) -> MaybeAwaitable[VerdictContext]:
        return reader(info).verdict_context(self.dialogue_id, self.id)


@strawberry.type(description="One round's line on the scoreboard.")
class ScoreboardRound:
    round: int
    totals: Score
    velocity: int
    converge_percent: float


@strawberry.type(description="Scores per round and expert, and whether the convergence gate is open.")
class Scoreboard:
    dialogue_id: strawberry.ID
    rounds: list[ScoreboardRound]
    experts: list[ExpertScore] = strawberry.field(description="Each expert's score summed over all rounds.")
    total: int
    converged: bool = strawberry.field(description="Velocity 0 and every seated expert signalled converge.")
    blockers: list[str]


@strawberry.type(description="One alignment dialogue.")
class Dialogue:
    id: strawberry.ID
    title: str
    question: str
    status: DialogueStatus
    created_at: str
    updated_at: str
    converged_at: str | None
    total_rounds: int
    total_alignment: int
    origin: str

    @strawberry.field(description="Registered rounds in order, each with its panel and stored metrics.")
    def rounds(self, info: strawberry.Info) -> MaybeAwaitable[list[Round]]:
        return reader(info).rounds(self.id)

    @strawberry.field(description="Experts who joined the dialogue.")
    def experts(self, info: strawberry.Info) -> MaybeAwaitable[list[Expert]]:
        return reader(info).experts(self.id)

    @strawberry.field
    def perspectives(self, info: strawberry.Info, round: int | None = None) -> MaybeAwaitable[list[Perspective]]:
        return reader(info).entities(self.id, Perspective, round)

    @strawberry.field
    def tensions(self, info: strawberry.Info, round: int | None = None) -> MaybeAwaitable[list[Tension]]:
        return reader(info).entities(self.id, Tension, round)

    @strawberry.field
    def recommendations(self, info: strawberry.Info, round: int | None = None) -> MaybeAwaitable[list[Recommendation]]:
        return reader(info).entities(self.id, Recommendation, round)

    @strawberry.field
    def evidence(self, info: strawberry.Info, round: int | None = None) -> MaybeAwaitable[list[Evidence]]:
        return reader(info).entities(self.id, Evidence, round)

    @strawberry.field
    def claims(self, info: strawberry.Info, round: int | None = None) -> MaybeAwaitable[list[Claim]]:
        return reader(info).entities(self.id, Claim, round)

    @strawberry.field(description="Verdicts by round.")
    def verdicts(self, info: strawberry.Info) -> MaybeAwaitable[list[Verdict]]:
        return reader(info).verdicts(self.id)

    @strawberry.field
    def scoreboard(self, info: strawberry.Info) -> MaybeAwaitable[Scoreboard]:
        return reader(info).scoreboard(self.id)

    @strawberry.field(description="Every lifecycle event of every entity.")
    def events(self, info: strawberry.Info) -> MaybeAwaitable[list[Event]]:
        return reader(info).events(self.id)
