"""The read port nested fields resolve through; the resolvers layer implements it per request.

A read answers at once when the request already holds what it needs, else with an awaitable:
graphql-core takes either from a resolver, so nested fields are plain functions that pass it on.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar

import strawberry

T = TypeVar("T")
E = TypeVar("E", bound="Entity")

# mypy checks a nested field against what it returns, strawberry builds the GraphQL type from the value it resolves to.
if TYPE_CHECKING:
    from concord.schema.dialogue import Expert, Round, Scoreboard, Verdict, VerdictContext
    from concord.schema.entities import Entity, Event, Link, Ref
    from concord.schema.enums import Direction

    MaybeAwaitable: TypeAlias = T | Awaitable[T]
else:

    class MaybeAwaitable:
        """A read's value or an awaitable of it; at run time `MaybeAwaitable[X]` is X, the type strawberry reads."""

        def __class_getitem__(cls, item: object) -> object:
            return item


class Reader(Protocol):
    """Every read a field below a root field needs, by dialogue id; implementations cache per request."""

    def entity(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[Entity]:
        """One entity."""

    def entities(self, dialogue_id: str, kind: type[E], round: int | None) -> MaybeAwaitable[list[E]]:
        """Entities of one kind (its schema type), optionally of one round."""

    def refs_out(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[Ref]]:
        """Refs leaving an entity."""

    def refs_in(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[Ref]]:
        """Refs arriving at an entity."""

    def history(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[Event]]:
        """Lifecycle events of an entity, oldest first."""

    def links(
        self, dialogue_id: str, entity_id: str, direction: Direction, ref_types: list[str] | None, max_depth: int | None
    ) -> MaybeAwaitable[list[Link]]:
        """Entities reachable from an entity through refs."""

    def lineage(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[Entity]]:
        """The refine chain behind an entity, newest first."""

    def rounds(self, dialogue_id: str) -> MaybeAwaitable[list[Round]]:
        """Registered rounds in order."""

    def experts(self, dialogue_id: str) -> MaybeAwaitable[list[Expert]]:
        """Experts who joined the dialogue."""

    def verdicts(self, dialogue_id: str) -> MaybeAwaitable[list[Verdict]]:
        """Verdicts by round."""

    def verdict_context(self, dialogue_id: str, verdict_id: str) -> MaybeAwaitable[VerdictContext]:
        """What a verdict rests on, derived at read time."""

    def scoreboard(self, dialogue_id: str) -> MaybeAwaitable[Scoreboard]:
        """Scores, velocity and convergence per round."""

    def events(self, dialogue_id: str) -> MaybeAwaitable[list[Event]]:
        """Every lifecycle event of the dialogue."""


async def settled(value: MaybeAwaitable[T]) -> T:
    """The value a read gives, awaiting it when it has to be."""
    return await value if inspect.isawaitable(value) else value


def reader(info: strawberry.Info) -> Reader:
    """The request's reader."""
    return info.context.reader
