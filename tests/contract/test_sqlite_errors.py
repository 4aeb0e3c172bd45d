"""The SQLite backend's failure modes: clear errors, nothing half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.backend import ABSENT, Put
from store.errors import BackendUnavailable, SchemaVersionError
from store.sqlite_backend import SCHEMA_VERSION, SQLiteBackend


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
