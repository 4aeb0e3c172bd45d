"""A dialogue's data keys over time: rotation to a new version, the sweep that re-encrypts the rest, and erasure."""

from __future__ import annotations

from collections.abc import Iterable

from concord.store.audited_write import CHUNK_ACTIONS, AuditedWriter, Planner, Rewrite, WritePlan, grouped
from concord.store.backends.base import ABSENT, Delete, Item, Operation, Put, item_size
from concord.store.clock import iso
from concord.store.codec import Record
from concord.store.ids import dialogue_of, partition_key
from concord.store.sealing import Sealer


class KeyRotation:
    """Rotates, sweeps and destroys the data keys of one tenant's dialogues, each step an audited write."""

    def __init__(self, writer: AuditedWriter, sealer: Sealer) -> None:
        self.writer = writer
        self.sealer = sealer
        self.items = writer.items
        self.tenant = writer.tenant

    async def rotate_key(self, dialogue_id: str) -> int:
        """Create the next data key version; new writes use it, old items still open."""

        async def plan(meta: Item) -> WritePlan[int]:
            version = int(meta["dek_version"]) + 1
            epoch = int(meta.get("epoch", 1))
            dek, wrapped = await self.sealer.keys.new_dek(self.tenant, epoch, dialogue_id, version)
            self.sealer.deks.put(dialogue_id, version, dek)
            item = {
                "pk": meta["pk"],
                "sk": f"dek#{version}",
                "tenant": self.tenant,
                "type": "dek",
                "version": version,
                "created_at": iso(self.writer.clock()),
                "content_encrypted": wrapped.ciphertext,
                "content_nonce": wrapped.nonce,
                "key_id": wrapped.wrapping_key,
            }
            return WritePlan([Put(item, ABSENT), Rewrite(meta, {"dek_version": version})], version)

        return await self.writer.write(dialogue_id, "rotate_key", plan)

    async def sweep_keys(self, dialogue_id: str, batch_size: int = 40) -> int:
        """Re-encrypt items still under an older key version; resumable. Returns items rewritten."""
        if not 1 <= batch_size <= CHUNK_ACTIONS:
            raise ValueError(f"batch_size must be between 1 and {CHUNK_ACTIONS}, not {batch_size}")
        rewritten = 0
        while True:
            meta = await self.writer.reader.meta_item(dialogue_id)
            current = f"dek#{dialogue_id}#{meta['dek_version']}"
            items = await self.items.query(partition_key(dialogue_id), consistent=True)
            stale = [
                i
                for i in items
                if "content_encrypted" in i and str(i.get("key_id", "")).startswith("dek#") and i["key_id"] != current
            ]
            if not stale:
                return rewritten
            chunk = [i["sk"] for i in grouped(stale, item_size, batch_size)[0]]
            await self.writer.write(dialogue_id, "sweep_keys", self._resealing(chunk))
            rewritten += len(chunk)

    def _resealing(self, sks: list[str]) -> Planner[None]:
        """A plan to rewrite the items at `sks` sealed under the current key; items already under it are left alone."""

        async def plan(meta: Item) -> WritePlan[None]:
            ops: list[Operation | Rewrite] = []
            target = f"dek#{dialogue_of(meta['pk'])}#{meta['dek_version']}"
            for sk in sks:
                # Only the envelope changes; the rewrite is conditional on the item's MAC, so a
                # concurrent status change makes it retry (re-reading the item) instead of being undone.
                current = meta if sk == "meta" else await self.items.get(meta["pk"], sk)
                if current is None or current.get("key_id") == target:
                    continue
                record = Record(current["pk"], sk, {}, await self.sealer.open(current, meta))
                sealed = await self.sealer.seal(meta, record)
                ops.append(Rewrite(current, {k: v for k, v in sealed.items() if k not in ("pk", "sk", "tenant")}))
            return WritePlan(ops, None)

        return plan

    async def destroy_keys(self, dialogue_id: str, versions: Iterable[int] | None = None) -> list[int]:
        """Crypto-erase: delete data keys (all by default); content becomes unreadable, metadata stays."""
        chosen_versions = None if versions is None else set(versions)

        async def plan(meta: Item) -> WritePlan[list[int]]:
            deks = await self.items.query(meta["pk"], "dek#", consistent=True)
            chosen = [int(i["sk"].split("#")[1]) for i in deks]
            if chosen_versions is not None:
                chosen = [v for v in chosen if v in chosen_versions]
            return WritePlan([Delete(meta["pk"], f"dek#{v}") for v in chosen], chosen)

        destroyed = await self.writer.write(dialogue_id, "destroy_keys", plan)
        self.sealer.deks.forget(dialogue_id)
        return destroyed
