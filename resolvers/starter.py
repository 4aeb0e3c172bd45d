"""What `startDialogue` hands to the dialogue runner the application was built with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from store.dialogue_store import DialogueStore


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
