"""The domain model: typed records for everything a dialogue partition holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

DIALOGUE_STATUSES = ("open", "converging", "paused", "converged", "abandoned", "budget_exceeded", "failed")
TIERS = ("Core", "Adjacent", "Wildcard")
EXPERT_SOURCES = ("pool", "created", "retained")
VERDICT_TYPES = ("interim", "final", "minority", "dissent")
CONFIDENCES = ("unanimous", "strong", "split", "contested")
MOVE_TYPES = ("defend", "challenge", "bridge", "request", "concede", "converge")

#: Statuses of each entity kind, the initial one first.
STATUSES: dict[str, tuple[str, ...]] = {
    "perspective": ("open", "refined", "conceded", "merged"),
    "tension": ("open", "addressed", "resolved", "reopened"),
    "recommendation": ("proposed", "amended", "adopted", "rejected"),
    "evidence": ("cited", "challenged", "confirmed", "refuted"),
    "claim": ("asserted", "supported", "opposed", "adopted", "withdrawn"),
}

#: Tension statuses that still count as open for velocity and the open-tension index.
UNRESOLVED_TENSION = ("open", "addressed", "reopened")


@dataclass
class Dialogue:
    """A dialogue's meta item."""

    id: str
    tenant: str
    title: str
    question: str
    status: str = "open"
    created_at: str = ""
    updated_at: str = ""
    converged_at: str | None = None
    total_rounds: int = 0
    total_alignment: int = 0
    epoch: int = 1
    dek_version: int = 1
    origin: str = "live"
    output_dir: str | None = None
    background: dict[str, Any] | None = None
    pool: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Expert:
    """An expert who joined the dialogue, keyed by its pastry slug."""

    slug: str
    role: str
    tier: str = "Adjacent"
    source: str = "pool"
    relevance: float = 0.0
    first_round: int = 0
    description: str | None = None
    focus: str | None = None
    created_at: str = ""


@dataclass(frozen=True)
class Score:
    """One expert's W/C/T/R in one round."""

    w: int = 0
    c: int = 0
    t: int = 0
    r: int = 0

    @property
    def total(self) -> int:
        """W + C + T + R."""
        return self.w + self.c + self.t + self.r

    def __add__(self, other: Score) -> Score:
        return Score(self.w + other.w, self.c + other.c, self.t + other.t, self.r + other.r)

    def to_list(self) -> list[int]:
        """[w, c, t, r]."""
        return [self.w, self.c, self.t, self.r]


def sum_scores(scores: Any) -> Score:
    """Component-wise sum of an iterable of Score."""
    total = Score()
    for score in scores:
        total = total + score
    return total


@dataclass(frozen=True)
class PanelSeat:
    """One named expert seated on a round's panel: the orchestrator's panel member and the stored seat."""

    name: str
    role: str
    tier: str = "Adjacent"
    source: str = "pool"
    relevance: float = 0.0
    focus: str | None = None

    @property
    def slug(self) -> str:
        """The expert's store slug and the stem of its prompt and answer files: the name in lowercase."""
        return self.name.lower()


@dataclass
class Round:
    """A registered round with the metrics its judge stored."""

    number: int
    status: str = "completed"
    created_at: str = ""
    open_tensions: int = 0
    new_perspectives: int = 0
    answered: int = 0
    signals: int = 0
    panel_size: int = 0
    scores: dict[str, Score] = field(default_factory=dict)
    title: str = ""
    summary: str = ""
    panel: list[PanelSeat] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    recorded: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    seated: list[str] = field(default_factory=list)

    @property
    def totals(self) -> Score:
        """W/C/T/R summed over the experts of this round."""
        return sum_scores(self.scores.values())

    @property
    def velocity(self) -> int:
        """Open tensions plus new perspectives."""
        return self.open_tensions + self.new_perspectives

    @property
    def converge_percent(self) -> float:
        """Share of seated experts who signalled converge, in percent (an absent expert has not signalled)."""
        return 100.0 * self.signals / len(self.seated) if self.seated else 0.0


@dataclass
class Signal:
    """A `[MOVE:CONVERGE]` from one expert in one round."""

    round: int
    expert: str
    signaled_at: str = ""


@dataclass
class Entity:
    """A contribution (P, R, T, E or C) with a global display id."""

    KIND: ClassVar[str] = ""

    id: str
    round: int
    seq: int
    label: str
    content: str
    status: str = ""
    contributors: list[str] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    local_id: str | None = None
    aliases: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parameters: dict[str, Any] | None = None
    adopted_in_verdict: str | None = None

    @property
    def kind(self) -> str:
        """Entity kind name, e.g. 'tension'."""
        return self.KIND


class Perspective(Entity):
    KIND = "perspective"


class Tension(Entity):
    KIND = "tension"


class Recommendation(Entity):
    KIND = "recommendation"


class Evidence(Entity):
    KIND = "evidence"


class Claim(Entity):
    KIND = "claim"


ENTITY_CLASSES: dict[str, type[Entity]] = {
    cls.KIND: cls for cls in (Perspective, Tension, Recommendation, Evidence, Claim)
}


@dataclass
class Ref:
    """A typed edge between two entities."""

    source: str
    ref_type: str
    target: str
    created_at: str = ""


@dataclass
class Event:
    """One lifecycle event of an entity."""

    entity_type: str
    entity_id: str
    event_type: str
    round: int
    created_at: str = ""
    actors: list[str] = field(default_factory=list)
    reason: str | None = None
    reference: str | None = None
    result_id: str | None = None
    seq: int = 0


_S = TypeVar("_S", "VerdictReason", "VerdictTension", "VerdictDissent")


@dataclass(frozen=True)
class VerdictReason:
    """One reason for a verdict's recommendation, citing the entity ids that support it."""

    text: str
    cites: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VerdictTension:
    """How one tension ended: resolved (how, by which ids, in which round) or why it stays open."""

    id: str
    status: str
    how: str
    cites: list[str] = field(default_factory=list)
    round: int | None = None


@dataclass(frozen=True)
class VerdictDissent:
    """One expert who does not stand behind the verdict, and why."""

    expert: str
    why: str
    cites: list[str] = field(default_factory=list)


def _section(cls: type[_S], value: Any) -> _S:
    """A verdict section item: kept when it is one, else built from its plain data."""
    return value if isinstance(value, cls) else cls(**value)


@dataclass
class Verdict:
    """A verdict: insert-only, never edited; its sections answer the dialogue's question."""

    id: str
    verdict_type: str
    round: int
    recommendation: str
    confidence: str = "strong"
    description: str = ""
    author_expert: str | None = None
    conditions: list[str] = field(default_factory=list)
    vote: str | None = None
    supporting_experts: list[str] = field(default_factory=list)
    tensions_accepted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    forced: bool = False
    warning: str | None = None
    created_at: str = ""
    question: str = ""
    reasons: list[VerdictReason] = field(default_factory=list)
    tensions: list[VerdictTension] = field(default_factory=list)
    dissent: list[VerdictDissent] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Accept sections given as plain data (a verdict read back from dialogue.json)."""
        self.reasons = [_section(VerdictReason, r) for r in self.reasons]
        self.tensions = [_section(VerdictTension, t) for t in self.tensions]
        self.dissent = [_section(VerdictDissent, d) for d in self.dissent]

    def cited_ids(self) -> list[str]:
        """Every entity id the verdict's sections cite, once each, in order."""
        ids = [i for r in self.reasons for i in r.cites] + [t.id for t in self.tensions]
        ids += [i for t in self.tensions for i in t.cites] + [i for d in self.dissent for i in d.cites]
        return list(dict.fromkeys(ids))


@dataclass
class Move:
    """A dialogue move (defend, challenge, …, converge) by one expert in one round."""

    round: int
    expert: str
    seq: int
    move_type: str
    targets: list[str] = field(default_factory=list)
    context: str = ""


@dataclass
class TextRecord:
    """A write-once prompt or answer: the exact text sent to or received from an expert."""

    kind: str
    round: int
    expert: str
    text: str
    repair: bool = False
    sha256: str = ""
    path: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    created_at: str = ""


@dataclass
class ModeratorNote:
    """A moderator's note to the panel: carried by the prompts of round `round` and every later round."""

    round: int
    seq: int
    text: str
    author: str = ""
    created_at: str = ""


@dataclass
class RecordedFile:
    """A write-once copy of one file of an imported recording, kept so export reproduces it byte for byte.

    `content` is the file's text (`encoding` "utf-8"), or its bytes in base64 (`encoding` "base64").
    """

    path: str
    content: str
    encoding: str = "utf-8"
    sha256: str = ""
    created_at: str = ""


@dataclass
class AuditEntry:
    """One link of a dialogue's audit hash chain."""

    seq: int
    ts: str
    principal: str
    operation: str
    keys: list[str]
    key_id: str | None
    envelopes_sha256: str
    files: dict[str, str]
    previous: str
    hash: str = ""


# --- inputs of register_round -------------------------------------------------------------


@dataclass
class RefDraft:
    """A reference to register; `source` may be omitted when it hangs off an entity draft."""

    ref_type: str
    target: str
    source: str | None = None


@dataclass
class EntityDraft:
    """A new entity in a round batch, named by a batch-unique local id like `MUFFIN-P0101`."""

    kind: str
    local_id: str
    label: str
    content: str
    contributors: list[str] = field(default_factory=list)
    references: list[RefDraft] = field(default_factory=list)
    parameters: dict[str, Any] | None = None
    status: str | None = None
    aliases: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class StatusChange:
    """A status change of an existing (or same-batch) entity."""

    id: str
    status: str
    actors: list[str] = field(default_factory=list)
    reference: str | None = None
    reason: str | None = None
    result_id: str | None = None


@dataclass
class RoundBatch:
    """Everything one round registers, atomically."""

    round: int
    entities: list[EntityDraft] = field(default_factory=list)
    refs: list[RefDraft] = field(default_factory=list)
    status_changes: list[StatusChange] = field(default_factory=list)
    experts: list[Expert] = field(default_factory=list)
    panel: list[PanelSeat] = field(default_factory=list)
    scores: dict[str, Score] = field(default_factory=dict)
    signals: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    open_tensions: int | None = None
    new_perspectives: int | None = None
    title: str = ""
    summary: str = ""
    recorded: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
