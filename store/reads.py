"""The reads of one dialogue partition (AP1–AP8): every item's signature checked, its envelope opened."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from concord.store import codec, trail_codec
from concord.store.audit import GENESIS
from concord.store.backends.base import Item, StoredRead
from concord.store.codec import round_key
from concord.store.crypto.signing import SignedBackend
from concord.store.errors import IntegrityError, InvalidArgument, NotFound
from concord.store.ids import (
    ENTITY_KINDS,
    KIND_BY_PREFIX,
    check_dialogue_id,
    entity_sk,
    parse_display_id,
    partition_key,
)
from concord.store.model import Dialogue, Entity, Event, Expert, Ref, Round, Verdict
from concord.store.rules import gate
from concord.store.sealing import Sealer
from concord.store.snapshot import Snapshot


def owned(tenant: str, dialogue_id: str, item: Item | None) -> Item:
    """The item, if it exists and belongs to `tenant`; else NotFound (another tenant's dialogue does not exist)."""
    if item is None or item.get("tenant") != tenant:
        raise NotFound(f"dialogue {dialogue_id} not found")
    return item


async def owned_meta(items: SignedBackend, tenant: str, dialogue_id: str) -> Item:
    """The dialogue's meta item alone (one GetItem, unchecked) if it is `tenant`'s, else NotFound: read before any
    partition read, so another tenant's id costs what a missing one does."""
    check_dialogue_id(dialogue_id)
    return owned(tenant, dialogue_id, await items.get_raw(partition_key(dialogue_id), "meta"))


def visible(item: Item, committed_rounds: int) -> bool:
    """Items written ahead of a round's commit marker are hidden until the round commits."""
    batch_round = item.get("batch_round")
    return batch_round is None or int(batch_round) < committed_rounds


def version_of(meta: Item) -> tuple[int, str]:
    """The (audit seq, audit head) a meta item records."""
    return int(meta.get("audit_seq", 0)), str(meta.get("audit_head", GENESIS))


class PartitionReader:
    """Reads of one dialogue partition, for one tenant."""

    def __init__(self, items: SignedBackend, sealer: Sealer, tenant: str) -> None:
        self.items = items
        self.sealer = sealer
        self.tenant = tenant

    async def meta_item(self, dialogue_id: str) -> Item:
        """The dialogue's meta item, its signature checked."""
        meta = await owned_meta(self.items, self.tenant, dialogue_id)
        return await self.authentic(meta, meta)

    async def authentic(self, item: Item, meta: Item, dek_items: dict[int, Item] | None = None) -> Item:
        """The item if its signature verifies; else KeyMaterialError when the key is wrong, IntegrityError otherwise."""
        if not await self.items.is_authentic(item):
            version = int(meta.get("dek_version", 1))
            # A wrong key file or tenant fails here, by name, rather than as a bad signature.
            await self.sealer.data_key(meta, version, (dek_items or {}).get(version))
            await self.items.check(item)
        return item

    async def partition_version(self, dialogue_id: str) -> tuple[int, str]:
        """AP1: the (audit seq, audit head) a partition is at; it moves with every write."""
        return version_of(await self.meta_item(dialogue_id))

    async def get_dialogue(self, dialogue_id: str) -> Dialogue:
        """AP1: the dialogue's meta."""
        meta = await self.meta_item(dialogue_id)
        return codec.decode_dialogue(meta, await self.sealer.open(meta, meta))

    async def load_partition(self, dialogue_id: str) -> Snapshot:
        """AP2: the meta item's tenant checked, then the whole partition in one consistent (paginated) query,
        decrypted."""
        await owned_meta(self.items, self.tenant, dialogue_id)
        return await self.snapshot(dialogue_id, await self.items.query_raw(partition_key(dialogue_id), consistent=True))

    async def export_dialogue(self, dialogue_id: str) -> dict[str, Any]:
        """The whole decrypted partition as plain data."""
        snap = await self.load_partition(dialogue_id)
        data = snap.comparable()
        data["audit"] = [asdict(a) for a in snap.audit]
        return data

    async def snapshot(self, dialogue_id: str, reads: list[StoredRead]) -> Snapshot:
        """The snapshot of a partition's items, each used item checked against its signature first."""
        meta, meta_json = next(((i, stored) for i, stored in reads if i["sk"] == "meta"), (None, None))
        meta = owned(self.tenant, dialogue_id, meta)
        dek_items = {int(i["sk"].split("#")[1]): i for i, _ in reads if i["sk"].startswith("dek#")}
        opener = self.sealer.opener(meta, dek_items)
        await opener.cipher(meta)  # first, so a missing key is reported as such before any signature
        signer = await self.items.signer(self.tenant)
        if not signer.holds(meta, meta_json):
            await self.authentic(meta, meta, dek_items)
        committed = int(meta.get("total_rounds", 0))
        snap = Snapshot(codec.decode_dialogue(meta, await opener.open(meta)), version=version_of(meta))
        for item, stored in reads:
            kind = item["sk"].partition("#")[0]
            if kind == "rin" or item is meta:  # mirrors of `ref#` items are for AP6 only; that read checks them
                continue
            if item.get("tenant") != self.tenant:
                await self.authentic(item, meta, dek_items)  # an edited tenant fails here, a copied item does not
                raise IntegrityError(f"dialogue {dialogue_id}, item {item['sk']}: belongs to another tenant")
            if not signer.holds(item, stored):
                await self.authentic(item, meta, dek_items)
            if kind == "dek" or not visible(item, committed):
                continue
            secret = await opener.open(item) if "content_encrypted" in item else {}
            _add_to_snapshot(snap, kind, item, secret)
        snap.events.sort(key=lambda e: (e.entity_type, e.entity_id, e.created_at, e.seq))
        return snap

    async def _query_visible(self, dialogue_id: str, prefix: str, **options: Any) -> tuple[Item, list[Item]]:
        """The meta item, and this tenant's committed items whose sk starts with `prefix`."""
        meta = await self.meta_item(dialogue_id)
        items = await self.items.query(partition_key(dialogue_id), prefix, **options)
        committed = int(meta.get("total_rounds", 0))
        return meta, [i for i in items if visible(i, committed) and i.get("tenant") == self.tenant]

    async def get_entities(self, dialogue_id: str, kind: str, round: int | None = None) -> list[Entity]:
        """AP3/AP4: entities of one kind, optionally of one round."""
        if kind not in ENTITY_KINDS:
            raise InvalidArgument(f"unknown entity kind {kind!r}; expected one of {', '.join(ENTITY_KINDS)}")
        prefix = f"{kind}#" + (f"{round_key(round)}#" if round is not None else "")
        meta, items = await self._query_visible(dialogue_id, prefix)
        return [codec.decode_entity(i, await self.sealer.open(i, meta)) for i in items]

    async def get_entity(self, dialogue_id: str, entity_id: str) -> Entity:
        """One entity by display id."""
        meta = await self.meta_item(dialogue_id)
        try:
            sk = entity_sk(entity_id)
        except ValueError as exc:
            raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}") from exc
        item = await self.items.get(partition_key(dialogue_id), sk)
        if item is None or not visible(item, int(meta.get("total_rounds", 0))):
            raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}")
        return codec.decode_entity(item, await self.sealer.open(item, meta))

    async def get_refs(self, dialogue_id: str, *, source: str | None = None, target: str | None = None) -> list[Ref]:
        """AP5 (refs out of `source`) or AP6 (refs into `target`)."""
        if (source is None) == (target is None):
            raise InvalidArgument("give exactly one of source or target")
        prefix = f"ref#{source}#" if source else f"rin#{target}#"
        _, items = await self._query_visible(dialogue_id, prefix)
        return [codec.decode_ref(i) for i in items]

    async def get_events(self, dialogue_id: str, entity_id: str) -> list[Event]:
        """AP7: the history of one entity."""
        kind = KIND_BY_PREFIX[parse_display_id(entity_id)[0]]
        meta, items = await self._query_visible(dialogue_id, f"event#{kind}#{entity_id}#")
        return [codec.decode_event(i, await self.sealer.open(i, meta)) for i in items]

    async def get_experts(self, dialogue_id: str) -> list[Expert]:
        """AP8: experts who joined the dialogue."""
        meta, items = await self._query_visible(dialogue_id, "expert#")
        return [codec.decode_expert(i, await self.sealer.open(i, meta)) for i in items]

    async def get_rounds(self, dialogue_id: str) -> list[Round]:
        """AP8: registered rounds in order."""
        meta, items = await self._query_visible(dialogue_id, "round#")
        return [codec.decode_round(i, await self.sealer.open(i, meta)) for i in items]

    async def get_verdicts(self, dialogue_id: str) -> list[Verdict]:
        """AP8: verdicts, ordered by round then creation."""
        meta, items = await self._query_visible(dialogue_id, "verdict#")
        verdicts = [codec.decode_verdict(i, await self.sealer.open(i, meta)) for i in items]
        return sorted(verdicts, key=lambda v: (v.round, v.created_at))

    async def can_converge(self, dialogue_id: str) -> tuple[bool, list[str], dict[str, Any]]:
        """The convergence gate over the last registered round's stored metrics."""
        meta, items = await self._query_visible(dialogue_id, "round#", reverse=True, limit=1)
        if not items:
            return False, ["no rounds registered"], {}
        return gate(codec.decode_round(items[0], await self.sealer.open(items[0], meta)))


def _add_to_snapshot(snap: Snapshot, kind: str, item: Item, secret: dict[str, Any]) -> None:
    """Decode one visible item into its place in the snapshot."""
    if kind == "event":
        snap.events.append(codec.decode_event(item, secret))
    elif kind in ENTITY_KINDS:
        entity = codec.decode_entity(item, secret)
        snap.entities[entity.id] = entity
    elif kind == "ref":
        snap.refs.append(codec.decode_ref(item))
    elif kind == "expert":
        expert = codec.decode_expert(item, secret)
        snap.experts[expert.slug] = expert
    elif kind == "round":
        rnd = codec.decode_round(item, secret)
        snap.rounds[rnd.number] = rnd
    elif kind == "signal":
        snap.signals.append(codec.decode_signal(item))
    elif kind == "verdict":
        snap.verdicts.append(codec.decode_verdict(item, secret))
    elif kind == "move":
        snap.moves.append(codec.decode_move(item, secret))
    elif kind in ("prompt", "answer"):
        snap.texts.append(trail_codec.decode_text(item, secret))
    elif kind == "note":
        snap.notes.append(trail_codec.decode_note(item, secret))
    elif kind == "file":
        snap.files.append(trail_codec.decode_file(item, secret))
    elif kind == "audit":
        snap.audit.append(trail_codec.decode_audit(item))
