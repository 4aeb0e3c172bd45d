"""The tamper matrix: edits made directly in the table are detected, on both backends."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from concord.store.backends.base import Delete, Put
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.checkpoint import create_signing_key, load_signing_key, sign_checkpoint, verify_checkpoint
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import IntegrityError
from concord.store.factory import Stores
from concord.store.model import RefDraft, StatusChange
from tests.contract.helpers import CrashingBackend, panel_batch, perspective, tension

ROOT = Path(__file__).resolve().parents[1]


async def history(store: DialogueStore) -> str:
    did = await store.create_dialogue("Tamper", "Is the table honest?", dialogue_id="tamper-check")
    await store.register_round(
        did,
        panel_batch(
            0,
            entities=[
                perspective("MUFFIN-P0001", "first"),
                perspective("CUPCAKE-P0001", "second", RefDraft("support", "MUFFIN-P0001"), author="cupcake"),
                tension("MUFFIN-T0001", "the tension"),
            ],
        ),
    )
    await store.register_round(did, panel_batch(1, status_changes=[StatusChange("T0001", "addressed", ["cupcake"])]))
    return did


async def raw_put(store: DialogueStore, item: dict) -> None:
    await store.backend.transact([Put(item, None)])


async def signature_fails_on_load(store: DialogueStore, did: str, sk: str) -> None:
    with pytest.raises(IntegrityError, match=f"{sk}: its attributes do not match their signature"):
        await store.load_partition(did)


async def test_cleartext_status_edit_is_detected(store: DialogueStore) -> None:
    did = await history(store)
    item = await store.backend.get(f"dialogue#{did}", "tension#00#01")
    await raw_put(store, {**item, "status": "resolved"})
    await signature_fails_on_load(store, did, "tension#00#01")
    with pytest.raises(IntegrityError):
        await store.get_entity(did, "T0001")
    report = await store.verify_audit(did)
    assert not report.ok and "tension#00#01" in report.problem


async def test_ciphertext_moved_to_another_item_is_detected(store: DialogueStore) -> None:
    did = await history(store)
    source = await store.backend.get(f"dialogue#{did}", "perspective#00#01")
    target = await store.backend.get(f"dialogue#{did}", "perspective#00#02")
    envelope = {k: source[k] for k in ("content_encrypted", "content_nonce", "key_id", "aad_hash", "mac")}
    await raw_put(store, {**target, **envelope})
    with pytest.raises(IntegrityError, match="perspective#00#02"):
        await store.load_partition(did)


async def test_inserted_ref_item_is_detected(store: DialogueStore) -> None:
    did = await history(store)
    ref = await store.backend.get(f"dialogue#{did}", "ref#P0002#support#P0001")
    forged = {**ref, "sk": "ref#P0002#oppose#P0001", "ref_type": "oppose"}
    await raw_put(store, forged)
    with pytest.raises(IntegrityError, match="ref#P0002#oppose#P0001"):
        await store.load_partition(did)
    with pytest.raises(IntegrityError):
        await store.get_refs(did, source="P0002")
    assert "ref#P0002#oppose#P0001" in (await store.verify_audit(did)).problem


async def test_inserted_mirror_item_is_refused_where_it_is_read(store: DialogueStore) -> None:
    did = await history(store)
    mirror = await store.backend.get(f"dialogue#{did}", "rin#P0001#support#P0002")
    await raw_put(store, {**mirror, "sk": "rin#P0001#oppose#P0002", "ref_type": "oppose"})
    snap = await store.load_partition(did)  # the snapshot is built from `ref#` items only
    assert [(r.source, r.ref_type, r.target) for r in snap.refs if r.target == "P0001"] == [
        ("P0002", "support", "P0001")
    ]
    with pytest.raises(IntegrityError, match="rin#P0001#oppose#P0002"):
        await store.get_refs(did, target="P0001")
    assert "rin#P0001#oppose#P0002" in (await store.verify_audit(did)).problem


async def test_null_binary_attribute_added_to_a_cleartext_item_is_detected(store: DialogueStore) -> None:
    if isinstance(store.backend, SQLiteBackend):
        pytest.skip("SQLite keeps a null binary attribute as no attribute at all")
    did = await history(store)
    ref = await store.backend.get(f"dialogue#{did}", "ref#P0002#support#P0001")
    await raw_put(store, {**ref, "content_encrypted": None})
    await signature_fails_on_load(store, did, "ref#P0002#support#P0001")
    assert "ref#P0002#support#P0001" in (await store.verify_audit(did)).problem


async def test_edited_tenant_is_a_signature_failure_not_a_foreign_item(store: DialogueStore) -> None:
    did = await history(store)
    item = await store.backend.get(f"dialogue#{did}", "tension#00#01")
    await raw_put(store, {**item, "tenant": "elsewhere"})
    await signature_fails_on_load(store, did, "tension#00#01")


async def test_resumed_round_refuses_a_leftover_mirror_edited_after_the_crash(stores: Stores) -> None:
    clean = stores.dialogues
    did = await clean.create_dialogue("Crash", "Is a leftover trusted?")
    await clean.register_round(did, panel_batch(0, entities=[perspective("MUFFIN-P0001", "root")]))
    drafts = [perspective(f"MUFFIN-P01{n:02d}", f"p{n}", RefDraft("support", "P0001")) for n in range(1, 41)]
    crashing = DialogueStore(
        CrashingBackend(stores.backend, 2), clean.keys, tenant="local", principal="tester", clock=clean.clock
    )
    with pytest.raises(ConnectionError):  # the first chunk, mirrors included, is stored; the commit is not
        await crashing.register_round(did, panel_batch(1, entities=drafts))
    mirror = await stores.backend.get(f"dialogue#{did}", "rin#P0001#support#P0101")
    assert mirror is not None, "the crash left the first chunk behind"
    await raw_put(clean, {**mirror, "source_type": "tension"})
    with pytest.raises(IntegrityError, match="rin#P0001#support#P0101"):
        await clean.register_round(did, panel_batch(1, entities=drafts))


def sqlite_path(store: DialogueStore) -> Path:
    if not isinstance(store.backend, SQLiteBackend):
        pytest.skip("edits the attributes column, which only the SQLite backend has")
    return store.backend.path


async def test_sqlite_attributes_no_concord_writes_are_reported_not_crashed_on(store: DialogueStore) -> None:
    did = await history(store)
    with sqlite3.connect(sqlite_path(store)) as connection:
        # SQLite itself refuses malformed JSON there (the index keys are read from it); a list it takes
        connection.execute(
            "UPDATE items SET attrs = '[' || attrs || ']' WHERE pk = ? AND sk = 'tension#00#01'", (f"dialogue#{did}",)
        )
    await signature_fails_on_load(store, did, "tension#00#01")
    assert "tension#00#01" in (await store.verify_audit(did)).problem


async def test_sqlite_keys_inside_the_attributes_cannot_move_an_item(store: DialogueStore) -> None:
    did = await history(store)
    with sqlite3.connect(sqlite_path(store)) as connection:
        columns = [c[1] for c in connection.execute("PRAGMA table_info(items)")]
        row = dict(
            zip(
                columns,
                connection.execute(
                    "SELECT * FROM items WHERE pk = ? AND sk = ?", (f"dialogue#{did}", "ref#P0002#support#P0001")
                ).fetchone(),
                strict=False,
            )
        )
        row["attrs"] = json.dumps({**json.loads(row["attrs"]), "sk": row["sk"]})
        row["sk"] = "ref#P0002#oppose#P0001"
        connection.execute(
            f"INSERT INTO items ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
    with pytest.raises(IntegrityError, match="ref#P0002#oppose#P0001"):
        await store.get_refs(did, source="P0002")
    assert not (await store.verify_audit(did)).ok


async def test_sqlite_edited_index_key_is_detected_where_the_index_is_read(stores: Stores) -> None:
    did = await history(stores.dialogues)
    with sqlite3.connect(sqlite_path(stores.dialogues)) as connection:  # the index columns follow the JSON
        connection.execute(
            "UPDATE items SET attrs = json_set(attrs, '$.gsi1sk', '0000') WHERE pk = ? AND sk = 'meta'",
            (f"dialogue#{did}",),
        )
    with pytest.raises(IntegrityError, match="meta: its attributes do not match their signature"):
        await stores.analytics.list_dialogues("open")


async def test_deleted_item_is_detected_through_the_audit_keys(store: DialogueStore) -> None:
    did = await history(store)
    round0 = next(a for a in (await store.load_partition(did)).audit if a.operation == "register_round:0")
    await store.backend.transact([Delete(f"dialogue#{did}", "perspective#00#01")])
    report = await store.verify_audit(did)
    assert not report.ok and report.first_broken == round0.seq
    assert "perspective#00#01" in report.problem and "missing" in report.problem


@pytest.mark.parametrize("tamper", ["edited", "deleted", "reordered"])
async def test_audit_entry_tampering_is_found_at_the_entry(store: DialogueStore, tamper: str) -> None:
    did = await history(store)
    await store.register_ref(did, "P0001", "question", "T0001")
    pk = f"dialogue#{did}"
    second, third = await store.backend.get(pk, "audit#00000002"), await store.backend.get(pk, "audit#00000003")
    if tamper == "edited":
        await raw_put(store, {**second, "principal": "mallory"})
    elif tamper == "deleted":
        await store.backend.transact([Delete(pk, "audit#00000002")])
    else:
        moved_second = {k: v for k, v in third.items() if k != "sk"} | {"sk": "audit#00000002"}
        moved_third = {k: v for k, v in second.items() if k != "sk"} | {"sk": "audit#00000003"}
        await store.backend.transact([Put(moved_second, None), Put(moved_third, None)])
    report = await store.verify_audit(did)
    assert not report.ok and report.first_broken == 2, report.problem


async def test_checkpoint_catches_a_rollback_and_a_forged_checkpoint(stores: Stores, tmp_path: Path) -> None:
    store = stores.dialogues
    did = await history(store)
    pk = f"dialogue#{did}"
    earlier = {i["sk"]: i for i in await store.backend.query(pk)}
    await store.update_entity_status(did, "T0001", "resolved", actors=["muffin"])
    await store.register_ref(did, "P0001", "question", "T0001")
    key_path = tmp_path / "checkpoint.key"
    create_signing_key(key_path)
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    key = load_signing_key(key_path)
    document = sign_checkpoint(key, "local", await stores.analytics.chain_heads())
    heads = verify_checkpoint(document, key, "local")
    assert (await store.verify_audit(did, checkpoint=heads[did])).ok

    # Roll the partition back to its earlier, fully signed state.
    now = {i["sk"]: i for i in await store.backend.query(pk)}
    await store.backend.transact([Delete(pk, sk) for sk in now if sk not in earlier])
    await store.backend.transact([Put(item, None) for sk, item in earlier.items() if now.get(sk) != item][:90])
    assert (await store.verify_audit(did)).ok, "the older state is self-consistent"
    rolled = await store.verify_audit(did, checkpoint=heads[did])
    assert not rolled.ok and "no longer extends the checkpoint" in rolled.problem

    forged = json.loads(json.dumps(document))
    forged["heads"][did]["seq"] = 1
    with pytest.raises(IntegrityError, match="signature"):
        verify_checkpoint(forged, key, "local")


def test_cli_checkpoint_reports_a_deleted_dialogue(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORD_")} | {
        "CONCORD_HOME": str(tmp_path / "home")
    }

    def concord(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "concord.orchestrator.cli.main", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    pool = ROOT / "orchestrator" / "demo-pool.json"
    for seed in ("1", "2"):
        ran = concord(
            "run",
            "--question",
            f"Question {seed}?",
            "--pool",
            str(pool),
            "--panel-size",
            "3",
            "--seed",
            seed,
            "--max-rounds",
            "3",
            "--quiet",
            "--json",
        )
        assert ran.returncode == 0, ran.stderr
    made = concord("audit", "checkpoint", "--out", "cp.json", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["dialogues"] == 2
    assert concord("audit", "verify", "--checkpoint", "cp.json").returncode == 0
    victim = sorted(json.loads((tmp_path / "cp.json").read_text())["heads"])[0]
    with sqlite3.connect(tmp_path / "home" / "concord.db") as db:
        db.execute("DELETE FROM items WHERE pk = ?", (f"dialogue#{victim}",))
    verified = concord("audit", "verify", "--checkpoint", "cp.json")
    assert verified.returncode == 1
    assert f"{victim}: BROKEN" in verified.stdout and "deleted" in verified.stdout
