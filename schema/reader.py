"""The read port nested fields resolve through; the resolvers layer implements it per request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import strawberry

if TYPE_CHECKING:
    from .dialogue import Expert, Round, Scoreboard, Verdict, VerdictContext
    from .entities import Entity, Event, Link, Ref


class Reader(Protocol):
    """Every read a field below a root field needs, by dialogue id; implementations cache per request."""

    async def entity(self, dialogue_id: str, entity_id: str) -> Entity:
        """One entity."""

    async def entities(self, dialogue_id: str, kind: str, round: int | None) -> list[Entity]:
        """Entities of one kind, optionally of one round."""

    async def refs_out(self, dialogue_id: str, entity_id: str) -> list[Ref]:
        """Refs leaving an entity."""

    async def refs_in(self, dialogue_id: str, entity_id: str) -> list[Ref]:
        """Refs arriving at an entity."""

    async def history(self, dialogue_id: str, entity_id: str) -> list[Event]:
        """Lifecycle events of an entity, oldest first."""

    async def links(
        self, dialogue_id: str, entity_id: str, direction: str, ref_types: list[str] | None, max_depth: int | None
    ) -> list[Link]:
        """Entities reachable from an entity through refs."""

    async def lineage(self, dialogue_id: str, entity_id: str) -> list[Entity]:
        """The refine chain behind an entity, newest first."""

    async def rounds(self, dialogue_id: str) -> list[Round]:
        """Registered rounds in order."""

    async def experts(self, dialogue_id: str) -> list[Expert]:
        """Experts who joined the dialogue."""

    async def verdicts(self, dialogue_id: str) -> list[Verdict]:
        """Verdicts by round."""

    async def verdict_context(self, dialogue_id: str, verdict_id: str) -> VerdictContext:
        """What a verdict rests on, derived at read time."""

    async def scoreboard(self, dialogue_id: str) -> Scoreboard:
        """Scores, velocity and convergence per round."""

    async def events(self, dialogue_id: str) -> list[Event]:
        """Every lifecycle event of the dialogue."""


def reader(info: strawberry.Info) -> Reader:
    """The request's reader."""
    return info.context.reader  # type: ignore[no-any-return]
