"""The per-dialogue audit hash chain: vector, tamper detection at the exact entry, linearity, files (§7 check 22)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from concord.store.audit import GENESIS, entry_hash, envelopes_digest, verify_chain
from concord.store.backends.base import ABSENT, Delete, Put, equals
from concord.store.crypto.envelope import envelope_hash
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import ConditionFailed, ConflictError, ValidationFailed
from concord.store.ids import partition_key
from concord.store.model import AuditEntry, TextRecord
from concord.store.trail_codec import decode_audit
from tests.test_encrypted_store import DIALOGUE, build_dialogue, fresh_store, items_of, overwrite, sqlite_only

VECTORS = Path(__file__).resolve().parent / "vectors"
PK = partition_key(DIALOGUE)
OPERATIONS = [
    "create_dialogue",
    "register_round:0",
    "register_round:1",
    "register_verdict:V01",
    "record_prompt",
    "record_answer",
]


def audit_sk(seq: int) -> str:
    """SK of audit entry `seq`."""
    return f"audit#{seq:08d}"


async def built(store: DialogueStore) -> dict[str, dict]:
    """The standard dialogue plus two status changes; its items by sk."""
    await build_dialogue(store)
    await store.update_entity_status(DIALOGUE, "R0001", "amended", actors=["scone"])
    await store.set_dialogue_status(DIALOGUE, "converging")
    return await items_of(store.backend)


def test_entry_hash_vector() -> None:
    vector = json.loads((VECTORS / "concord.json").read_text(encoding="utf-8"))["audit_entry"]
    entry = AuditEntry(**vector["entry"])
    assert entry_hash(entry) == vector["hash"]
    assert entry_hash(replace(entry, hash="anything")) == vector["hash"]  # the hash field is not hashed
    assert entry_hash(replace(entry, principal="mallory")) != vector["hash"]


async def test_untouched_chain_verifies_and_covers_every_write(store: DialogueStore) -> None:
    items = await built(store)
    report = await store.verify_audit(DIALOGUE)
    assert report.ok and report.first_broken is None and report.problem is None
    entries = [decode_audit(items[audit_sk(n)]) for n in range(1, report.entries + 1)]
    assert [e.operation for e in entries] == OPERATIONS + ["update_status:R0001", "set_status:converging"]
    assert report.head == items["meta"]["audit_head"] == entries[-1].hash
    assert items["meta"]["audit_seq"] == len(entries) == 8
    assert entries[0].previous == GENESIS and all(
        e.previous == p.hash for p, e in zip(entries, entries[1:], strict=False)
    )
    assert {e.principal for e in entries} == {"tester"}
    round_zero = entries[1]
    assert {"round#00", "perspective#00#01", "tension#00#01", "expert#muffin", "move#00#muffin#01"} <= set(
        round_zero.keys
    )
    assert round_zero.key_id == f"dek#{DIALOGUE}#1"
    for entry in entries:  # each digest covers the envelopes exactly as stored
        if entry.operation.startswith(("register_round", "register_verdict", "record_")):
            stored = [envelope_hash(items[sk]) for sk in entry.keys if "content_encrypted" in items[sk]]
            assert entry.envelopes_sha256 == envelopes_digest(stored), entry.operation
    await store.load_partition(DIALOGUE)
    await store.get_entity(DIALOGUE, "P0001")
    assert (await store.verify_audit(DIALOGUE)).entries == 8, "reads are not audited"
    with pytest.raises(ValidationFailed):
        await store.register_ref(DIALOGUE, "P0001", "resolve", "P0002")
    assert (await store.backend.get(PK, "meta"))["audit_seq"] == 8, "a refused write leaves no entry"
    assert await store.backend.get(PK, audit_sk(9)) is None


async def test_editing_entry_k_fails_at_k(store: DialogueStore) -> None:
    items = await built(store)
    edits = {
        "principal": "mallory",
        "operation": "nothing",
        "keys": [],
        "envelopes_sha256": "0" * 64,
        "ts": "2020-01-01T00:00:00.000Z",
        "previous": GENESIS,
        "files": {"x.md": "0" * 64},
        "key_id": "dek#x#9",
    }
    for k, (field, value) in zip((1, 3, 5, 8, 2, 6, 4, 7), edits.items(), strict=False):
        await overwrite(store.backend, {**items[audit_sk(k)], field: value})
        report = await store.verify_audit(DIALOGUE)
        assert (report.ok, report.first_broken) == (False, k), (field, report.problem)
        assert f"entry {k}" in str(report.problem)
        await overwrite(store.backend, items[audit_sk(k)])
    # Re-hashing the edited entry moves the break to the next link (or to the recorded head for the last).
    k = 3
    forged = replace(decode_audit(items[audit_sk(k)]), principal="mallory")
    await overwrite(store.backend, {**items[audit_sk(k)], "principal": "mallory", "hash": entry_hash(forged)})
    report = await store.verify_audit(DIALOGUE)
    assert (report.ok, report.first_broken) == (False, k + 1)
    assert f"entry {k + 1} does not link to entry {k}" in str(report.problem)


async def test_deleting_reordering_or_truncating_is_detected_at_the_entry(store: DialogueStore) -> None:
    items = await built(store)
    for k in (1, 4, 7):
        await store.backend.transact([Delete(PK, audit_sk(k))])
        report = await store.verify_audit(DIALOGUE)
        assert (report.ok, report.first_broken) == (False, k), report.problem
        await overwrite(store.backend, items[audit_sk(k)])
    assert (await store.verify_audit(DIALOGUE)).ok
    k = 4
    first, second = items[audit_sk(k)], items[audit_sk(k + 1)]
    await store.backend.transact(
        [Put({**second, "sk": audit_sk(k)}, None), Put({**first, "sk": audit_sk(k + 1)}, None)]
    )
    report = await store.verify_audit(DIALOGUE)
    assert (report.ok, report.first_broken) == (False, k), report.problem
    await store.backend.transact([Put(first, None), Put(second, None)])
    for cut in (1, 3):  # truncating the tail: the head recorded on meta no longer matches
        await store.backend.transact([Delete(PK, audit_sk(n)) for n in range(9 - cut, 9)])
        report = await store.verify_audit(DIALOGUE)
        assert (report.ok, report.first_broken) == (False, 9 - cut)
        assert "truncated" in str(report.problem) and f"records 8 audit entries but {8 - cut} remain" in str(
            report.problem
        )


async def test_appending_on_a_stale_head_is_rejected(store: DialogueStore) -> None:
    await built(store)
    stale = await store.backend.get(PK, "meta")
    await store.register_ref(DIALOGUE, "C0001", "support", "R0001")  # another writer moves the head to 9
    seq = int(stale["audit_seq"]) + 1
    forged = {
        "pk": PK,
        "sk": audit_sk(seq),
        "tenant": "local",
        "type": "audit",
        "seq": seq,
        "previous": stale["audit_head"],
    }
    with pytest.raises(ConditionFailed):  # overwriting the entry that now holds seq 9
        await store.backend.transact([Put(forged, ABSENT)])
    next_slot = {**forged, "sk": audit_sk(seq + 1), "seq": seq + 1}
    with pytest.raises(ConditionFailed):  # a fresh slot, but the head moved since `stale` was read
        await store.backend.transact(
            [
                Put(next_slot, ABSENT),
                Put(
                    {**stale, "audit_seq": seq + 1, "audit_head": "f" * 64},
                    condition=equals("audit_seq", stale["audit_seq"]),
                ),
            ]
        )
    assert await store.backend.get(PK, audit_sk(seq + 1)) is None
    assert (await store.verify_audit(DIALOGUE)).ok


async def test_two_writers_keep_the_chain_linear(store: DialogueStore) -> None:
    await built(store)
    first, second = store, fresh_store(store)
    calls_before = store.backend.calls["TransactWriteItems"]

    async def write(writer: DialogueStore, n: int) -> str:
        await writer.record_text(DIALOGUE, TextRecord("prompt", 2, f"expert{n}", f"prompt {n}"))
        return f"prompt#02#expert{n}"

    outcomes = await asyncio.gather(*(write(first if n % 2 else second, n) for n in range(16)), return_exceptions=True)
    written = sorted(o for o in outcomes if isinstance(o, str))
    # A write that loses every retry fails whole with ConflictError: never half-written, never unaudited.
    assert all(isinstance(o, str) or isinstance(o, ConflictError) for o in outcomes), outcomes
    assert len(written) >= 8
    report = await store.verify_audit(DIALOGUE)
    assert report.ok and report.entries == 8 + len(written)
    entries = [decode_audit(i) for i in await store.backend.query(PK, "audit#", consistent=True)]
    assert [e.seq for e in entries] == list(range(1, 9 + len(written)))
    assert sorted(k for e in entries[8:] for k in e.keys) == written
    assert sorted(sk for sk in await items_of(store.backend) if sk.startswith("prompt#02#")) == written
    assert {e.principal for e in entries[8:]} == {"tester", "other"}
    assert store.backend.calls["TransactWriteItems"] - calls_before > len(written), "the writers never raced"


@sqlite_only
async def test_recorded_files_are_checked_on_disk(store: DialogueStore, tmp_path: Path) -> None:
    root = tmp_path / "dialogue-files"
    texts = {"round-01/muffin.prompt.md": "the exact prompt ✓", "round-01/muffin.md": "the exact answer"}
    for relative, text in texts.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    await store.create_dialogue("Files", "Are the files intact?", dialogue_id=DIALOGUE)
    await store.record_text(
        DIALOGUE,
        TextRecord("prompt", 1, "muffin", texts["round-01/muffin.prompt.md"], path="round-01/muffin.prompt.md"),
    )
    await store.record_text(
        DIALOGUE, TextRecord("answer", 1, "muffin", texts["round-01/muffin.md"], path="round-01/muffin.md")
    )
    report = await store.verify_audit(DIALOGUE, files_root=root)
    assert report.ok and report.files_checked == 2 and report.file_problems == []

    (root / "round-01/muffin.md").write_text("the exact answer, edited", encoding="utf-8")
    report = await store.verify_audit(DIALOGUE, files_root=root)
    assert not report.ok and report.first_broken is None
    assert report.file_problems == ["round-01/muffin.md: changed since audit entry 3 recorded it"]
    assert report.problem == report.file_problems[0]

    (root / "round-01/muffin.prompt.md").unlink()
    report = await store.verify_audit(DIALOGUE, files_root=root)
    assert "round-01/muffin.prompt.md: missing (recorded in audit entry 2)" in report.file_problems
    assert (await store.verify_audit(DIALOGUE)).ok, "without files_root only the chain is checked"


def test_verify_chain_of_nothing_and_of_a_forged_genesis() -> None:
    assert verify_chain("d", [], recorded_head=(0, GENESIS)).ok
    entry = AuditEntry(1, "t", "p", "op", [], None, envelopes_digest([]), {}, "1" * 64)
    entry = replace(entry, hash=entry_hash(entry))
    report = verify_chain("d", [entry], recorded_head=(1, entry.hash))
    assert (report.ok, report.first_broken) == (False, 1)
    assert asdict(entry)["hash"] == entry.hash
