"""GraphQL enums; each value is the string the store keeps."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Where a dialogue stands.")
class DialogueStatus(Enum):
    OPEN = "open"
    CONVERGING = "converging"
    PAUSED = "paused"
    CONVERGED = "converged"
    ABANDONED = "abandoned"
    BUDGET_EXCEEDED = "budget_exceeded"
    FAILED = "failed"


@strawberry.enum(description="The five kinds of contribution a dialogue records.")
class EntityKind(Enum):
    PERSPECTIVE = "perspective"
    TENSION = "tension"
    RECOMMENDATION = "recommendation"
    EVIDENCE = "evidence"
    CLAIM = "claim"


@strawberry.enum(description="How one entity refers to another.")
class RefType(Enum):
    SUPPORT = "support"
    OPPOSE = "oppose"
    REFINE = "refine"
    ADDRESS = "address"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    QUESTION = "question"
    DEPEND = "depend"


@strawberry.enum(description="Which way links follow refs: out of an entity, into it, or both.")
class Direction(Enum):
    OUT = "out"
    IN = "in"
    BOTH = "both"


@strawberry.enum(description="The lifecycle of a tension.")
class TensionStatus(Enum):
    OPEN = "open"
    ADDRESSED = "addressed"
    RESOLVED = "resolved"
    REOPENED = "reopened"


@strawberry.enum(description="What a verdict is.")
class VerdictType(Enum):
    INTERIM = "interim"
    FINAL = "final"
    MINORITY = "minority"
    DISSENT = "dissent"


@strawberry.enum(description="How strongly the panel stands behind a verdict.")
class Confidence(Enum):
    UNANIMOUS = "unanimous"
    STRONG = "strong"
    SPLIT = "split"
    CONTESTED = "contested"
