"""Per-request DataLoaders, one per store access pattern (DESIGN §3): each key is loaded at most once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence, TypeVar

from strawberry.dataloader import DataLoader

from store.dialogue_store import DialogueStore
from store.graph import DialogueGraph
from store.model import Dialogue, Entity, Event, Expert, Ref, Round, Verdict
from store.snapshot import Snapshot

K = TypeVar("K")
T = TypeVar("T")

#: (dialogue id, kind, round or None)
KindKey = tuple[str, str, int | None]
#: (dialogue id, entity display id)
EntityKey = tuple[str, str]


@dataclass
class Partition:
    """One dialogue's partition (AP2) with its graph and the indexes every nested field reads."""

    snapshot: Snapshot
    graph: DialogueGraph
    refs_out: dict[str, list[Ref]] = field(default_factory=dict)
    refs_in: dict[str, list[Ref]] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    @classmethod
    def of(cls, snapshot: Snapshot) -> "Partition":
        """Index a snapshot once so each nested field is a dictionary lookup."""
        part = cls(snapshot, DialogueGraph(snapshot))
        for ref in snapshot.refs:
            part.refs_out.setdefault(ref.source, []).append(ref)
            part.refs_in.setdefault(ref.target, []).append(ref)
        for event in snapshot.events:
            part.events.setdefault(event.entity_id, []).append(event)
        part.verdicts = sorted(snapshot.verdicts, key=lambda v: (v.round, v.created_at))
        return part


def each(load: Callable[[K], Awaitable[T]]) -> Callable[[list[K]], Awaitable[Sequence[T | BaseException]]]:
    """A batch function that loads every key on its own (a store call never spans partitions)."""

    async def batch(keys: list[K]) -> Sequence[T | BaseException]:
        return await asyncio.gather(*(load(key) for key in keys), return_exceptions=True)

    return batch


class Loaders:
    """The DataLoaders of one request over one tenant-scoped DialogueStore."""

    def __init__(self, store: DialogueStore) -> None:
        self.meta: DataLoader[str, Dialogue] = DataLoader(each(store.get_dialogue))  # AP1
        self.partition: DataLoader[str, Partition] = DataLoader(each(self._partition))  # AP2
        self.kind: DataLoader[KindKey, list[Entity]] = DataLoader(each(self._kind))  # AP3, AP4
        self.entity: DataLoader[EntityKey, Entity] = DataLoader(each(self._entity))
        self.refs_out: DataLoader[EntityKey, list[Ref]] = DataLoader(each(self._refs_out))  # AP5
        self.refs_in: DataLoader[EntityKey, list[Ref]] = DataLoader(each(self._refs_in))  # AP6
        self.history: DataLoader[EntityKey, list[Event]] = DataLoader(each(self._history))  # AP7
        self.rounds: DataLoader[str, list[Round]] = DataLoader(each(store.get_rounds))  # AP8
        self.experts: DataLoader[str, list[Expert]] = DataLoader(each(store.get_experts))  # AP8
        self.verdicts: DataLoader[str, list[Verdict]] = DataLoader(each(store.get_verdicts))  # AP8
        self._store = store

    async def _partition(self, dialogue_id: str) -> Partition:
        return Partition.of(await self._store.load_partition(dialogue_id))

    async def _kind(self, key: KindKey) -> list[Entity]:
        return await self._store.get_entities(*key)

    async def _entity(self, key: EntityKey) -> Entity:
        return await self._store.get_entity(*key)

    async def _refs_out(self, key: EntityKey) -> list[Ref]:
        return await self._store.get_refs(key[0], source=key[1])

    async def _refs_in(self, key: EntityKey) -> list[Ref]:
        return await self._store.get_refs(key[0], target=key[1])

    async def _history(self, key: EntityKey) -> list[Event]:
        return await self._store.get_events(*key)

