"""Per-request DataLoaders, one per store access pattern (DESIGN §3): each key is loaded at most once."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from strawberry.dataloader import DataLoader

from concord.store.dialogue_store import DialogueStore
from concord.store.graph import DialogueGraph
from concord.store.model import Dialogue, Entity, Event, Expert, Ref, Round, Verdict
from concord.store.snapshot import Snapshot

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
    def of(cls, snapshot: Snapshot) -> Partition:
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


class PartitionCache:
    """Indexed partitions kept between requests, each valid only while its partition version is unchanged.

    Every write appends an audit entry and so moves the version on meta; a version that still
    matches (one GetItem, tenant-checked and signature-checked) means nothing was written since.
    Decrypted content stays in this process's memory, bounded to `capacity` partitions.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Partition] = OrderedDict()

    def holds(self, tenant: str, dialogue_id: str) -> bool:
        """True when some version of this partition is cached (worth one GetItem to check)."""
        return (tenant, dialogue_id) in self._entries

    def get(self, tenant: str, dialogue_id: str, version: tuple[int, str]) -> Partition | None:
        """The cached partition at exactly this version, if any."""
        part = self._entries.get((tenant, dialogue_id))
        if part is None or part.snapshot.version != version:
            return None
        self._entries.move_to_end((tenant, dialogue_id))
        return part

    def put(self, tenant: str, dialogue_id: str, part: Partition) -> None:
        """Remember a partition, evicting the least recently used past capacity."""
        self._entries[(tenant, dialogue_id)] = part
        self._entries.move_to_end((tenant, dialogue_id))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class Loaders:
    """The DataLoaders of one request over one tenant-scoped DialogueStore."""

    def __init__(self, store: DialogueStore, partitions: PartitionCache | None = None) -> None:
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
        self._partitions = partitions

    async def _partition(self, dialogue_id: str) -> Partition:
        if self._partitions is None:
            return Partition.of(await self._store.load_partition(dialogue_id))
        tenant = self._store.tenant
        if self._partitions.holds(tenant, dialogue_id):
            cached = self._partitions.get(tenant, dialogue_id, await self._store.partition_version(dialogue_id))
            if cached is not None:
                return cached
        part = Partition.of(await self._store.load_partition(dialogue_id))
        self._partitions.put(tenant, dialogue_id, part)
        return part

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
