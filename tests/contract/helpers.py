"""Batch builders and a crashing backend shared by the contract and integrity tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from concord.store.backends.base import Operation
from concord.store.model import EntityDraft, Expert, PanelSeat, RefDraft, RoundBatch, Score

PANEL = [
    ("Muffin", "Relational Database Architect"),
    ("Cupcake", "Single-Table Design Specialist"),
    ("Scone", "Platform Engineer"),
]


def panel_batch(round: int, **fields: object) -> RoundBatch:
    """A round batch with the three-expert panel, everyone answering."""
    seats = [PanelSeat(name, role, "Core", "pool", 0.9) for name, role in PANEL]
    batch = RoundBatch(
        round=round,
        panel=seats,
        experts=[Expert(name.lower(), role, "Core", "pool", 0.9) for name, role in PANEL] if round == 0 else [],
        answered=[name.lower() for name, _ in PANEL],
        scores={name.lower(): Score(3, 2, 2, 1) for name, _ in PANEL},
    )
    for name, value in fields.items():
        setattr(batch, name, value)
    return batch


def perspective(local_id: str, label: str = "a perspective", *refs: RefDraft, author: str = "muffin") -> EntityDraft:
    """A perspective draft."""
    return EntityDraft("perspective", local_id, label, f"content of {label}", [author], list(refs))


def tension(local_id: str, label: str = "a tension", *refs: RefDraft, author: str = "muffin") -> EntityDraft:
    """A tension draft."""
    return EntityDraft("tension", local_id, label, f"description of {label}", [author], list(refs))


def entity(kind: str, local_id: str, label: str, *refs: RefDraft) -> EntityDraft:
    """A draft of any kind."""
    return EntityDraft(kind, local_id, label, f"content of {label}", ["muffin"], list(refs))


class CrashingBackend:
    """Delegates to a backend but fails the n-th transaction (before or after it commits)."""

    def __init__(self, inner: Any, fail_on: int, after_commit: bool = False) -> None:
        self.inner, self.fail_on, self.after_commit, self.count = inner, fail_on, after_commit, 0
        self.calls = inner.calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def transact(self, operations: Sequence[Operation]) -> None:
        self.count += 1
        if self.count == self.fail_on and not self.after_commit:
            raise ConnectionError("injected crash before commit")
        await self.inner.transact(operations)
        if self.count == self.fail_on:
            raise ConnectionError("injected crash after commit")
