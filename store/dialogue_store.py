"""DialogueStore: every read and write of one dialogue partition, sealed and audited."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from concord.store import codec
from concord.store.audit import GENESIS, AuditReport, entry_hash, envelopes_digest, verify_chain
from concord.store.backends.base import (
    ABSENT,
    Backend,
    ConditionFailed,
    Delete,
    Item,
    Operation,
    Put,
    StoredRead,
    check_transaction,
    equals,
    item_size,
)
from concord.store.codec import Record, round_key
from concord.store.crypto.envelope import canonical_json, envelope_hash, open_item, seal
from concord.store.crypto.keys import DekCache, KeyProvider, blind_index, wrapped_from_item
from concord.store.crypto.signing import MAC_ATTRIBUTE, SignedBackend
from concord.store.errors import (
    AlreadyExists,
    ConflictError,
    ConvergenceBlocked,
    IntegrityError,
    KeyMaterialError,
    NotFound,
    Problem,
    StoreError,
    ValidationFailed,
)
from concord.store.ids import (
    ENTITY_KINDS,
    KIND_BY_PREFIX,
    check_dialogue_id,
    check_expert_slug,
    check_verdict_id,
    entity_sk,
    is_display_id,
    new_dialogue_id,
    parse_display_id,
    partition_key,
)
from concord.store.model import (
    UNRESOLVED_TENSION,
    VERDICT_TYPES,
    AuditEntry,
    Dialogue,
    Entity,
    Event,
    Expert,
    Move,
    Ref,
    Round,
    RoundBatch,
    Signal,
    TextRecord,
    Verdict,
)
from concord.store.round_plan import RoundPlan, plan_round
from concord.store.rules import transition_allowed
from concord.store.snapshot import Snapshot
from concord.store.validation import ref_rule_problems, ref_shape_problems, transition_problem

Clock = Callable[[], datetime]
T = TypeVar("T")
MAX_ATTEMPTS = 8
#: Actions per chunk of a round registration (DynamoDB allows 100 per transaction).
CHUNK_ACTIONS = 90
#: Prompt/answer records per audited write (each is one action; the audit adds two).
TEXTS_PER_WRITE = 40
#: Bytes of items per transaction the store builds: under DynamoDB's 4 MB, with room for the audit entry.
TRANSACTION_BYTES = 3 * 1024 * 1024


def utc_now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def default_principal() -> str:
    """The OS user running the CLI."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"


class WriteLocks(defaultdict[str, asyncio.Lock]):
    """One lock per dialogue: writers in one process that share it queue instead of racing on the audit head."""

    def __init__(self) -> None:
        super().__init__(asyncio.Lock)


class DialogueStore:
    """Partition-scoped store: every method except `create_dialogue` takes a `dialogue_id`."""

    def __init__(
        self,
        backend: Backend,
        keys: KeyProvider,
        *,
        tenant: str = "local",
        epoch: int = 1,
        principal: str | None = None,
        clock: Clock = utc_now,
        dek_cache: DekCache | None = None,
        locks: WriteLocks | None = None,
    ) -> None:
        self.backend = backend
        self.items = SignedBackend(backend, keys, epoch)
        self.keys = keys
        self.tenant = tenant
        self.epoch = epoch
        self.principal = principal or default_principal()
        self.clock = clock
        self.deks = dek_cache or DekCache()
        self._locks = locks if locks is not None else WriteLocks()

    # --- keys and sealing --------------------------------------------------------------

    async def _dek(self, dialogue: Dialogue | Item, version: int, dek_item: Item | None = None) -> bytes:
        dialogue_id = dialogue.id if isinstance(dialogue, Dialogue) else codec_dialogue_id(dialogue)
        epoch = dialogue.epoch if isinstance(dialogue, Dialogue) else int(dialogue.get("epoch", 1))
        cached = self.deks.get(dialogue_id, version)
        if cached is not None:
            return cached
        if dek_item is None:
            dek_item = await self.items.get_raw(
                partition_key(dialogue_id), f"dek#{version}"
            )  # the unwrap authenticates it
        if dek_item is None:
            raise KeyMaterialError(f"dialogue {dialogue_id}: data key v{version} is gone (destroyed or never created)")
        dek = await self.keys.unwrap(self.tenant, epoch, dialogue_id, version, wrapped_from_item(dek_item))
        self.deks.put(dialogue_id, version, dek)
        return dek

    async def _seal(self, meta: Item, record: Record) -> Item:
        item: Item = {"pk": record.pk, "sk": record.sk, "tenant": self.tenant, **record.clear}
        if record.secret is not None:
            version = int(meta["dek_version"])
            dek = await self._dek(meta, version)
            key_id = f"dek#{codec_dialogue_id(meta)}#{version}"
            item.update(seal(dek, key_id, record.pk, record.sk, record.secret).attributes())
        return item

    async def _open(self, item: Item, meta: Item) -> dict[str, Any]:
        return open_item(await self._dek(meta, _key_version(item)), item)

    # --- reads -------------------------------------------------------------------------

    def _check_tenant(self, dialogue_id: str, item: Item | None) -> Item:
        if item is None or item.get("tenant") != self.tenant:
            raise NotFound(f"dialogue {dialogue_id} not found")
        return item

    async def _meta_item(self, dialogue_id: str) -> Item:
        check_dialogue_id(dialogue_id)
        meta = self._check_tenant(dialogue_id, await self.items.get_raw(partition_key(dialogue_id), "meta"))
        return await self._authentic(meta, meta)

    async def _authentic(self, item: Item, meta: Item, deks: dict[int, Item] | None = None) -> Item:
        """The item if its signature verifies; else KeyMaterialError when the key is wrong, IntegrityError otherwise."""
        if not await self.items.is_authentic(item):
            version = int(meta.get("dek_version", 1))
            await self._dek(meta, version, (deks or {}).get(version))  # a wrong key file or tenant fails here, by name
            await self.items.check(item)
        return item

    async def partition_version(self, dialogue_id: str) -> tuple[int, str]:
        """AP1: the (audit seq, audit head) a partition is at; it moves with every write."""
        return _version(await self._meta_item(dialogue_id))

    async def get_dialogue(self, dialogue_id: str) -> Dialogue:
        """AP1: the dialogue's meta."""
        meta = await self._meta_item(dialogue_id)
        return codec.decode_dialogue(meta, await self._open(meta, meta))

    async def load_partition(self, dialogue_id: str) -> Snapshot:
        """AP2: the whole partition in one consistent (paginated) query, decrypted."""
        check_dialogue_id(dialogue_id)
        return await self._snapshot(
            dialogue_id, await self.items.query_raw(partition_key(dialogue_id), consistent=True)
        )

    async def _snapshot(self, dialogue_id: str, reads: list[StoredRead]) -> Snapshot:
        """The snapshot of a partition's items, each used item checked against its signature first."""
        meta, meta_json = next(((i, stored) for i, stored in reads if i["sk"] == "meta"), (None, None))
        meta = self._check_tenant(dialogue_id, meta)
        deks = {int(i["sk"].split("#")[1]): i for i, _ in reads if i["sk"].startswith("dek#")}
        ciphers = {}

        async def add_cipher(sealed: Item) -> None:
            version = _key_version(sealed)
            ciphers[sealed["key_id"]] = AESGCM(await self._dek(meta, version, deks.get(version)))

        await add_cipher(meta)  # first, so a missing key is reported as such before any signature check
        signer = await self.items.signer(self.tenant)
        if not signer.holds(meta, meta_json):
            await self._authentic(meta, meta, deks)
        committed = int(meta.get("total_rounds", 0))
        snap = Snapshot(codec.decode_dialogue(meta, open_item(ciphers[meta["key_id"]], meta)), version=_version(meta))
        for item, stored in reads:
            kind = item["sk"].partition("#")[0]
            if kind == "rin" or item is meta:  # mirrors of `ref#` items are for AP6 only; that read checks them
                continue
            if item.get("tenant") != self.tenant:
                await self._authentic(item, meta, deks)  # an edited tenant fails here, a copied item does not
                raise IntegrityError(f"dialogue {dialogue_id}, item {item['sk']}: belongs to another tenant")
            if not signer.holds(item, stored):
                await self._authentic(item, meta, deks)
            if kind == "dek" or not _visible(item, committed):
                continue
            secret = {}
            if "content_encrypted" in item:
                cipher = ciphers.get(item.get("key_id"))
                if cipher is None:
                    await add_cipher(item)
                    cipher = ciphers[item["key_id"]]
                secret = open_item(cipher, item)
            _add_to_snapshot(snap, kind, item, secret)
        snap.events.sort(key=lambda e: (e.entity_type, e.entity_id, e.created_at, e.seq))
        return snap

    async def _query_visible(self, dialogue_id: str, prefix: str, **kwargs: Any) -> tuple[Item, list[Item]]:
        meta = await self._meta_item(dialogue_id)
        items = await self.items.query(partition_key(dialogue_id), prefix, **kwargs)
        committed = int(meta.get("total_rounds", 0))
        return meta, [i for i in items if _visible(i, committed) and i.get("tenant") == self.tenant]

    async def get_entities(self, dialogue_id: str, kind: str, round: int | None = None) -> list[Entity]:
        """AP3/AP4: entities of one kind, optionally of one round."""
        if kind not in ENTITY_KINDS:
            raise ValueError(f"unknown entity kind {kind!r}; expected one of {', '.join(ENTITY_KINDS)}")
        prefix = f"{kind}#" + (f"{round_key(round)}#" if round is not None else "")
        meta, items = await self._query_visible(dialogue_id, prefix)
        return [codec.decode_entity(i, await self._open(i, meta)) for i in items]

    async def get_entity(self, dialogue_id: str, entity_id: str) -> Entity:
        """One entity by display id."""
        meta = await self._meta_item(dialogue_id)
        try:
            sk = entity_sk(entity_id)
        except ValueError as exc:
            raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}") from exc
        item = await self.items.get(partition_key(dialogue_id), sk)
        if item is None or not _visible(item, int(meta.get("total_rounds", 0))):
            raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}")
        return codec.decode_entity(item, await self._open(item, meta))

    async def get_refs(self, dialogue_id: str, *, source: str | None = None, target: str | None = None) -> list[Ref]:
        """AP5 (refs out of `source`) or AP6 (refs into `target`)."""
        if (source is None) == (target is None):
            raise ValueError("give exactly one of source or target")
        prefix = f"ref#{source}#" if source else f"rin#{target}#"
        _, items = await self._query_visible(dialogue_id, prefix)
        return [codec.decode_ref(i) for i in items]

    async def get_events(self, dialogue_id: str, entity_id: str) -> list[Event]:
        """AP7: the history of one entity."""
        kind = KIND_BY_PREFIX[parse_display_id(entity_id)[0]]
        meta, items = await self._query_visible(dialogue_id, f"event#{kind}#{entity_id}#")
        return [codec.decode_event(i, await self._open(i, meta)) for i in items]

    async def get_experts(self, dialogue_id: str) -> list[Expert]:
        """AP8: experts who joined the dialogue."""
        meta, items = await self._query_visible(dialogue_id, "expert#")
        return [codec.decode_expert(i, await self._open(i, meta)) for i in items]

    async def get_rounds(self, dialogue_id: str) -> list[Round]:
        """AP8: registered rounds in order."""
        meta, items = await self._query_visible(dialogue_id, "round#")
        return [codec.decode_round(i, await self._open(i, meta)) for i in items]

    async def get_convergence_signals(self, dialogue_id: str, round: int | None = None) -> list[Signal]:
        """AP8: converge signals, optionally of one round."""
        prefix = "signal#" + (f"{round_key(round)}#" if round is not None else "")
        _, items = await self._query_visible(dialogue_id, prefix)
        return [codec.decode_signal(i) for i in items]

    async def get_verdicts(self, dialogue_id: str) -> list[Verdict]:
        """AP8: verdicts, ordered by round then creation."""
        meta, items = await self._query_visible(dialogue_id, "verdict#")
        verdicts = [codec.decode_verdict(i, await self._open(i, meta)) for i in items]
        return sorted(verdicts, key=lambda v: (v.round, v.created_at))

    async def get_moves(self, dialogue_id: str) -> list[Move]:
        """AP8: dialogue moves."""
        meta, items = await self._query_visible(dialogue_id, "move#")
        return [codec.decode_move(i, await self._open(i, meta)) for i in items]

    async def get_texts(self, dialogue_id: str, kind: str, round: int | None = None) -> list[TextRecord]:
        """AP8: prompt or answer records, optionally of one round."""
        if kind not in ("prompt", "answer"):
            raise ValueError("kind must be 'prompt' or 'answer'")
        prefix = f"{kind}#" + (f"{round_key(round)}#" if round is not None else "")
        meta, items = await self._query_visible(dialogue_id, prefix)
        return [codec.decode_text(i, await self._open(i, meta)) for i in items]

    async def get_scoreboard(self, dialogue_id: str) -> list[Round]:
        """Rounds with their stored metrics; totals are derived from per-expert scores."""
        return await self.get_rounds(dialogue_id)

    async def can_converge(self, dialogue_id: str) -> tuple[bool, list[str], dict[str, Any]]:
        """The convergence gate over the last registered round's stored metrics."""
        _, items = await self._query_visible(dialogue_id, "round#", reverse=True, limit=1)
        if not items:
            return False, ["no rounds registered"], {}
        return gate(codec.decode_round(items[0], {}))

    async def get_dialogue_progress(self, dialogue_id: str) -> dict[str, Any]:
        """Round-by-round velocity and converge %, open/resolved tension counts, and the gate."""
        snap = await self.load_partition(dialogue_id)
        tensions = snap.of_kind("tension")
        ok, blockers, _ = gate(snap.last_round) if snap.last_round else (False, ["no rounds registered"], {})
        return {
            "rounds": [
                {
                    "round": r.number,
                    "score": r.totals.total,
                    "velocity": r.velocity,
                    "converge_percent": r.converge_percent,
                }
                for r in snap.rounds.values()
            ],
            "open_tensions": sum(t.status in UNRESOLVED_TENSION for t in tensions),
            "resolved_tensions": sum(t.status == "resolved" for t in tensions),
            "converged": ok,
            "blockers": blockers,
        }

    async def export_dialogue(self, dialogue_id: str) -> dict[str, Any]:
        """The whole decrypted partition as plain data."""
        snap = await self.load_partition(dialogue_id)
        data = snap.comparable()
        data["audit"] = [asdict(a) for a in snap.audit]
        return data

    # --- the write path: one transaction per operation, audited ------------------------

    async def _write(
        self,
        dialogue_id: str,
        operation: str,
        build: Callable[[Item], Awaitable[tuple[list[Operation], dict[str, str]]]],
    ) -> None:
        """Build the operations against fresh meta, append the audit entry, commit; retry lost races."""
        async with self._locks[dialogue_id]:
            for attempt in range(MAX_ATTEMPTS):
                meta = await self._meta_item(dialogue_id)
                ops, files = await build(meta)
                if not ops:
                    return
                ops = _as_puts(ops + self._audit_ops(meta, operation, ops, files))
                try:
                    check_transaction(ops)
                except ValueError as exc:
                    raise StoreError(f"dialogue {dialogue_id}: {operation} is too large for one write ({exc})") from exc
                try:
                    await self.items.transact(ops)
                    return
                except (ConditionFailed, ConflictError):
                    await _backoff(attempt)  # another writer moved first: rebuild against fresh state
            raise ConflictError(f"dialogue {dialogue_id}: {operation} lost {MAX_ATTEMPTS} races with other writers")

    def _audit_ops(
        self, meta: Item, operation: str, ops: list[Operation | Rewrite], files: dict[str, str]
    ) -> list[Operation | Rewrite]:
        deleted = [{"pk": op.pk, "sk": op.sk} for op in ops if isinstance(op, Delete)]
        return self._audit_ops_for(meta, operation, _written_items(ops) + deleted, files)

    def _audit_ops_for(
        self, meta: Item, operation: str, written: list[Item], files: dict[str, str]
    ) -> list[Operation | Rewrite]:
        seq = int(meta.get("audit_seq", 0)) + 1
        now = iso(self.clock())
        entry = AuditEntry(
            seq=seq,
            ts=now,
            principal=self.principal,
            operation=operation,
            keys=sorted(i["sk"] for i in written),
            key_id=f"dek#{codec_dialogue_id(meta)}#{meta['dek_version']}",
            envelopes_sha256=envelopes_digest([envelope_hash(i) for i in written if "content_encrypted" in i]),
            files=dict(sorted(files.items())),
            previous=meta.get("audit_head", GENESIS),
        )
        entry = replace(entry, hash=entry_hash(entry))
        item = {
            "pk": meta["pk"],
            "sk": f"audit#{seq:08d}",
            "tenant": self.tenant,
            **codec.encode_audit(codec_dialogue_id(meta), entry).clear,
        }
        return [Put(item, ABSENT), Rewrite(meta, {"audit_seq": seq, "audit_head": entry.hash})]

    async def create_dialogue(
        self,
        title: str,
        question: str,
        *,
        dialogue_id: str | None = None,
        origin: str = "live",
        output_dir: str | None = None,
        background: dict[str, Any] | None = None,
        pool: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> str:
        """Allocate a fresh dialogue id by conditional put and write its meta and first data key."""
        if not title.strip():
            raise ValidationFailed(
                [Problem("missing_field", "a dialogue needs a title", "title", "give a short title")]
            )
        if not question.strip():
            raise ValidationFailed(
                [Problem("missing_field", "a dialogue needs a question", "question", "state the question")]
            )
        for _ in range(3 if dialogue_id is None else 1):
            new_id = check_dialogue_id(dialogue_id or new_dialogue_id(title))
            now = iso(self.clock())
            dialogue = Dialogue(
                id=new_id,
                tenant=self.tenant,
                title=title,
                question=question,
                created_at=now,
                updated_at=now,
                epoch=self.epoch,
                origin=origin,
                output_dir=output_dir,
                background=background,
                pool=pool,
                settings=settings or {},
            )
            dek, wrapped = await self.keys.new_dek(self.tenant, self.epoch, new_id, 1)
            self.deks.put(new_id, 1, dek)
            meta_record = codec.encode_dialogue(dialogue)
            meta_record.clear.update({"audit_seq": 0, "audit_head": GENESIS})
            meta_stub = {"pk": meta_record.pk, "sk": "meta", "tenant": self.tenant, **meta_record.clear}
            meta_item = await self._seal(meta_stub, meta_record)
            dek_item = {
                "pk": meta_record.pk,
                "sk": "dek#1",
                "tenant": self.tenant,
                "type": "dek",
                "version": 1,
                "created_at": now,
                "content_encrypted": wrapped.ciphertext,
                "content_nonce": wrapped.nonce,
                "key_id": wrapped.wrapping_key,
            }
            audit = self._audit_ops_for(meta_stub, "create_dialogue", [meta_item, dek_item], {})
            meta_item.update({"audit_seq": 1, "audit_head": audit[0].item["hash"]})  # type: ignore[union-attr]
            try:
                await self.items.transact([Put(meta_item, ABSENT), Put(dek_item, ABSENT), audit[0]])
                return new_id
            except ConditionFailed:
                self.deks.forget(new_id)
                if dialogue_id is not None:
                    raise AlreadyExists(f"dialogue {dialogue_id} already exists") from None
        raise ConflictError("could not allocate a fresh dialogue id")

    async def set_dialogue_status(self, dialogue_id: str, status: str) -> None:
        """Change the dialogue status (and its GSI1 keys)."""
        from concord.store.model import DIALOGUE_STATUSES

        if status not in DIALOGUE_STATUSES:
            raise ValidationFailed(
                [
                    Problem(
                        "invalid_status",
                        f"unknown dialogue status {status!r}",
                        "status",
                        f"one of {', '.join(DIALOGUE_STATUSES)}",
                    )
                ]
            )

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            if meta["status"] == status:
                return [], {}
            now = iso(self.clock())
            keys = codec.status_index(self.tenant, status, now, dialogue_id)
            return [Rewrite(meta, {"status": status, "updated_at": now, **keys})], {}

        await self._write(dialogue_id, f"set_status:{status}", build)

    async def register_expert(self, dialogue_id: str, expert: Expert) -> bool:
        """Register an expert once; False if it was already registered."""
        check_expert_slug(expert.slug)
        created = True

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            nonlocal created
            if await self.items.get(meta["pk"], f"expert#{expert.slug}") is not None:
                created = False
                return [], {}
            item = await self._expert_item(meta, expert)
            return [Put(item, ABSENT)], {}

        await self._write(dialogue_id, "register_expert", build)
        return created

    async def _expert_item(self, meta: Item, expert: Expert) -> Item:
        secret = await self.keys.tenant_secret(self.tenant, int(meta.get("epoch", 1)), "blind-index")
        record = codec.encode_expert(
            codec_dialogue_id(meta),
            replace(expert, created_at=expert.created_at or iso(self.clock())),
            self.tenant,
            blind_index(secret, expert.role),
        )
        return await self._seal(meta, record)

    async def record_convergence_signal(self, dialogue_id: str, round: int, expert: str) -> bool:
        """Record one expert's converge signal for a round; False if already recorded."""
        check_expert_slug(expert)
        written = True

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            nonlocal written
            record = codec.encode_signal(dialogue_id, Signal(round, expert, iso(self.clock())))
            if await self.items.get(record.pk, record.sk) is not None:
                written = False
                return [], {}
            return [Put(await self._seal(meta, record), ABSENT)], {}

        await self._write(dialogue_id, "record_signal", build)
        return written

    async def record_text(self, dialogue_id: str, text: TextRecord) -> bool:
        """Store a write-once prompt or answer; False if the same text was already stored."""
        return await self.record_texts(dialogue_id, [text]) == 1

    async def record_texts(self, dialogue_id: str, texts: list[TextRecord]) -> int:
        """Store write-once prompts and answers in audited writes that each fit one transaction; returns how many were new.

        A text already stored with the same content is skipped; with other content it is refused.
        """
        prepared = []
        for text in texts:
            if text.kind not in ("prompt", "answer"):
                raise ValueError("kind must be 'prompt' or 'answer'")
            check_expert_slug(text.expert)
            digest = hashlib.sha256(text.text.encode()).hexdigest()
            prepared.append(replace(text, sha256=digest, created_at=text.created_at or iso(self.clock())))
        written = 0
        records = [codec.encode_text(dialogue_id, text) for text in prepared]
        for chunk in _grouped(records, _sealed_size, TEXTS_PER_WRITE):
            new: list[Record] = []

            async def build(
                meta: Item, chunk: list[Record] = chunk, new: list[Record] = new
            ) -> tuple[list[Operation], dict[str, str]]:
                existing = await self._existing(meta["pk"], chunk)
                new[:] = [record for record in chunk if record.sk not in existing]
                for record in chunk:
                    if record.sk in existing and existing[record.sk].get("sha256") != record.clear["sha256"]:
                        raise AlreadyExists(f"dialogue {dialogue_id}: {record.sk} is already stored with other text")
                files = {r.secret["path"]: r.clear["sha256"] for r in new if r.secret and r.secret.get("path")}
                return [Put(await self._seal(meta, record), ABSENT) for record in new], files

            await self._write(dialogue_id, "record_" + "+".join(sorted({r.clear["type"] for r in chunk})), build)
            written += len(new)
        return written

    async def _existing(self, pk: str, records: list[Record]) -> dict[str, Item]:
        """Stored items at these records' keys: a GetItem each for a few, one prefix query per kind and round for many."""
        if len(records) <= 2:
            found = [await self.items.get(pk, r.sk) for r in records]
            return {item["sk"]: item for item in found if item is not None}
        wanted = {r.sk for r in records}
        items: dict[str, Item] = {}
        for prefix in sorted({"#".join(r.sk.split("#", 2)[:2]) + "#" for r in records}):
            items.update({i["sk"]: i for i in await self.items.query(pk, prefix, consistent=True) if i["sk"] in wanted})
        return items

    async def register_ref(self, dialogue_id: str, source: str, ref_type: str, target: str) -> Ref:
        """Register one validated ref (and its mirror); a duplicate is a no-op returning the first."""
        result: list[Ref] = []

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            problems = ref_shape_problems("ref", source, ref_type, target)
            existing: dict[str, bool] = {}
            if not problems:
                for field, value in (("source", source), ("target", target)):
                    item = await self.items.get(meta["pk"], entity_sk(value))
                    existing[value] = item is not None and _visible(item, int(meta.get("total_rounds", 0)))
                    if not existing[value]:
                        problems.append(
                            Problem(
                                "target_not_found",
                                f"{value} does not exist in dialogue {dialogue_id}",
                                f"ref.{field}",
                                "register the entity first or fix the id",
                            )
                        )
            if not problems:
                problems += ref_rule_problems("ref", source, ref_type, target)
            if problems:
                raise ValidationFailed(problems)
            stored = await self.items.get(meta["pk"], f"ref#{source}#{ref_type}#{target}")
            if stored is not None:
                result.append(codec.decode_ref(stored))
                return [], {}
            ref = Ref(source, ref_type, target, iso(self.clock()))
            result.append(ref)
            out, mirror = codec.ref_records(dialogue_id, ref)
            return [Put(await self._seal(meta, out), ABSENT), Put(await self._seal(meta, mirror), ABSENT)], {}

        await self._write(dialogue_id, "register_ref", build)
        return result[-1]

    async def update_entity_status(
        self,
        dialogue_id: str,
        entity_id: str,
        status: str,
        *,
        actors: Iterable[str] = (),
        reference: str | None = None,
        reason: str | None = None,
        event_round: int | None = None,
    ) -> Entity:
        """Move an entity along its lifecycle (conditional on its current status) and log the event."""
        updated: list[Entity] = []

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            if not is_display_id(entity_id):
                raise ValidationFailed(
                    [Problem("invalid_display_id", f"{entity_id!r} is not a display id", "id", "use an id like T0101")]
                )
            item = await self.items.get(meta["pk"], entity_sk(entity_id))
            if item is None or not _visible(item, int(meta.get("total_rounds", 0))):
                raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}")
            kind = item["type"]
            if not transition_allowed(kind, item["status"], status):
                raise ValidationFailed([transition_problem("status", kind, entity_id, item["status"], status)])
            now = iso(self.clock())
            round_ = event_round if event_round is not None else max(0, int(meta.get("total_rounds", 1)) - 1)
            ops = _status_ops(meta, item, status, now, self.tenant)
            event = Event(kind, entity_id, status, round_, now, list(actors), reason, reference)
            ops.append(Put(await self._seal(meta, codec.encode_event(dialogue_id, event, _ms(self.clock()))), ABSENT))
            entity = codec.decode_entity(item, await self._open(item, meta))
            updated.append(replace(entity, status=status, updated_at=now))
            return ops, {}

        await self._write(dialogue_id, f"update_status:{entity_id}", build)
        return updated[-1]

    async def register_move(self, dialogue_id: str, move: Move) -> None:
        """Record a dialogue move (write-once)."""

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            return [Put(await self._seal(meta, codec.encode_move(dialogue_id, move)), ABSENT)], {}

        try:
            await self._write(dialogue_id, "register_move", build)
        except ConditionFailed as exc:
            raise AlreadyExists(f"move {exc.operation} already recorded") from exc

    async def register_verdict(self, dialogue_id: str, verdict: Verdict, *, force: bool = False) -> Verdict:
        """Insert a verdict (never updated); a final one passes the convergence gate unless forced."""
        check_verdict_id(verdict.id)
        if verdict.verdict_type not in VERDICT_TYPES:
            raise ValidationFailed(
                [
                    Problem(
                        "invalid_verdict_type",
                        f"unknown verdict type {verdict.verdict_type!r}",
                        "verdict_type",
                        f"one of {', '.join(VERDICT_TYPES)}",
                    )
                ]
            )
        if not verdict.recommendation.strip():
            raise ValidationFailed(
                [
                    Problem(
                        "missing_field",
                        "a verdict needs a recommendation",
                        "recommendation",
                        "state the outcome in one line",
                    )
                ]
            )
        stored: list[Verdict] = []

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            final = verdict.verdict_type == "final"
            result = replace(verdict, created_at=iso(self.clock()))
            if final:
                ok, blockers, state = await self.can_converge(dialogue_id)
                if not ok and not force:
                    raise ConvergenceBlocked(blockers, state)
                if not ok:
                    result = replace(result, forced=True, warning="FORCED CONVERGENCE: " + "; ".join(blockers))
            if await self.items.get(meta["pk"], f"verdict#{verdict.id}") is not None:
                raise AlreadyExists(
                    f"verdict {verdict.id} already exists in dialogue {dialogue_id}; verdicts are never replaced"
                )
            ops: list[Operation] = [Put(await self._seal(meta, codec.encode_verdict(dialogue_id, result)), ABSENT)]
            now = result.created_at
            if final:
                keys = codec.status_index(self.tenant, "converged", now, dialogue_id)
                ops.append(Rewrite(meta, {"status": "converged", "converged_at": now, "updated_at": now, **keys}))
            for n, rec_id in enumerate(result.adopted):
                item = await self.items.get(meta["pk"], entity_sk(rec_id)) if is_display_id(rec_id) else None
                if item is None or item["type"] != "recommendation":
                    raise ValidationFailed(
                        [
                            Problem(
                                "target_not_found",
                                f"{rec_id} is not a recommendation of this dialogue",
                                f"adopted[{n}]",
                                "list recommendation ids like R0201",
                            )
                        ]
                    )
                ops.append(Rewrite(item, {"status": "adopted", "adopted_in_verdict": verdict.id, "updated_at": now}))
                event = Event("recommendation", rec_id, "adopted", result.round, now, [], None, verdict.id, seq=n)
                ops.append(
                    Put(await self._seal(meta, codec.encode_event(dialogue_id, event, _ms(self.clock()))), ABSENT)
                )
            stored.append(result)
            return ops, {}

        await self._write(dialogue_id, f"register_verdict:{verdict.id}", build)
        return stored[-1]

    # --- rounds ------------------------------------------------------------------------

    async def register_round(self, dialogue_id: str, batch: RoundBatch) -> dict[str, str]:
        """Write a whole round atomically; returns local id -> global id. Idempotent on retry."""
        batch_hash = hashlib.sha256(canonical_json(asdict(batch))).hexdigest()
        async with self._locks[dialogue_id]:
            for attempt in range(MAX_ATTEMPTS):
                reads = await self.items.query_raw(partition_key(dialogue_id), consistent=True)
                snap = await self._snapshot(dialogue_id, reads)
                items = [item for item, _ in reads]
                for mirror, stored in reads:  # a retry may adopt leftover mirrors too
                    if mirror["sk"].startswith("rin#"):
                        await self.items.check(mirror, stored)
                meta = next(i for i in items if i["sk"] == "meta")
                done = snap.rounds.get(batch.round)
                if done is not None:
                    return _stored_mapping(items, batch.round, batch_hash, dialogue_id)
                moment = _resumed_moment(items, batch_hash) or self.clock()
                plan = plan_round(snap, batch, self.tenant, iso(moment), _ms(moment))
                try:
                    await self._commit_round(meta, items, plan, batch, batch_hash)
                    return plan.mapping
                except (ConditionFailed, ConflictError):
                    await _backoff(attempt)  # a concurrent writer changed the partition: reload and re-plan
            raise ConflictError(f"dialogue {dialogue_id}: round {batch.round} lost {MAX_ATTEMPTS} races")

    async def _commit_round(
        self, meta: Item, stored: list[Item], plan: RoundPlan, batch: RoundBatch, batch_hash: str
    ) -> None:
        by_sk = {i["sk"]: i for i in stored}
        body: list[Put] = []
        written: list[Item] = []
        expert_records = []
        if plan.experts:
            secret = await self.keys.tenant_secret(self.tenant, int(meta.get("epoch", 1)), "blind-index")
            expert_records = [
                codec.encode_expert(codec_dialogue_id(meta), e, self.tenant, blind_index(secret, e.role))
                for e in plan.experts
            ]
        for record in plan.records + expert_records:
            record.clear.update({"batch": batch_hash, "batch_round": batch.round, "batch_ms": plan.ms})
            leftover = by_sk.get(record.sk)
            if leftover is not None and leftover.get("batch") == batch_hash:
                written.append(leftover)
                continue
            item = await self._seal(meta, record)
            condition = equals("batch", leftover.get("batch")) if leftover is not None else ABSENT
            body.append(Put(item, condition))
            written.append(item)
        commit: list[Operation] = []
        for record, _prior in plan.status_records:
            if record.sk.startswith("event#"):
                item = await self._seal(meta, record)
                commit.append(Put(item, ABSENT))
                written.append(item)
            else:
                commit.append(Rewrite(by_sk[record.sk], record.clear["set"], tuple(record.clear["remove"])))
        round_item = await self._seal(meta, plan.round_record)
        round_item["batch"] = batch_hash
        commit.append(Put(round_item, ABSENT))
        written.append(round_item)
        commit.append(
            Rewrite(
                meta,
                {
                    "total_rounds": batch.round + 1,
                    "updated_at": round_item["created_at"],
                    "gsi1sk": f"{round_item['created_at']}#{codec_dialogue_id(meta)}",
                    "total_alignment": int(meta.get("total_alignment", 0)) + plan.round.totals.total,
                },
            )
        )
        written += [_rewritten(op) for op in commit if isinstance(op, Rewrite) and op.base["sk"] != "meta"]
        commit = _as_puts(commit + self._audit_ops_for(meta, f"register_round:{batch.round}", written, plan.files))
        commit_bytes = sum(item_size(op.item) for op in commit if isinstance(op, Put))
        if len(commit) > CHUNK_ACTIONS or commit_bytes > TRANSACTION_BYTES:
            raise StoreError(
                f"round {batch.round} changes too many statuses at once: the commit would hold "
                f"{len(commit)} actions and {commit_bytes} bytes (at most {CHUNK_ACTIONS} and {TRANSACTION_BYTES})"
            )
        # Items an interrupted attempt at another batch of this round left behind would show once it commits.
        planned = {item["sk"] for item in written}  # every body item is among them
        abandoned = [
            Delete(i["pk"], i["sk"], equals("batch", i["batch"]))
            for i in stored
            if i.get("batch_round") == batch.round and i.get("batch") != batch_hash and i["sk"] not in planned
        ]
        for deletes in _grouped(abandoned, lambda _: 0, CHUNK_ACTIONS):
            await self.items.transact(deletes)
        for chunk in _grouped(body, lambda put: item_size(put.item), CHUNK_ACTIONS):
            await self.items.transact(chunk)
        await self.items.transact(commit)

    # --- keys: rotation, sweep, erasure ------------------------------------------------

    async def rotate_key(self, dialogue_id: str) -> int:
        """Create the next data key version; new writes use it, old items still open."""
        new_version: list[int] = []

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            version = int(meta["dek_version"]) + 1
            dek, wrapped = await self.keys.new_dek(self.tenant, int(meta.get("epoch", 1)), dialogue_id, version)
            self.deks.put(dialogue_id, version, dek)
            item = {
                "pk": meta["pk"],
                "sk": f"dek#{version}",
                "tenant": self.tenant,
                "type": "dek",
                "version": version,
                "created_at": iso(self.clock()),
                "content_encrypted": wrapped.ciphertext,
                "content_nonce": wrapped.nonce,
                "key_id": wrapped.wrapping_key,
            }
            new_version.append(version)
            return [Put(item, ABSENT), Rewrite(meta, {"dek_version": version})], {}

        await self._write(dialogue_id, "rotate_key", build)
        return new_version[-1]

    async def sweep_keys(self, dialogue_id: str, batch_size: int = 40) -> int:
        """Re-encrypt items still under an older key version; resumable. Returns items rewritten."""
        if not 1 <= batch_size <= CHUNK_ACTIONS:
            raise ValueError(f"batch_size must be between 1 and {CHUNK_ACTIONS}, not {batch_size}")
        rewritten = 0
        while True:
            meta = await self._meta_item(dialogue_id)
            current = f"dek#{dialogue_id}#{meta['dek_version']}"
            items = await self.items.query(partition_key(dialogue_id), consistent=True)
            stale = [
                i
                for i in items
                if "content_encrypted" in i and str(i.get("key_id", "")).startswith("dek#") and i["key_id"] != current
            ]
            if not stale:
                return rewritten
            chunk = [i["sk"] for i in _grouped(stale, item_size, batch_size)[0]]

            async def build(
                fresh_meta: Item, chunk: list[str] = chunk
            ) -> tuple[list[Operation | Rewrite], dict[str, str]]:
                ops: list[Operation | Rewrite] = []
                target = f"dek#{dialogue_id}#{fresh_meta['dek_version']}"
                for sk in chunk:
                    # Only the envelope changes; the rewrite is conditional on the item's MAC, so a
                    # concurrent status change makes it retry (re-reading the item) instead of being undone.
                    current = fresh_meta if sk == "meta" else await self.items.get(fresh_meta["pk"], sk)
                    if current is None or current.get("key_id") == target:
                        continue
                    record = Record(current["pk"], sk, {}, await self._open(current, fresh_meta))
                    sealed = await self._seal(fresh_meta, record)
                    ops.append(Rewrite(current, {k: v for k, v in sealed.items() if k not in ("pk", "sk", "tenant")}))
                return ops, {}

            await self._write(dialogue_id, "sweep_keys", build)
            rewritten += len(chunk)

    async def destroy_keys(self, dialogue_id: str, versions: Iterable[int] | None = None) -> list[int]:
        """Crypto-erase: delete data keys (all by default); content becomes unreadable, metadata stays."""
        destroyed: list[int] = []

        async def build(meta: Item) -> tuple[list[Operation], dict[str, str]]:
            deks = await self.items.query(meta["pk"], "dek#", consistent=True)
            chosen = [int(i["sk"].split("#")[1]) for i in deks]
            if versions is not None:
                chosen = [v for v in chosen if v in set(versions)]
            destroyed.extend(chosen)
            return [Delete(meta["pk"], f"dek#{v}") for v in chosen], {}

        await self._write(dialogue_id, "destroy_keys", build)
        self.deks.forget(dialogue_id)
        return destroyed

    # --- audit -------------------------------------------------------------------------

    async def verify_audit(
        self, dialogue_id: str, *, files_root: Any = None, checkpoint: tuple[int, str] | None = None
    ) -> AuditReport:
        """Check the audit chain, every item's signature, that no recorded item is gone, and recorded files.

        With `checkpoint` (seq, head) from a signed checkpoint, also check the chain still extends it.
        """
        check_dialogue_id(dialogue_id)
        reads = await self.items.query_raw(partition_key(dialogue_id), consistent=True)
        raw = [item for item, _ in reads]
        meta = self._check_tenant(dialogue_id, next((i for i in raw if i["sk"] == "meta"), None))
        entries = [codec.decode_audit(i) for i in raw if i["sk"].startswith("audit#")]
        head = (int(meta.get("audit_seq", 0)), str(meta.get("audit_head", GENESIS)))
        report = verify_chain(dialogue_id, entries, recorded_head=head, files_root=files_root)
        if not report.ok:
            return report
        forged = [i["sk"] for i, stored in reads if not await self.items.is_authentic(i, stored)]
        if forged:
            return _broken(
                report,
                None,
                f"item {forged[0]}: attributes do not match their signature "
                f"(changed, inserted or replaced outside Concord; {len(forged)} item(s) in all)",
            )
        present = {i["sk"] for i in raw}
        expected: dict[str, int] = {}
        for entry in entries:
            for key in entry.keys:
                if entry.operation == "destroy_keys":
                    expected.pop(key, None)
                else:
                    expected[key] = entry.seq
        missing = sorted((seq, key) for key, seq in expected.items() if key not in present)
        if missing:
            seq, key = missing[0]
            return _broken(
                report, seq, f"item {key}, written by audit entry {seq}, is missing (deleted outside Concord)"
            )
        if checkpoint is not None:
            seq, digest = checkpoint
            if seq > len(entries) or (seq and entries[seq - 1].hash != digest):
                return _broken(
                    report,
                    min(seq, len(entries) + 1),
                    f"the chain no longer extends the checkpoint (seq {seq}): rolled back or rewritten",
                )
        return report


# --- helpers: visibility, validation, round planning -------------------------------------


def _key_version(item: Item) -> int:
    """Data-key version named by an item's key id (`dek#{dialogue}#{v}`)."""
    key_id = str(item.get("key_id", ""))
    try:
        return int(key_id.rsplit("#", 1)[1])
    except (IndexError, ValueError) as exc:
        raise IntegrityError(f"dialogue {codec_dialogue_id(item)}, item {item['sk']}: bad key id {key_id!r}") from exc


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
        snap.texts.append(codec.decode_text(item, secret))
    elif kind == "audit":
        snap.audit.append(codec.decode_audit(item))


def _grouped(things: list[T], size: Callable[[T], int], most: int) -> list[list[T]]:
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


def _sealed_size(record: Record) -> int:
    """About how many bytes a record takes once sealed: its secret fields' JSON and its clear ones."""
    return len(canonical_json(record.secret)) + len(canonical_json(record.clear))


def _version(meta: Item) -> tuple[int, str]:
    return int(meta.get("audit_seq", 0)), str(meta.get("audit_head", GENESIS))


def _broken(report: AuditReport, entry: int | None, problem: str) -> AuditReport:
    """The report marked broken at `entry` with `problem`."""
    report.ok, report.first_broken, report.problem = False, entry, problem
    return report


def codec_dialogue_id(item: Item) -> str:
    """Dialogue id of an item's partition."""
    return str(item["pk"]).removeprefix("dialogue#")


def _visible(item: Item, committed_rounds: int) -> bool:
    """Items written ahead of a round's commit marker are hidden until the round commits."""
    batch_round = item.get("batch_round")
    return batch_round is None or int(batch_round) < committed_rounds


async def _backoff(attempt: int) -> None:
    """Jittered exponential pause before retrying a write that lost a race (other process)."""
    await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _resumed_moment(items: list[Item], batch_hash: str) -> datetime | None:
    """The planning time of an interrupted attempt at the same batch, so its keys come out identical."""
    for item in items:
        if item.get("batch") == batch_hash and "batch_ms" in item:
            return datetime.fromtimestamp(int(item["batch_ms"]) / 1000, tz=UTC)
    return None


@dataclass(frozen=True)
class Rewrite:
    """A change to an item read in this write: new attribute values over `base`, some removed.

    It is stored as a whole-item Put (so the item can be signed) conditional on the MAC of the
    version it was computed from, so any concurrent change makes the write retry.
    """

    base: Item
    set: dict[str, Any]
    remove: tuple[str, ...] = ()


def _rewritten(rewrite: Rewrite) -> Item:
    item = {k: v for k, v in rewrite.base.items() if k not in rewrite.remove and k != MAC_ATTRIBUTE}
    item.update(rewrite.set)
    return item


def _as_puts(ops: list[Operation | Rewrite]) -> list[Operation]:
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
        Put(_rewritten(merged[entry]), equals(MAC_ATTRIBUTE, merged[entry].base.get(MAC_ATTRIBUTE)))
        if isinstance(entry, str)
        else entry
        for entry in order
    ]


def _written_items(ops: list[Operation | Rewrite]) -> list[Item]:
    """Items a write stores (puts and rewrites), for its audit entry."""
    return [op.item if isinstance(op, Put) else _rewritten(op) for op in ops if isinstance(op, (Put, Rewrite))]


def _status_ops(meta: Item, item: Item, status: str, now: str, tenant: str) -> list[Rewrite]:
    set_: dict[str, Any] = {"status": status, "updated_at": now}
    remove: tuple[str, ...] = ()
    if item["type"] == "tension":
        if status in UNRESOLVED_TENSION:
            set_.update(codec.open_tension_index(tenant, codec_dialogue_id(meta), codec.display_of_sk(item["sk"])))
        else:
            remove = ("gsi2pk", "gsi2sk")
    return [Rewrite(item, set_, remove)]


def gate(last: Round) -> tuple[bool, list[str], dict[str, Any]]:
    """Converged iff velocity == 0 and every answering expert signalled converge."""
    state = {
        "round": last.number,
        "velocity": last.velocity,
        "open_tensions": last.open_tensions,
        "new_perspectives": last.new_perspectives,
        "converge_percent": last.converge_percent,
        "converge_signals": last.signals,
        "answered": last.answered,
    }
    blockers = []
    if last.velocity != 0:
        blockers.append(
            f"velocity={last.velocity} (open_tensions={last.open_tensions}, new_perspectives={last.new_perspectives})"
        )
    if last.answered == 0 or last.signals < last.answered:
        blockers.append(f"converge_percent={last.converge_percent:.0f}% ({last.signals}/{last.answered})")
    return not blockers, blockers, state


def _stored_mapping(items: list[Item], round: int, batch_hash: str, dialogue_id: str) -> dict[str, str]:
    rnd = next(i for i in items if i["sk"] == f"round#{round:02d}")
    if rnd.get("batch") != batch_hash:
        raise AlreadyExists(f"dialogue {dialogue_id}: round {round} is already registered with different content")
    return dict(rnd.get("mapping", {}))
