"""Concord's one error hierarchy, rooted at ConcordError; every backend maps its failures onto the store's.

    ConcordError            anything Concord raises on purpose (the CLI exits 1; anything else is a bug)
    ├── BadInput            input the caller gave is wrong: arguments, pool, panel, files (the CLI exits 2)
    │   └── InvalidArgument a malformed id, kind or direction handed to the store
    └── StoreError          the store refused or failed an operation
        ├── NotFound, AlreadyExists, ConvergenceBlocked, ItemTooLarge
        ├── ConflictError
        │   └── ConditionFailed    a backend's signal that one operation's condition did not hold
        ├── BackendUnavailable, SchemaVersionError, IntegrityError, KeyMaterialError
        └── ValidationFailed   carries every Problem found; nothing was written

The root lives here because `store` imports nothing else of Concord's, so every other package can derive from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "BadInput",
    "ConcordError",
    "ConditionFailed",
    "ConflictError",
    "ConvergenceBlocked",
    "IntegrityError",
    "InvalidArgument",
    "ItemTooLarge",
    "KeyMaterialError",
    "NotFound",
    "Problem",
    "SchemaVersionError",
    "StoreError",
    "ValidationFailed",
]


class ConcordError(Exception):
    """Root of every error Concord raises on purpose."""

    code = "concord_error"


class BadInput(ConcordError):
    """What the caller gave (arguments, an expert pool, a panel, a file) is invalid; nothing was changed."""

    code = "bad_input"


class InvalidArgument(BadInput, ValueError):
    """A value handed to the store (an id, a kind, a direction) is malformed; also a ValueError, as Python's are."""

    code = "invalid_argument"


class StoreError(ConcordError):
    """Base class of every error the store raises on purpose."""

    code = "store_error"


class NotFound(StoreError):
    """The dialogue or entity does not exist (or belongs to another tenant)."""

    code = "not_found"


class AlreadyExists(StoreError):
    """An insert-only item (verdict, prompt, answer, dialogue id) is already stored."""

    code = "already_exists"


class ConflictError(StoreError):
    """A conditional write lost against a concurrent writer; reload and retry."""

    code = "conflict"


class ConditionFailed(ConflictError):
    """A backend cancelled a transaction because the condition of operation `index` (on item `key`) did not hold.

    The domain store turns it into what it means there (a retry against fresh state, or AlreadyExists);
    only a caller of a Backend itself sees it.
    """

    code = "condition_failed"

    def __init__(self, index: int, key: tuple[str, str]) -> None:
        super().__init__(f"condition failed on operation {index} ({key[0]} / {key[1]})")
        self.index = index
        self.key = key


class ConvergenceBlocked(StoreError):
    """A final verdict was refused because the last round has not converged."""

    code = "convergence_blocked"

    def __init__(self, blockers: list[str], state: dict[str, Any]) -> None:
        super().__init__("convergence blocked: " + "; ".join(blockers))
        self.blockers = blockers
        self.state = state


class ItemTooLarge(StoreError):
    """An item would exceed the backend's per-item size limit."""

    code = "item_too_large"


class BackendUnavailable(StoreError):
    """The backend cannot be reached, is not initialised, or is unusable."""

    code = "backend_unavailable"


class SchemaVersionError(StoreError):
    """The database was written by a newer (or unknown) schema version."""

    code = "schema_version"


class IntegrityError(StoreError):
    """Stored data failed an integrity check (tampered, moved or unreadable)."""

    code = "integrity"


class KeyMaterialError(StoreError):
    """A key is missing, unreadable, badly protected or wrong."""

    code = "key_error"


@dataclass(frozen=True)
class Problem:
    """One validation failure: what, where, and how to fix it."""

    code: str
    message: str
    field: str
    suggestion: str = ""
    context: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form for JSON output and GraphQL extensions."""
        return {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "suggestion": self.suggestion,
            "context": self.context,
        }


class ValidationFailed(StoreError):
    """A batch failed validation; carries every problem found, nothing was written."""

    code = "validation_failed"

    def __init__(self, problems: list[Problem]) -> None:
        lines = [f"{p.field}: {p.code}: {p.message}" for p in problems]
        super().__init__(f"{len(problems)} validation error(s):\n" + "\n".join(lines))
        self.problems = problems

    @property
    def codes(self) -> list[str]:
        """The error codes, in the order found."""
        return [p.code for p in self.problems]
