"""The store's single writes, each one audited transaction: dialogues, texts, refs, statuses, moves, verdicts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from concord.store import codec, trail_codec
from concord.store.audit import GENESIS
from concord.store.audited_write import AuditedWriter, Rewrite, WritePlan, grouped
from concord.store.backends.base import ABSENT, Item, Operation, Put
from concord.store.clock import epoch_ms, iso
from concord.store.codec import Record
from concord.store.crypto.envelope import canonical_json
from concord.store.errors import (
    AlreadyExists,
    ConditionFailed,
    ConflictError,
    ConvergenceBlocked,
    InvalidArgument,
    NotFound,
    Problem,
    ValidationFailed,
)
from concord.store.ids import (
    check_dialogue_id,
    check_expert_slug,
    check_verdict_id,
    dialogue_of,
    display_of_sk,
    entity_sk,
    is_display_id,
    new_dialogue_id,
)
from concord.store.model import (
    DIALOGUE_STATUSES,
    UNRESOLVED_TENSION,
    VERDICT_TYPES,
    Dialogue,
    Entity,
    Event,
    ModeratorNote,
    Move,
    Ref,
    TextRecord,
    Verdict,
)
from concord.store.reads import visible
from concord.store.rules import transition_allowed
from concord.store.sealing import Sealer
from concord.store.validation import ref_rule_problems, ref_shape_problems, transition_problem

#: Prompt/answer records per audited write (each is one action; the audit adds two).
TEXTS_PER_WRITE = 40
#: UTF-8 bytes of one moderator note: guidance for the panel, not a document (grounding is for those).
MAX_NOTE_BYTES = 4000
#: Dialogue statuses a moderator note can no longer reach.
CLOSED_STATUSES = ("converged", "abandoned", "failed")


class DialogueWrites:
    """Writes of one item or a few, each planned against fresh meta and committed with its audit entry."""

    def __init__(self, writer: AuditedWriter, sealer: Sealer, *, epoch: int) -> None:
        self.writer = writer
        self.sealer = sealer
        self.items = writer.items
        self.reader = writer.reader
        self.tenant = writer.tenant
        self.clock = writer.clock
        self.epoch = epoch

    def _now(self) -> str:
        return iso(self.clock())

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
            now = self._now()
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
            dek, wrapped = await self.sealer.keys.new_dek(self.tenant, self.epoch, new_id, 1)
            self.sealer.deks.put(new_id, 1, dek)
            meta_record = codec.encode_dialogue(dialogue)
            meta_record.clear.update({"audit_seq": 0, "audit_head": GENESIS})
            meta_stub = {"pk": meta_record.pk, "sk": "meta", "tenant": self.tenant, **meta_record.clear}
            meta_item = await self.sealer.seal(meta_stub, meta_record)
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
            # The meta is new, so it carries the head itself instead of being rewritten onto it.
            audit_entry, _ = self.writer.audit_entry(meta_stub, "create_dialogue", [meta_item, dek_item], {})
            meta_item.update({"audit_seq": 1, "audit_head": audit_entry.item["hash"]})
            try:
                await self.items.transact([Put(meta_item, ABSENT), Put(dek_item, ABSENT), audit_entry])
                return new_id
            except ConditionFailed:
                self.sealer.deks.forget(new_id)
                if dialogue_id is not None:
                    raise AlreadyExists(f"dialogue {dialogue_id} already exists") from None
        raise ConflictError("could not allocate a fresh dialogue id")

    async def set_dialogue_status(self, dialogue_id: str, status: str) -> None:
        """Change the dialogue status (and its GSI1 keys)."""
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

        async def plan(meta: Item) -> WritePlan[None]:
            if meta["status"] == status:
                return WritePlan([], None)
            now = self._now()
            keys = codec.status_index(self.tenant, status, now, dialogue_id)
            return WritePlan([Rewrite(meta, {"status": status, "updated_at": now, **keys})], None)

        await self.writer.write(dialogue_id, f"set_status:{status}", plan)

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
            prepared.append(replace(text, sha256=digest, created_at=text.created_at or self._now()))
        records = [trail_codec.encode_text(dialogue_id, text) for text in prepared]
        written = 0
        for chunk in grouped(records, _sealed_size, TEXTS_PER_WRITE):

            async def plan(meta: Item, chunk: list[Record] = chunk) -> WritePlan[int]:
                existing = await self._existing(meta["pk"], chunk)
                for record in chunk:
                    if record.sk in existing and existing[record.sk].get("sha256") != record.clear["sha256"]:
                        raise AlreadyExists(f"dialogue {dialogue_id}: {record.sk} is already stored with other text")
                new = [record for record in chunk if record.sk not in existing]
                files = {r.secret["path"]: r.clear["sha256"] for r in new if r.secret and r.secret.get("path")}
                puts: list[Operation | Rewrite] = [Put(await self.sealer.seal(meta, r), ABSENT) for r in new]
                return WritePlan(puts, len(new), files)

            kinds = "+".join(sorted({r.clear["type"] for r in chunk}))
            written += await self.writer.write(dialogue_id, f"record_{kinds}", plan)
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

        async def plan(meta: Item) -> WritePlan[Ref]:
            problems = ref_shape_problems("ref", source, ref_type, target)
            if not problems:
                for field, value in (("source", source), ("target", target)):
                    item = await self.items.get(meta["pk"], entity_sk(value))
                    if item is None or not visible(item, int(meta.get("total_rounds", 0))):
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
                return WritePlan([], codec.decode_ref(stored))
            ref = Ref(source, ref_type, target, self._now())
            out, mirror = codec.ref_records(dialogue_id, ref)
            puts: list[Operation | Rewrite] = [
                Put(await self.sealer.seal(meta, out), ABSENT),
                Put(await self.sealer.seal(meta, mirror), ABSENT),
            ]
            return WritePlan(puts, ref)

        return await self.writer.write(dialogue_id, "register_ref", plan)

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

        async def plan(meta: Item) -> WritePlan[Entity]:
            if not is_display_id(entity_id):
                raise ValidationFailed(
                    [Problem("invalid_display_id", f"{entity_id!r} is not a display id", "id", "use an id like T0101")]
                )
            item = await self.items.get(meta["pk"], entity_sk(entity_id))
            if item is None or not visible(item, int(meta.get("total_rounds", 0))):
                raise NotFound(f"entity {entity_id} not found in dialogue {dialogue_id}")
            kind = item["type"]
            if not transition_allowed(kind, item["status"], status):
                raise ValidationFailed([transition_problem("status", kind, entity_id, item["status"], status)])
            now = self._now()
            round_ = event_round if event_round is not None else max(0, int(meta.get("total_rounds", 1)) - 1)
            event = Event(kind, entity_id, status, round_, now, list(actors), reason, reference)
            event_record = codec.encode_event(dialogue_id, event, epoch_ms(self.clock()))
            ops: list[Operation | Rewrite] = [
                _status_rewrite(item, status, now, self.tenant),
                Put(await self.sealer.seal(meta, event_record), ABSENT),
            ]
            entity = codec.decode_entity(item, await self.sealer.open(item, meta))
            return WritePlan(ops, replace(entity, status=status, updated_at=now))

        return await self.writer.write(dialogue_id, f"update_status:{entity_id}", plan)

    async def add_note(self, dialogue_id: str, text: str) -> ModeratorNote:
        """Add a moderator note for the first round with no prompt recorded yet; refused when empty, too long, or closed."""
        text = text.strip()
        if not text:
            raise InvalidArgument("a moderator note must not be empty")
        if len(text.encode()) > MAX_NOTE_BYTES:
            raise InvalidArgument(
                f"a moderator note holds at most {MAX_NOTE_BYTES} bytes; this one has {len(text.encode())}"
            )

        async def plan(meta: Item) -> WritePlan[ModeratorNote]:
            if meta["status"] in CLOSED_STATUSES:
                raise InvalidArgument(f"dialogue {dialogue_id} is {meta['status']}; no later round would read a note")
            round = int(meta.get("total_rounds", 0))
            if await self.items.query(meta["pk"], f"prompt#{codec.round_key(round)}#", consistent=True, limit=1):
                round += 1  # that round's prompts are already recorded: the note must not change them on resume
            earlier = await self.items.query(meta["pk"], trail_codec.note_prefix(round), consistent=True)
            note = ModeratorNote(round, len(earlier) + 1, text, self.writer.principal, self._now())
            record = trail_codec.encode_note(dialogue_id, note)
            return WritePlan([Put(await self.sealer.seal(meta, record), ABSENT)], note)

        return await self.writer.write(dialogue_id, "add_note", plan)

    async def register_move(self, dialogue_id: str, move: Move) -> None:
        """Record a dialogue move (write-once); AlreadyExists when that move is already recorded."""
        record = codec.encode_move(dialogue_id, move)

        async def plan(meta: Item) -> WritePlan[None]:
            if await self.items.get(record.pk, record.sk) is not None:
                raise AlreadyExists(f"dialogue {dialogue_id}: move {record.sk} is already recorded")
            return WritePlan([Put(await self.sealer.seal(meta, record), ABSENT)], None)

        await self.writer.write(dialogue_id, "register_move", plan)

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

        async def plan(meta: Item) -> WritePlan[Verdict]:
            final = verdict.verdict_type == "final"
            result = replace(verdict, created_at=self._now())
            if final:
                ok, blockers, state = await self.reader.can_converge(dialogue_id)
                if not ok and not force:
                    raise ConvergenceBlocked(blockers, state)
                if not ok:
                    result = replace(result, forced=True, warning="FORCED CONVERGENCE: " + "; ".join(blockers))
            if await self.items.get(meta["pk"], f"verdict#{verdict.id}") is not None:
                raise AlreadyExists(
                    f"verdict {verdict.id} already exists in dialogue {dialogue_id}; verdicts are never replaced"
                )
            verdict_record = codec.encode_verdict(dialogue_id, result)
            ops: list[Operation | Rewrite] = [Put(await self.sealer.seal(meta, verdict_record), ABSENT)]
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
                event_record = codec.encode_event(dialogue_id, event, epoch_ms(self.clock()))
                ops.append(Put(await self.sealer.seal(meta, event_record), ABSENT))
            return WritePlan(ops, result)

        return await self.writer.write(dialogue_id, f"register_verdict:{verdict.id}", plan)


def _status_rewrite(item: Item, status: str, now: str, tenant: str) -> Rewrite:
    """The rewrite of an entity to a new status; a tension enters GSI2 while unresolved and leaves it once resolved."""
    changes: dict[str, Any] = {"status": status, "updated_at": now}
    remove: tuple[str, ...] = ()
    if item["type"] == "tension":
        if status in UNRESOLVED_TENSION:
            changes.update(codec.open_tension_index(tenant, dialogue_of(item["pk"]), display_of_sk(item["sk"])))
        else:
            remove = ("gsi2pk", "gsi2sk")
    return Rewrite(item, changes, remove)


def _sealed_size(record: Record) -> int:
    """About how many bytes a record takes once sealed: its secret fields' JSON and its clear ones."""
    return len(canonical_json(record.secret)) + len(canonical_json(record.clear))
