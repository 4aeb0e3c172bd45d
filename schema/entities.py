"""Entities (perspectives, tensions, recommendations, evidence, claims) and the refs and links between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import strawberry

from concord.schema.enums import Direction, EntityKind, RefType
from concord.schema.reader import MaybeAwaitable, reader


@strawberry.type(description="A lifecycle event of an entity: created, addressed, resolved, adopted, …")
class Event:
    entity_id: strawberry.ID
    entity_kind: EntityKind
    event_type: str
    round: int
    created_at: str
    actors: list[str]
    reason: str | None
    reference: str | None = strawberry.field(description="The entity or verdict that caused the event.")
    result_id: str | None


@strawberry.interface(description="A contribution to a dialogue with a global display id like T0102.")
class Entity:
    id: strawberry.ID
    dialogue_id: strawberry.ID
    kind: EntityKind
    round: int
    label: str
    content: str
    status: str
    contributors: list[str] = strawberry.field(description="Expert slugs who authored it.")
    created_at: str
    updated_at: str

    @strawberry.field(description="Refs from this entity to others.")
    def refs_out(self, info: strawberry.Info) -> MaybeAwaitable[list[Ref]]:
        return reader(info).refs_out(self.dialogue_id, self.id)

    @strawberry.field(description="Refs from other entities to this one.")
    def refs_in(self, info: strawberry.Info) -> MaybeAwaitable[list[Ref]]:
        return reader(info).refs_in(self.dialogue_id, self.id)

    @strawberry.field(description="Lifecycle events, oldest first.")
    def history(self, info: strawberry.Info) -> MaybeAwaitable[list[Event]]:
        return reader(info).history(self.dialogue_id, self.id)

    @strawberry.field(
        description="Every entity reachable through refs, once each, at its least depth; cycles end the walk."
    )
    def links(
        self,
        info: strawberry.Info,
        direction: Direction = Direction.OUT,
        ref_types: list[RefType] | None = None,
        max_depth: Annotated[int | None, strawberry.argument(description="1 or more; unbounded when omitted.")] = None,
    ) -> MaybeAwaitable[list[Link]]:
        types = None if ref_types is None else [t.value for t in ref_types]
        return reader(info).links(self.dialogue_id, self.id, direction, types, max_depth)

    @strawberry.field(description="The refine chain behind this entity, itself first, then what it refines.")
    def lineage(self, info: strawberry.Info) -> MaybeAwaitable[list[Entity]]:
        return reader(info).lineage(self.dialogue_id, self.id)


@strawberry.type(description="A position an expert takes.")
class Perspective(Entity):
    pass


@strawberry.type(description="A disagreement the panel has to settle.")
class Tension(Entity):
    pass


@strawberry.type(description="A proposed course of action.")
class Recommendation(Entity):
    adopted_in_verdict: str | None


@strawberry.type(description="A fact or source cited in support or against.")
class Evidence(Entity):
    pass


@strawberry.type(description="An assertion put up for support or opposition.")
class Claim(Entity):
    pass


@strawberry.type(description="A typed edge between two entities of one dialogue.")
class Ref:
    dialogue_id: strawberry.ID
    source_id: strawberry.ID
    ref_type: RefType
    target_id: strawberry.ID
    created_at: str

    @strawberry.field(description="The entity the ref leaves.")
    def source(self, info: strawberry.Info) -> MaybeAwaitable[Entity]:
        return reader(info).entity(self.dialogue_id, self.source_id)

    @strawberry.field(description="The entity the ref points at.")
    def target(self, info: strawberry.Info) -> MaybeAwaitable[Entity]:
        return reader(info).entity(self.dialogue_id, self.target_id)


@strawberry.type(description="An entity reached from another, with its depth and one shortest path of ids.")
class Link:
    reached: strawberry.Private[Callable[[], Entity]]
    depth: int
    route: strawberry.Private[Callable[[], list[strawberry.ID]]]

    # entity and path are built only when asked for: a links query often wants depths alone

    @strawberry.field
    def entity(self) -> Entity:
        return self.reached()

    @strawberry.field(description="Display ids from the start entity to this one.")
    def path(self) -> list[strawberry.ID]:
        return self.route()
