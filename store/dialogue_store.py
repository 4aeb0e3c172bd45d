"""DialogueStore: every read and write of one dialogue partition, sealed and audited.

A facade: reads are in `reads`, single writes in `writes`, round registration in `rounds`, data keys
over time in `key_rotation`, audit verification in `verification`; all of them seal and open items
through one `sealing.Sealer` and write through one `audited_write.AuditedWriter`.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from concord.store.audit import AuditReport
from concord.store.audited_write import AuditedWriter, WriteLocks
from concord.store.backends.base import Backend
from concord.store.clock import Clock, utc_now
from concord.store.crypto.keys import DekCache, KeyProvider
from concord.store.crypto.signing import SignedBackend
from concord.store.grounding import GroundingRecords
from concord.store.key_rotation import KeyRotation
from concord.store.model import (
    Dialogue,
    Entity,
    Event,
    Expert,
    ModeratorNote,
    Move,
    RecordedFile,
    Ref,
    Round,
    RoundBatch,
    TextRecord,
    Verdict,
)
from concord.store.reads import PartitionReader
from concord.store.rounds import RoundWriter
from concord.store.sealing import Sealer
from concord.store.snapshot import Snapshot
from concord.store.verification import verify_partition
from concord.store.writes import DialogueWrites


def default_principal() -> str:
    """The OS user running the CLI."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"


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
        sealer = Sealer(self.items, keys, tenant, self.deks)
        self._reads = PartitionReader(self.items, sealer, tenant)
        writer = AuditedWriter(
            self.items,
            self._reads,
            principal=self.principal,
            clock=clock,
            locks=locks if locks is not None else WriteLocks(),
        )
        self._writes = DialogueWrites(writer, sealer, epoch=epoch)
        self._rounds = RoundWriter(writer, sealer)
        self._key_rotation = KeyRotation(writer, sealer)
        self._grounding = GroundingRecords(writer, sealer)

    # --- reads -------------------------------------------------------------------------

    async def partition_version(self, dialogue_id: str) -> tuple[int, str]:
        """AP1: the (audit seq, audit head) a partition is at; it moves with every write."""
        return await self._reads.partition_version(dialogue_id)

    async def get_dialogue(self, dialogue_id: str) -> Dialogue:
        """AP1: the dialogue's meta."""
        return await self._reads.get_dialogue(dialogue_id)

    async def load_partition(self, dialogue_id: str) -> Snapshot:
        """AP2: the whole partition in one consistent (paginated) query, decrypted."""
        return await self._reads.load_partition(dialogue_id)

    async def export_dialogue(self, dialogue_id: str) -> dict[str, Any]:
        """The whole decrypted partition as plain data."""
        return await self._reads.export_dialogue(dialogue_id)

    async def get_entities(self, dialogue_id: str, kind: str, round: int | None = None) -> list[Entity]:
        """AP3/AP4: entities of one kind, optionally of one round."""
        return await self._reads.get_entities(dialogue_id, kind, round)

    async def get_entity(self, dialogue_id: str, entity_id: str) -> Entity:
        """One entity by display id."""
        return await self._reads.get_entity(dialogue_id, entity_id)

    async def get_refs(self, dialogue_id: str, *, source: str | None = None, target: str | None = None) -> list[Ref]:
        """AP5 (refs out of `source`) or AP6 (refs into `target`)."""
        return await self._reads.get_refs(dialogue_id, source=source, target=target)

    async def get_events(self, dialogue_id: str, entity_id: str) -> list[Event]:
        """AP7: the history of one entity."""
        return await self._reads.get_events(dialogue_id, entity_id)

    async def get_experts(self, dialogue_id: str) -> list[Expert]:
        """AP8: experts who joined the dialogue."""
        return await self._reads.get_experts(dialogue_id)

    async def get_rounds(self, dialogue_id: str) -> list[Round]:
        """AP8: registered rounds in order."""
        return await self._reads.get_rounds(dialogue_id)

    async def get_verdicts(self, dialogue_id: str) -> list[Verdict]:
        """AP8: verdicts, ordered by round then creation."""
        return await self._reads.get_verdicts(dialogue_id)

    async def grounding(self, dialogue_id: str) -> dict[str, str]:
        """Name -> HMAC-SHA256 of the dialogue's grounding files, as recorded; empty when it has none."""
        return await self._grounding.recorded(dialogue_id)

    async def can_converge(self, dialogue_id: str) -> tuple[bool, list[str], dict[str, Any]]:
        """The convergence gate over the last registered round's stored metrics."""
        return await self._reads.can_converge(dialogue_id)

    # --- writes ------------------------------------------------------------------------

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
        return await self._writes.create_dialogue(
            title,
            question,
            dialogue_id=dialogue_id,
            origin=origin,
            output_dir=output_dir,
            background=background,
            pool=pool,
            settings=settings,
        )

    async def set_dialogue_status(self, dialogue_id: str, status: str) -> None:
        """Change the dialogue status (and its GSI1 keys)."""
        await self._writes.set_dialogue_status(dialogue_id, status)

    async def record_text(self, dialogue_id: str, text: TextRecord) -> bool:
        """Store a write-once prompt or answer; False if the same text was already stored."""
        return await self._writes.record_texts(dialogue_id, [text]) == 1

    async def record_texts(self, dialogue_id: str, texts: list[TextRecord]) -> int:
        """Store write-once prompts and answers; returns how many were new (same text again: skipped)."""
        return await self._writes.record_texts(dialogue_id, texts)

    async def record_files(self, dialogue_id: str, files: list[RecordedFile]) -> int:
        """Store sealed write-once copies of a recording's files; returns how many were new."""
        return await self._writes.record_files(dialogue_id, files)

    async def record_grounding(self, dialogue_id: str, files: Mapping[str, bytes]) -> dict[str, str]:
        """Record the names and HMAC-SHA256 digests of the dialogue's grounding files, sealed, in one audited write."""
        return await self._grounding.record(dialogue_id, files)

    async def register_ref(self, dialogue_id: str, source: str, ref_type: str, target: str) -> Ref:
        """Register one validated ref (and its mirror); a duplicate is a no-op returning the first."""
        return await self._writes.register_ref(dialogue_id, source, ref_type, target)

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
        return await self._writes.update_entity_status(
            dialogue_id, entity_id, status, actors=actors, reference=reference, reason=reason, event_round=event_round
        )

    async def add_note(self, dialogue_id: str, text: str) -> ModeratorNote:
        """Add a moderator note that the prompts of the next round (and every later one) carry."""
        return await self._writes.add_note(dialogue_id, text)

    async def register_move(self, dialogue_id: str, move: Move) -> None:
        """Record a dialogue move (write-once); AlreadyExists when that move is already recorded."""
        await self._writes.register_move(dialogue_id, move)

    async def register_verdict(self, dialogue_id: str, verdict: Verdict, *, force: bool = False) -> Verdict:
        """Insert a verdict (never updated); a final one passes the convergence gate unless forced."""
        return await self._writes.register_verdict(dialogue_id, verdict, force=force)

    async def register_round(self, dialogue_id: str, batch: RoundBatch) -> dict[str, str]:
        """Write a whole round atomically; returns local id -> global id. Idempotent on retry."""
        return await self._rounds.register_round(dialogue_id, batch)

    # --- keys: rotation, sweep, erasure ------------------------------------------------

    async def rotate_key(self, dialogue_id: str) -> int:
        """Create the next data key version; new writes use it, old items still open."""
        return await self._key_rotation.rotate_key(dialogue_id)

    async def sweep_keys(self, dialogue_id: str, batch_size: int = 40) -> int:
        """Re-encrypt items still under an older key version; resumable. Returns items rewritten."""
        return await self._key_rotation.sweep_keys(dialogue_id, batch_size)

    async def destroy_keys(self, dialogue_id: str, versions: Iterable[int] | None = None) -> list[int]:
        """Crypto-erase: delete data keys (all by default); content becomes unreadable, metadata stays."""
        return await self._key_rotation.destroy_keys(dialogue_id, versions)

    # --- audit -------------------------------------------------------------------------

    async def verify_audit(
        self, dialogue_id: str, *, files_root: Path | None = None, checkpoint: tuple[int, str] | None = None
    ) -> AuditReport:
        """Check the audit chain, every item's signature, that no recorded item is gone, and recorded files
        (prompts and answers by their audited hashes, grounding files by their recorded HMACs).

        With `checkpoint` (seq, head) from a signed checkpoint, also check the chain still extends it.
        """
        report = await verify_partition(
            self.items, self.tenant, dialogue_id, files_root=files_root, checkpoint=checkpoint
        )
        if files_root is not None and (report.ok or report.file_problems):  # the items themselves are sound
            checked, problems = await self._grounding.problems(dialogue_id, files_root)
            report.files_checked += checked
            report.file_problems += problems
            if problems:
                report.ok, report.problem = False, report.problem or problems[0]
        return report
