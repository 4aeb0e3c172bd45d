"""The request's Reader (schema.reader): serves a dialogue from its partition once planned, else narrowly."""

from __future__ import annotations

from schema import dialogue as gql
from schema import entities as gqe
from store.errors import NotFound, Problem, ValidationFailed
from store.model import Entity, Round

from . import convert
from .loaders import Loaders, Partition


class StoreReader:
    """Reads through the per-request loaders; a dialogue marked whole is served from one partition load."""

    def __init__(self, loaders: Loaders) -> None:
        self.loaders = loaders
        self._whole: set[str] = set()

    def plan(self, dialogue_id: str, *, whole: bool) -> None:
        """Serve every later read of this dialogue from its partition when `whole`."""
        if whole:
            self._whole.add(dialogue_id)

    async def _planned(self, dialogue_id: str) -> Partition | None:
        return await self.loaders.partition.load(dialogue_id) if dialogue_id in self._whole else None

    async def _partition(self, dialogue_id: str) -> Partition:
        self._whole.add(dialogue_id)
        return await self.loaders.partition.load(dialogue_id)

    async def dialogue(self, dialogue_id: str) -> gql.Dialogue:
        """The dialogue's meta: AP1, or the partition when planned."""
        part = await self._planned(dialogue_id)
        return convert.dialogue(part.snapshot.dialogue if part else await self.loaders.meta.load(dialogue_id))

    async def entity(self, dialogue_id: str, entity_id: str) -> gqe.Entity:
        part = await self._planned(dialogue_id)
        if part is None:
            return convert.entity(dialogue_id, await self.loaders.entity.load((dialogue_id, entity_id)))
        return convert.entity(dialogue_id, _known(part, dialogue_id, entity_id))

    async def entities(self, dialogue_id: str, kind: str, round: int | None) -> list[gqe.Entity]:
        part = await self._planned(dialogue_id)
        found = part.snapshot.of_kind(kind, round) if part else await self.loaders.kind.load((dialogue_id, kind, round))
        return [convert.entity(dialogue_id, e) for e in found]

    async def refs_out(self, dialogue_id: str, entity_id: str) -> list[gqe.Ref]:
        part = await self._planned(dialogue_id)
        refs = part.refs_out.get(entity_id, []) if part else await self.loaders.refs_out.load((dialogue_id, entity_id))
        return [convert.ref(dialogue_id, r) for r in refs]

    async def refs_in(self, dialogue_id: str, entity_id: str) -> list[gqe.Ref]:
        part = await self._planned(dialogue_id)
        refs = part.refs_in.get(entity_id, []) if part else await self.loaders.refs_in.load((dialogue_id, entity_id))
        return [convert.ref(dialogue_id, r) for r in refs]

    async def history(self, dialogue_id: str, entity_id: str) -> list[gqe.Event]:
        part = await self._planned(dialogue_id)
        events = part.events.get(entity_id, []) if part else await self.loaders.history.load((dialogue_id, entity_id))
        return [convert.event(e) for e in events]

    async def links(
        self, dialogue_id: str, entity_id: str, direction: str, ref_types: list[str] | None, max_depth: int | None
    ) -> list[gqe.Link]:
        if max_depth is not None and max_depth < 1:
            raise ValidationFailed([Problem("invalid_argument", "maxDepth must be 1 or more", "maxDepth",
                                            "omit it to follow every ref")])
        part = await self._partition(dialogue_id)
        _known(part, dialogue_id, entity_id)
        entities = part.snapshot.entities
        return [convert.link(dialogue_id, found, entities[found.entity_id])
                for found in part.graph.links(entity_id, direction, ref_types, max_depth)  # type: ignore[arg-type]
                if found.entity_id in entities]

    async def lineage(self, dialogue_id: str, entity_id: str) -> list[gqe.Entity]:
        part = await self._partition(dialogue_id)
        _known(part, dialogue_id, entity_id)
        return [convert.entity(dialogue_id, part.snapshot.entities[i]) for i in part.graph.lineage(entity_id)]

    async def rounds(self, dialogue_id: str) -> list[gql.Round]:
        return [convert.round_(r) for r in await self._rounds(dialogue_id)]

    async def _rounds(self, dialogue_id: str) -> list[Round]:
        part = await self._planned(dialogue_id)
        return sorted(part.snapshot.rounds.values(), key=lambda r: r.number) if part else await self.loaders.rounds.load(dialogue_id)

    async def experts(self, dialogue_id: str) -> list[gql.Expert]:
        part = await self._planned(dialogue_id)
        experts = list(part.snapshot.experts.values()) if part else await self.loaders.experts.load(dialogue_id)
        return [convert.expert(e) for e in experts]

    async def verdicts(self, dialogue_id: str) -> list[gql.Verdict]:
        part = await self._planned(dialogue_id)
        verdicts = part.verdicts if part else await self.loaders.verdicts.load(dialogue_id)
        return [convert.verdict(dialogue_id, v) for v in verdicts]

    async def verdict_context(self, dialogue_id: str, verdict_id: str) -> gql.VerdictContext:
        part = await self._partition(dialogue_id)
        verdict = next((v for v in part.verdicts if v.id == verdict_id), None)
        if verdict is None:
            raise NotFound(f"verdict {verdict_id} not found in dialogue {dialogue_id}")
        context = part.graph.verdict_context(verdict)
        entities = part.snapshot.entities

        def listed(ids: list[str]) -> list[gqe.Entity]:
            return [convert.entity(dialogue_id, entities[i]) for i in ids if i in entities]

        return gql.VerdictContext(
            adopted=listed(context.adopted),  # type: ignore[arg-type]
            resolved_tensions=listed(context.resolved_tensions),  # type: ignore[arg-type]
            key_evidence=listed(context.key_evidence),  # type: ignore[arg-type]
            key_claims=listed(context.key_claims),  # type: ignore[arg-type]
        )

    async def scoreboard(self, dialogue_id: str) -> gql.Scoreboard:
        return convert.scoreboard(dialogue_id, await self._rounds(dialogue_id))

    async def events(self, dialogue_id: str) -> list[gqe.Event]:
        part = await self._partition(dialogue_id)
        return [convert.event(e) for e in part.snapshot.events]


def _known(part: Partition, dialogue_id: str, entity_id: str) -> Entity:
    """The entity, or NotFound worded as the store words it."""
    found = part.snapshot.entities.get(entity_id)
    if found is None:
        raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}")
    return found
