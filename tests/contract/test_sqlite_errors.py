"""The SQLite backend's failure modes: clear errors, nothing half-written."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path

import pytest

from concord.store.analytics import AnalyticsStore
from concord.store.backends.base import ABSENT, Put
from concord.store.backends.sqlite import INDEX_COLUMNS, SCHEMA_VERSION, SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import BackendUnavailable, SchemaVersionError
from tests.contract.helpers import panel_batch, perspective, tension


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="directory .* does not exist"):
        await SQLiteBackend(tmp_path / "nowhere" / "concord.db").open()


async def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    path.write_bytes(b"this is not a database, just forty bytes" * 100)
    with pytest.raises(BackendUnavailable, match="cannot open .* as a Concord database"):
        await SQLiteBackend(path).open()
    assert path.read_bytes().startswith(b"this is not a database")


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    await (await SQLiteBackend(path).open()).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE concord_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        await SQLiteBackend(path).open()


def open_handles(path: Path) -> int:
    """How many of this process's file descriptors point at the database file or its WAL companions."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    return sum(1 for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) in names)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts file descriptors through /proc (Linux)")
async def test_refused_file_is_not_left_open(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    await (await SQLiteBackend(path).open()).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE concord_schema SET version = ?", (SCHEMA_VERSION + 1,))
    db.close()
    assert open_handles(path) == 0
    refused = SQLiteBackend(path)
    with pytest.raises(SchemaVersionError):
        await refused.open()
    assert open_handles(path) == 0
    await refused.close()


async def test_locked_database_fails_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    backend = await SQLiteBackend(path, busy_timeout=0.2).open()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BackendUnavailable, match="locked by another process"):
            await backend.transact([Put({"pk": "dialogue#x", "sk": "meta", "status": "open"}, ABSENT)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await backend.get("dialogue#x", "meta") is None
    await backend.transact([Put({"pk": "dialogue#x", "sk": "meta", "status": "open"}, ABSENT)])
    assert (await backend.get("dialogue#x", "meta"))["status"] == "open"
    await backend.close()


async def test_reads_do_not_wait_for_another_process_writing(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    backend = await SQLiteBackend(path, busy_timeout=5.0).open()
    await backend.transact([Put({"pk": "dialogue#x", "sk": "meta", "status": "open"}, ABSENT)])
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE items SET attrs = json_set(attrs, '$.status', 'closed') WHERE pk = 'dialogue#x'")
    try:
        # A read that waited for the writer would fail as "locked" after busy_timeout.
        assert (await backend.get("dialogue#x", "meta"))["status"] == "open"
        assert [i["status"] for i in await backend.query("dialogue#x")] == ["open"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    await backend.close()
    with pytest.raises(BackendUnavailable, match="is not open"):
        await backend.get("dialogue#x", "meta")


async def test_a_failed_read_leaves_no_old_snapshot_behind(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    backend = await SQLiteBackend(path).open()
    await backend.transact([Put({"pk": "dialogue#x", "sk": "meta"}, ABSENT)])
    outside = sqlite3.connect(path, isolation_level=None)
    outside.execute(
        "INSERT INTO items (pk, sk, attrs) VALUES ('dialogue#x', CAST(x'7a7aff' AS TEXT), '{}')"
    )  # not UTF-8
    with pytest.raises(BackendUnavailable) as failed:
        await backend.query("dialogue#x")
    await backend.transact([Put({"pk": "dialogue#y", "sk": "meta"}, ABSENT)])
    assert failed.value is not None  # the error (and whatever it holds) is still alive here
    assert await backend.get("dialogue#y", "meta") is not None
    assert outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # no reader pins the log
    outside.close()
    await backend.close()


async def test_reads_give_other_tasks_a_turn(sqlite_backend: SQLiteBackend) -> None:
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = turns
    for _ in range(10):
        await sqlite_backend.get("dialogue#x", "meta")
        await sqlite_backend.query("dialogue#x")
    task.cancel()
    assert turns - before >= 20


async def test_non_finite_numbers_are_refused_and_nothing_is_written(sqlite_backend: SQLiteBackend) -> None:
    for value in (float("nan"), float("inf"), [1.0, float("-inf")], {"deep": float("nan")}):
        with pytest.raises(ValueError, match="cannot store the number"):
            await sqlite_backend.transact(
                [
                    Put({"pk": "dialogue#x", "sk": "meta"}, ABSENT),
                    Put({"pk": "dialogue#x", "sk": "round#00", "n": value}, ABSENT),
                ]
            )
    assert await sqlite_backend.query("dialogue#x") == []


# The version-1 layout: keys, index keys and binaries in columns; every other attribute, MAC included, as JSON.
VERSION_1_ITEMS = f"""
CREATE TABLE items (
    pk TEXT NOT NULL, sk TEXT NOT NULL, attrs TEXT NOT NULL, content_encrypted BLOB, content_nonce BLOB,
    {", ".join(f"{c} TEXT" for c in INDEX_COLUMNS)}, PRIMARY KEY (pk, sk)
) WITHOUT ROWID
"""


def rewrite_as_version_1(path: Path) -> int:
    """Turn a current database into the version-1 layout; returns how many items it holds."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT pk, sk, attrs, mac, content_encrypted, content_nonce FROM items").fetchall()
        db.execute("DROP TABLE items")
        db.execute(VERSION_1_ITEMS)
        for pk, sk, attrs, mac, encrypted, nonce in rows:
            clear = {k: v for k, v in json.loads(attrs).items() if k not in ("pk", "sk", *INDEX_COLUMNS)}
            index_keys = [json.loads(attrs).get(c) for c in INDEX_COLUMNS]
            db.execute(
                f"INSERT INTO items VALUES ({', '.join('?' * (5 + len(INDEX_COLUMNS)))})",
                [pk, sk, json.dumps({**clear, "mac": mac}, sort_keys=True), encrypted, nonce, *index_keys],
            )
        db.execute("UPDATE concord_schema SET version = 1")
    return len(rows)


async def test_version_1_database_is_upgraded_in_place_and_still_verifies(tmp_path: Path, key_file: Path) -> None:
    path = tmp_path / "concord.db"
    keys = LocalKeyProvider(key_file)
    backend = await SQLiteBackend(path).open()
    store = DialogueStore(backend, keys, principal="tester")
    did = await store.create_dialogue("Upgrade", "Does an old file still open?")
    await store.register_round(
        did, panel_batch(0, entities=[perspective("MUFFIN-P0001", "first"), tension("MUFFIN-T0001")])
    )
    before = await store.load_partition(did)
    await backend.close()
    count = rewrite_as_version_1(path)

    backend = await SQLiteBackend(path).open()
    store = DialogueStore(backend, keys, principal="tester")
    assert await store.load_partition(did) == before
    assert (await store.verify_audit(did)).ok
    page = await AnalyticsStore(backend, keys, store).list_dialogues("open")  # read through an index
    assert [d.id for d in page.dialogues] == [did]
    assert len(await backend.query(f"dialogue#{did}")) == count
    await backend.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM concord_schema").fetchone() == (SCHEMA_VERSION,)


async def test_version_1_row_concord_never_wrote_stops_the_upgrade_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "concord.db"
    backend = await SQLiteBackend(path).open()
    await backend.transact([Put({"pk": "dialogue#x", "sk": "meta", "status": "open"}, ABSENT)])
    await backend.close()
    rewrite_as_version_1(path)
    with sqlite3.connect(path) as db:
        db.execute("""UPDATE items SET attrs = '{"status": NaN}'""")
    with pytest.raises(SchemaVersionError, match="item dialogue#x / meta holds attributes Concord does not write"):
        await SQLiteBackend(path).open()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM concord_schema").fetchone() == (1,)
        assert db.execute("SELECT attrs FROM items").fetchall() == [('{"status": NaN}',)]
