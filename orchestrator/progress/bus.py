"""Progress events of running dialogues, fanned out to any number of subscribers."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("concord.progress")

#: Event kinds a run publishes, in the order they usually happen.
KINDS = (
    "dialogue_started",
    "round_started",
    "prompt_sent",
    "expert_answered",
    "expert_repaired",
    "expert_absent",
    "round_closed",
    "verdict",
    "dialogue_failed",
    "dialogue_stopped",
)

#: Kinds after which a dialogue's stream ends.
FINAL_KINDS = frozenset({"verdict", "dialogue_failed", "dialogue_stopped"})


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a run: what happened, to which expert in which round, with figures."""

    dialogue_id: str
    kind: str
    round: int | None = None
    expert: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))


class ProgressBus:
    """Publish/subscribe per dialogue; a slow subscriber drops its oldest events, never blocks a run."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[ProgressEvent]]] = defaultdict(set)
        self._relays: list[Callable[[ProgressEvent], None]] = []

    def relay_to(self, send: Callable[[ProgressEvent], None]) -> Callable[[], None]:
        """Also hand every event published here to `send`; returns what stops that."""
        self._relays.append(send)
        return lambda: self._relays.remove(send)

    def publish(self, event: ProgressEvent) -> None:
        """Deliver an event to this process's subscribers of its dialogue, and to every relay; never raises."""
        self.deliver(event)
        for send in self._relays:
            try:
                send(event)
            except Exception:  # progress reporting must never stop the run it reports on
                log.exception("progress event %s of %s not relayed", event.kind, event.dialogue_id)

    def deliver(self, event: ProgressEvent) -> None:
        """Deliver an event to every current subscriber of its dialogue in this process."""
        for queue in list(self._subscribers.get(event.dialogue_id, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self, dialogue_id: str) -> AsyncIterator[ProgressEvent]:
        """Events of one dialogue from now on, until a final event or the caller stops."""
        queue: asyncio.Queue[ProgressEvent] = asyncio.Queue(self.queue_size)
        self._subscribers[dialogue_id].add(queue)
        try:
            while True:
                event = await queue.get()
                yield event
                if event.kind in FINAL_KINDS:
                    return
        finally:
            self._subscribers[dialogue_id].discard(queue)
            if not self._subscribers[dialogue_id]:
                del self._subscribers[dialogue_id]

    def subscribers(self, dialogue_id: str) -> int:
        """Number of live subscriptions to a dialogue."""
        return len(self._subscribers.get(dialogue_id, ()))
