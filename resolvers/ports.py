"""What the API needs from the process serving it: a source of progress events and a dialogue starter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from concord.store.dialogue_store import DialogueStore


@dataclass(frozen=True)
class StartRequest:
    """A validated request to run a new dialogue for a caller, with a store scoped to the caller's tenant."""

    title: str
    question: str
    pool: Any
    background: Any
    max_rounds: int | None
    seed: int | None
    store: DialogueStore


class DialogueStarter(Protocol):
    """Validates a request (raising store.errors.ValidationFailed), creates the dialogue, starts the run in the
    background and returns the dialogue id without waiting for it."""

    async def __call__(self, request: StartRequest) -> str: ...


class ProgressUpdate(Protocol):
    """One step of a run, as the API streams it."""

    @property
    def dialogue_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def round(self) -> int | None: ...
    @property
    def expert(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def at(self) -> str: ...


class ProgressSource(Protocol):
    """Where the API subscribes to a dialogue's progress."""

    def subscribe(self, dialogue_id: str) -> AsyncIterator[ProgressUpdate]: ...
