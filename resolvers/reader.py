"""The request's Reader (schema.reader): serves a dialogue from its partition once planned, else narrowly.

Once a request has loaded a dialogue's partition, every later read of that dialogue is answered at
once, without a coroutine: the fields nested under a list then cost graphql-core no task each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry.dataloader import DataLoader

from concord.resolvers import convert
from concord.resolvers.loaders import EntityKey, Loaders, Partition
from concord.schema import dialogue as gql
from concord.schema import entities as gqe
from concord.schema.enums import Direction
from concord.schema.reader import MaybeAwaitable
from concord.store.errors import NotFound, Problem, ValidationFailed
from concord.store.graph import Direction as Walk
from concord.store.model import Entity, Ref

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=gqe.Entity)

#: The graph's name for each `links` direction.
WALKS: dict[Direction, Walk] = {Direction.OUT: "out", Direction.IN: "in", Direction.BOTH: "both"}


class StoreReader:
    """Reads through the per-request loaders; a dialogue marked whole is served from one partition load."""

    def __init__(self, loaders: Loaders) -> None:
        self.loaders = loaders
        self._whole: set[str] = set()
        self._loaded: dict[str, Partition] = {}

    def plan(self, dialogue_id: str, *, whole: bool) -> None:
        """Serve every later read of this dialogue from its partition when `whole`."""
        if whole:
            self._whole.add(dialogue_id)

    async def _partition(self, dialogue_id: str) -> Partition:
        self._whole.add(dialogue_id)
        if dialogue_id not in self._loaded:
            self._loaded[dialogue_id] = await self.loaders.partition.load(dialogue_id)
        return self._loaded[dialogue_id]

    def _read(
        self, dialogue_id: str, serve: Callable[[Partition], T], narrow: Callable[[], Awaitable[T]] | None = None
    ) -> MaybeAwaitable[T]:
        """`serve` from the partition: now when loaded, else after loading it, or `narrow` when not planned whole."""
        part = self._loaded.get(dialogue_id)
        return serve(part) if part is not None else self._read_later(dialogue_id, serve, narrow)

    async def _read_later(
        self, dialogue_id: str, serve: Callable[[Partition], T], narrow: Callable[[], Awaitable[T]] | None
    ) -> T:
        if narrow is not None and dialogue_id not in self._whole:
            return await narrow()
        return serve(await self._partition(dialogue_id))

    def dialogue(self, dialogue_id: str) -> MaybeAwaitable[gql.Dialogue]:
        """The dialogue's meta: AP1, or the partition when planned."""
        return self._read(
            dialogue_id,
            lambda part: convert.dialogue(part.snapshot.dialogue),
            lambda: _then(self.loaders.meta.load(dialogue_id), convert.dialogue),
        )

    def entity(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[gqe.Entity]:
        return self._read(
            dialogue_id,
            lambda part: convert.entity(dialogue_id, _known(part, dialogue_id, entity_id)),
            lambda: _then(self.loaders.entity.load((dialogue_id, entity_id)), lambda e: convert.entity(dialogue_id, e)),
        )

    def entities(self, dialogue_id: str, kind: type[E], round: int | None) -> MaybeAwaitable[list[E]]:
        name = convert.ENTITY_KINDS[kind]

        def listed(found: list[Entity]) -> list[E]:
            return [convert.entity_as(kind, dialogue_id, e) for e in found]

        return self._read(
            dialogue_id,
            lambda part: listed(part.snapshot.of_kind(name, round)),
            lambda: _then(self.loaders.kind.load((dialogue_id, name, round)), listed),
        )

    def refs_out(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[gqe.Ref]]:
        return self._refs(dialogue_id, entity_id, lambda part: part.refs_out, self.loaders.refs_out)

    def refs_in(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[gqe.Ref]]:
        return self._refs(dialogue_id, entity_id, lambda part: part.refs_in, self.loaders.refs_in)

    def _refs(
        self,
        dialogue_id: str,
        entity_id: str,
        index: Callable[[Partition], dict[str, list[Ref]]],
        loader: DataLoader[EntityKey, list[Ref]],
    ) -> MaybeAwaitable[list[gqe.Ref]]:
        def listed(refs: list[Ref]) -> list[gqe.Ref]:
            return [convert.ref(dialogue_id, r) for r in refs]

        return self._read(
            dialogue_id,
            lambda part: listed(index(part).get(entity_id, [])),
            lambda: _then(loader.load((dialogue_id, entity_id)), listed),
        )

    def history(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[gqe.Event]]:
        def listed(events: list) -> list[gqe.Event]:
            return [convert.event(e) for e in events]

        return self._read(
            dialogue_id,
            lambda part: listed(part.events.get(entity_id, [])),
            lambda: _then(self.loaders.history.load((dialogue_id, entity_id)), listed),
        )

    def links(
        self, dialogue_id: str, entity_id: str, direction: Direction, ref_types: list[str] | None, max_depth: int | None
    ) -> MaybeAwaitable[list[gqe.Link]]:
        if max_depth is not None and max_depth < 1:
            raise ValidationFailed(
                [Problem("invalid_argument", "maxDepth must be 1 or more", "maxDepth", "omit it to follow every ref")]
            )

        def serve(part: Partition) -> list[gqe.Link]:
            _known(part, dialogue_id, entity_id)
            entities = part.snapshot.entities
            return [
                convert.link(dialogue_id, found, entities[found.entity_id])
                for found in part.graph.links(entity_id, WALKS[direction], ref_types, max_depth)
                if found.entity_id in entities
            ]

        return self._read(dialogue_id, serve)

    def lineage(self, dialogue_id: str, entity_id: str) -> MaybeAwaitable[list[gqe.Entity]]:
        def serve(part: Partition) -> list[gqe.Entity]:
            _known(part, dialogue_id, entity_id)
            return [convert.entity(dialogue_id, part.snapshot.entities[i]) for i in part.graph.lineage(entity_id)]

        return self._read(dialogue_id, serve)

    def rounds(self, dialogue_id: str) -> MaybeAwaitable[list[gql.Round]]:
        return self._rounds(dialogue_id, lambda rounds: [convert.round_(r) for r in rounds])

    def _rounds(self, dialogue_id: str, then: Callable[[list], R]) -> MaybeAwaitable[R]:
        return self._read(
            dialogue_id,
            lambda part: then(sorted(part.snapshot.rounds.values(), key=lambda r: r.number)),
            lambda: _then(self.loaders.rounds.load(dialogue_id), then),
        )

    def experts(self, dialogue_id: str) -> MaybeAwaitable[list[gql.Expert]]:
        def listed(experts: list) -> list[gql.Expert]:
            return [convert.expert(e) for e in experts]

        return self._read(
            dialogue_id,
            lambda part: listed(list(part.snapshot.experts.values())),
            lambda: _then(self.loaders.experts.load(dialogue_id), listed),
        )

    def verdicts(self, dialogue_id: str) -> MaybeAwaitable[list[gql.Verdict]]:
        def listed(verdicts: list) -> list[gql.Verdict]:
            return [convert.verdict(dialogue_id, v) for v in verdicts]

        return self._read(
            dialogue_id,
            lambda part: listed(part.verdicts),
            lambda: _then(self.loaders.verdicts.load(dialogue_id), listed),
        )

    def verdict_context(self, dialogue_id: str, verdict_id: str) -> MaybeAwaitable[gql.VerdictContext]:
        def serve(part: Partition) -> gql.VerdictContext:
            verdict = next((v for v in part.verdicts if v.id == verdict_id), None)
            if verdict is None:
                raise NotFound(f"verdict {verdict_id} not found in dialogue {dialogue_id}")
            context = part.graph.verdict_context(verdict)
            entities = part.snapshot.entities

            def listed(kind: type[E], ids: list[str]) -> list[E]:
                return [convert.entity_as(kind, dialogue_id, entities[i]) for i in ids if i in entities]

            return gql.VerdictContext(
                adopted=listed(gqe.Recommendation, context.adopted),
                resolved_tensions=listed(gqe.Tension, context.resolved_tensions),
                key_evidence=listed(gqe.Evidence, context.key_evidence),
                key_claims=listed(gqe.Claim, context.key_claims),
            )

        return self._read(dialogue_id, serve)

    def scoreboard(self, dialogue_id: str) -> MaybeAwaitable[gql.Scoreboard]:
        return self._rounds(dialogue_id, lambda rounds: convert.scoreboard(dialogue_id, rounds))

    def events(self, dialogue_id: str) -> MaybeAwaitable[list[gqe.Event]]:
        return self._read(dialogue_id, lambda part: [convert.event(e) for e in part.snapshot.events])


async def _then(loaded: Awaitable[T], convert_it: Callable[[T], R]) -> R:
    """`convert_it` applied to what `loaded` gives."""
    return convert_it(await loaded)


def _known(part: Partition, dialogue_id: str, entity_id: str) -> Entity:
    """The entity, or NotFound worded as the store words it."""
    found = part.snapshot.entities.get(entity_id)
    if found is None:
        raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}")
    return found
