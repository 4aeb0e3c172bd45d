"""The write path: each write is planned against fresh meta, gets its audit entry, and commits in one transaction.

A write that loses a race with another writer (a condition fails) is planned again, up to MAX_ATTEMPTS times.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from concord.store import trail_codec
from concord.store.audit import GENESIS, entry_hash, envelopes_digest
from concord.store.backends.base import ABSENT, Item, Operation, Put, check_transaction, equals
from concord.store.clock import Clock, iso
from concord.store.crypto.envelope import envelope_hash
from concord.store.crypto.signing import MAC_ATTRIBUTE, SignedBackend
from concord.store.errors import ConflictError, StoreError
from concord.store.ids import dialogue_of
from concord.store.model import AuditEntry
from concord.store.reads import PartitionReader

T = TypeVar("T")
MAX_ATTEMPTS = 8
#: Most actions of a transaction the store builds (DynamoDB allows 100), with room for the audit entry.
CHUNK_ACTIONS = 90
#: Bytes of items per transaction the store builds: under DynamoDB's 4 MB, with room for the audit entry.
TRANSACTION_BYTES = 3 * 1024 * 1024


@dataclass(frozen=True)
class Rewrite:
    """A change to an item read in this write: new attribute values over `base`, some removed.

    It is stored as a whole-item Put (so the item can be signed) conditional on the MAC of the
    version it was computed from, so any concurrent change makes the write retry.
    """

    base: Item
    set: dict[str, Any]
    remove: tuple[str, ...] = ()

    def item(self) -> Item:
        """The item as rewritten (unsigned)."""
        item = {k: v for k, v in self.base.items() if k not in self.remove and k != MAC_ATTRIBUTE}
        item.update(self.set)
        return item


@dataclass
class WritePlan(Generic[T]):
    """What one write stores (its operations, and the files its audit entry records) and what it returns."""

    operations: list[Operation | Rewrite]
    result: T
    files: dict[str, str] = field(default_factory=dict)


#: Plans one write against the dialogue's fresh meta item; called again on every retry.
Planner = Callable[[Item], Awaitable[WritePlan[T]]]


class WriteLocks(defaultdict[str, asyncio.Lock]):
    """One lock per dialogue: writers in one process that share it queue instead of racing on the audit head."""

    def __init__(self) -> None:
        super().__init__(asyncio.Lock)


class AuditedWriter:
    """Commits planned writes of one tenant's dialogues, each with its audit entry, retrying lost races."""

    def __init__(
        self, items: SignedBackend, reader: PartitionReader, *, principal: str, clock: Clock, locks: WriteLocks
    ) -> None:
        self.items = items
        self.reader = reader
        self.tenant = reader.tenant
        self.principal = principal
        self.clock = clock
        self.locks = locks

    async def write(self, dialogue_id: str, operation: str, plan: Planner[T]) -> T:
        """Plan against fresh meta, append the audit entry, commit; the planned result. Nothing is written when
        the plan holds no operations."""

        async def attempt() -> T:
            meta = await self.reader.meta_item(dialogue_id)
            planned = await plan(meta)
            if not planned.operations:
                return planned.result
            audit = self.audit_entry(meta, operation, _touched_items(planned.operations), planned.files)
            ops = as_puts([*planned.operations, *audit])
            try:
                check_transaction(ops)
            except ValueError as exc:
                raise StoreError(f"dialogue {dialogue_id}: {operation} is too large for one write ({exc})") from exc
            await self.items.transact(ops)
            return planned.result

        async with self.locks[dialogue_id]:
            return await retry_lost_races(
                attempt, f"dialogue {dialogue_id}: {operation} lost {MAX_ATTEMPTS} races with other writers"
            )

    def audit_entry(
        self, meta: Item, operation: str, written: list[Item], files: dict[str, str]
    ) -> tuple[Put, Rewrite]:
        """The Put of the audit entry recording `written` (items, or bare keys of deleted ones), and the rewrite
        of `meta` that moves the chain's head onto it."""
        seq = int(meta.get("audit_seq", 0)) + 1
        dialogue_id = dialogue_of(meta["pk"])
        entry = AuditEntry(
            seq=seq,
            ts=iso(self.clock()),
            principal=self.principal,
            operation=operation,
            keys=sorted(i["sk"] for i in written),
            key_id=f"dek#{dialogue_id}#{meta['dek_version']}",
            envelopes_sha256=envelopes_digest([envelope_hash(i) for i in written if "content_encrypted" in i]),
            files=dict(sorted(files.items())),
            previous=meta.get("audit_head", GENESIS),
        )
        entry = replace(entry, hash=entry_hash(entry))
        item = {"pk": meta["pk"], "sk": f"audit#{seq:08d}", "tenant": self.tenant}
        item.update(trail_codec.encode_audit(dialogue_id, entry).clear)
        return Put(item, ABSENT), Rewrite(meta, {"audit_seq": seq, "audit_head": entry.hash})


async def retry_lost_races(attempt: Callable[[], Awaitable[T]], lost: str) -> T:
    """`attempt()`, run again after a jittered, growing pause each time it loses a race; ConflictError(`lost`)
    after MAX_ATTEMPTS losses."""
    for n in range(MAX_ATTEMPTS):
        try:
            return await attempt()
        except ConflictError:  # ConditionFailed included: another writer moved first, so plan again on fresh state
            await asyncio.sleep(random.uniform(0, 0.005 * 2**n))
    raise ConflictError(lost)


def as_puts(ops: list[Operation | Rewrite]) -> list[Operation]:
    """Fold rewrites of one item together (a transaction touches an item once) and turn them into Puts."""
    merged: dict[str, Rewrite] = {}
    order: list[str | Operation] = []
    for op in ops:
        if isinstance(op, Rewrite):
            sk = op.base["sk"]
            if sk in merged:
                earlier = merged[sk]
                op = Rewrite(earlier.base, {**earlier.set, **op.set}, earlier.remove + op.remove)
            else:
                order.append(sk)
            merged[sk] = op
        else:
            order.append(op)
    return [
        Put(merged[entry].item(), equals(MAC_ATTRIBUTE, merged[entry].base.get(MAC_ATTRIBUTE)))
        if isinstance(entry, str)
        else entry
        for entry in order
    ]


def _touched_items(ops: list[Operation | Rewrite]) -> list[Item]:
    """Items a write stores (puts and rewrites) and the bare keys of those it deletes, for its audit entry."""
    touched: list[Item] = []
    for op in ops:
        if isinstance(op, Put):
            touched.append(op.item)
        elif isinstance(op, Rewrite):
            touched.append(op.item())
        else:
            touched.append({"pk": op.pk, "sk": op.sk})
    return touched


def grouped(things: list[T], size: Callable[[T], int], most: int) -> list[list[T]]:
    """`things` in order, in groups of at most `most` of them and TRANSACTION_BYTES by `size`."""
    groups: list[list[T]] = []
    total = 0
    for thing in things:
        if not groups or len(groups[-1]) == most or total + size(thing) > TRANSACTION_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(thing)
        total += size(thing)
    return groups
