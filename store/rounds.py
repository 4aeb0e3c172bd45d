"""Round registration: a validated batch written in chunks, made visible by one commit transaction.

Body items carry the batch's hash and round and stay hidden until the commit writes the round item
(the commit marker), so a retry never doubles totals and adopts what an interrupted attempt stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime

from concord.store import codec
from concord.store.audited_write import (
    CHUNK_ACTIONS,
    MAX_ATTEMPTS,
    TRANSACTION_BYTES,
    AuditedWriter,
    Rewrite,
    as_puts,
    grouped,
    retry_lost_races,
)
from concord.store.backends.base import ABSENT, Delete, Item, Operation, Put, equals, item_size
from concord.store.clock import epoch_ms, from_epoch_ms, iso
from concord.store.crypto.envelope import canonical_json
from concord.store.crypto.keys import blind_index
from concord.store.errors import AlreadyExists, StoreError
from concord.store.ids import dialogue_of, partition_key
from concord.store.model import RoundBatch
from concord.store.round_plan import RoundPlan, plan_round
from concord.store.sealing import Sealer


class RoundWriter:
    """Registers whole rounds, atomically and idempotently."""

    def __init__(self, writer: AuditedWriter, sealer: Sealer) -> None:
        self.writer = writer
        self.sealer = sealer
        self.items = writer.items
        self.reader = writer.reader
        self.tenant = writer.tenant

    async def register_round(self, dialogue_id: str, batch: RoundBatch) -> dict[str, str]:
        """Write a whole round atomically; returns local id -> global id. Idempotent on retry."""
        batch_hash = hashlib.sha256(canonical_json(asdict(batch))).hexdigest()

        async def attempt() -> dict[str, str]:
            reads = await self.items.query_raw(partition_key(dialogue_id), consistent=True)
            snap = await self.reader.snapshot(dialogue_id, reads)
            items = [item for item, _ in reads]
            for mirror, stored in reads:  # a retry may adopt leftover mirrors too
                if mirror["sk"].startswith("rin#"):
                    await self.items.check(mirror, stored)
            if batch.round in snap.rounds:
                return _stored_mapping(items, batch.round, batch_hash, dialogue_id)
            moment = _resumed_moment(items, batch_hash) or self.writer.clock()
            plan = plan_round(snap, batch, self.tenant, iso(moment), epoch_ms(moment))
            await self._commit(items, plan, batch, batch_hash)
            return plan.mapping

        async with self.writer.locks[dialogue_id]:
            # A concurrent writer changed the partition: reload and plan again.
            return await retry_lost_races(
                attempt, f"dialogue {dialogue_id}: round {batch.round} lost {MAX_ATTEMPTS} races"
            )

    async def _commit(self, stored: list[Item], plan: RoundPlan, batch: RoundBatch, batch_hash: str) -> None:
        """Write the body in chunks (adopting this batch's leftovers), then the commit transaction."""
        by_sk = {i["sk"]: i for i in stored}
        meta = by_sk["meta"]
        body: list[Put] = []
        written: list[Item] = []
        expert_records = []
        if plan.experts:
            secret = await self.sealer.keys.tenant_secret(self.tenant, int(meta.get("epoch", 1)), "blind-index")
            expert_records = [
                codec.encode_expert(dialogue_of(meta["pk"]), e, self.tenant, blind_index(secret, e.role))
                for e in plan.experts
            ]
        for record in plan.records + expert_records:
            record.clear.update({"batch": batch_hash, "batch_round": batch.round, "batch_ms": plan.ms})
            leftover = by_sk.get(record.sk)
            if leftover is not None and leftover.get("batch") == batch_hash:
                written.append(leftover)
                continue
            item = await self.sealer.seal(meta, record)
            condition = equals("batch", leftover.get("batch")) if leftover is not None else ABSENT
            body.append(Put(item, condition))
            written.append(item)
        commit: list[Operation | Rewrite] = []
        for record in plan.status_records:
            if record.sk.startswith("event#"):
                item = await self.sealer.seal(meta, record)
                commit.append(Put(item, ABSENT))
                written.append(item)
            else:
                commit.append(Rewrite(by_sk[record.sk], record.clear["set"], tuple(record.clear["remove"])))
        round_item = await self.sealer.seal(meta, plan.round_record)
        round_item["batch"] = batch_hash
        commit.append(Put(round_item, ABSENT))
        written.append(round_item)
        commit.append(
            Rewrite(
                meta,
                {
                    "total_rounds": batch.round + 1,
                    "updated_at": round_item["created_at"],
                    "gsi1sk": f"{round_item['created_at']}#{dialogue_of(meta['pk'])}",
                    "total_alignment": int(meta.get("total_alignment", 0)) + plan.round.totals.total,
                },
            )
        )
        written += [op.item() for op in commit if isinstance(op, Rewrite) and op.base["sk"] != "meta"]
        audit = self.writer.audit_entry(meta, f"register_round:{batch.round}", written, plan.files)
        commit_ops = as_puts([*commit, *audit])
        commit_bytes = sum(item_size(op.item) for op in commit_ops if isinstance(op, Put))
        if len(commit_ops) > CHUNK_ACTIONS or commit_bytes > TRANSACTION_BYTES:
            raise StoreError(
                f"round {batch.round} changes too many statuses at once: the commit would hold "
                f"{len(commit_ops)} actions and {commit_bytes} bytes (at most {CHUNK_ACTIONS} and {TRANSACTION_BYTES})"
            )
        # Items an interrupted attempt at another batch of this round left behind would show once it commits.
        planned = {item["sk"] for item in written}  # every body item is among them
        abandoned = [
            Delete(i["pk"], i["sk"], equals("batch", i["batch"]))
            for i in stored
            if i.get("batch_round") == batch.round and i.get("batch") != batch_hash and i["sk"] not in planned
        ]
        for deletes in grouped(abandoned, lambda _: 0, CHUNK_ACTIONS):
            await self.items.transact(deletes)
        for chunk in grouped(body, lambda put: item_size(put.item), CHUNK_ACTIONS):
            await self.items.transact(chunk)
        await self.items.transact(commit_ops)


def _stored_mapping(items: list[Item], round: int, batch_hash: str, dialogue_id: str) -> dict[str, str]:
    """The id mapping a registered round stored; AlreadyExists when it was registered from another batch."""
    rnd = next(i for i in items if i["sk"] == f"round#{round:02d}")
    if rnd.get("batch") != batch_hash:
        raise AlreadyExists(f"dialogue {dialogue_id}: round {round} is already registered with different content")
    return dict(rnd.get("mapping", {}))


def _resumed_moment(items: list[Item], batch_hash: str) -> datetime | None:
    """The planning time of an interrupted attempt at the same batch, so its keys come out identical."""
    for item in items:
        if item.get("batch") == batch_hash and "batch_ms" in item:
            return from_epoch_ms(int(item["batch_ms"]))
    return None
