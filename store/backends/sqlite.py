"""Embedded backend: one SQLite file (WAL) holding the same items as the DynamoDB table."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from concord.store.backends.base import (
    BINARY_ATTRIBUTES,
    INDEXES,
    MAC_ATTRIBUTE,
    Condition,
    Item,
    Operation,
    Page,
    Put,
    StoredRead,
    check_transaction,
    clear_json,
)
from concord.store.errors import BackendUnavailable, ConditionFailed, SchemaVersionError
from concord.store.private_files import private_file

SCHEMA_VERSION = 2
#: Longest a read waits for a lock, on the caller's thread (in WAL mode readers meet one only in rare
#: cases, such as another process's crash recovery).
READ_BUSY_TIMEOUT = 1.0
INDEX_COLUMNS = tuple(column for pair in INDEXES.values() for column in pair)

# `attrs` holds `clear_json(item)`: the very bytes the item's MAC covers, pk and sk included, so a
# read can check the MAC without re-serialising. Index keys are derived from it, so they cannot
# drift from what is signed.
_TABLE = f"""
CREATE TABLE IF NOT EXISTS {{table}} (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    mac TEXT,
    content_encrypted BLOB,
    content_nonce BLOB,
    {", ".join(f"{c} TEXT GENERATED ALWAYS AS (json_extract(attrs, '$.{c}')) VIRTUAL" for c in INDEX_COLUMNS)},
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
"""
_INDEXES = "".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON items ({pk}, {sk}) WHERE {pk} IS NOT NULL;\n"
    for name, (pk, sk) in INDEXES.items()
)
_SCHEMA = "CREATE TABLE IF NOT EXISTS concord_schema (version INTEGER NOT NULL);\n" + _TABLE.format(table="items")


def prefix_end(prefix: str) -> str:
    """Smallest string greater than every string starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class SQLiteBackend:
    """Items in a local SQLite database; every access pattern is one indexed query.

    Writes run in a thread of their own: one may wait up to `busy_timeout` for another process's write lock. Reads run
    on the caller's thread over a second, read-only connection: in WAL mode a reader does not wait for writers, and
    handing a read to a thread and back costs more than the read itself (bench/store.py).
    """

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.calls: Counter[str] = Counter()
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        # One thread of its own: SQLite work is serialised anyway, and sharing the loop's default
        # pool would make it queue behind unrelated blocking work (and vice versa).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="concord-sqlite")

    @property
    def is_new(self) -> bool:
        """True when the database file does not exist yet."""
        return not self.path.exists()

    async def open(self) -> SQLiteBackend:
        """Open (creating if needed) the database and check its schema version."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        return self

    def _open(self) -> None:
        if not self.path.parent.is_dir():
            raise BackendUnavailable(f"cannot create the database: directory {self.path.parent} does not exist")
        private_file(self.path)  # SQLite gives its -wal and -shm files the mode of the database file
        conns: list[sqlite3.Connection] = []
        try:
            conns.append(self._connect(self.busy_timeout))
            _prepare(conns[0], self.path)
            conns.append(self._connect(min(self.busy_timeout, READ_BUSY_TIMEOUT)))
            conns[1].execute("PRAGMA query_only = ON")
        except BaseException as exc:
            for conn in conns:
                conn.close()  # a refused file is released now, not when the connection is collected
            if isinstance(exc, sqlite3.DatabaseError):
                raise BackendUnavailable(f"cannot open {self.path} as a Concord database: {exc}") from exc
            raise
        self._conn, self._reader = conns

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)

    async def close(self) -> None:
        if self._reader is not None:
            with self._read_lock:
                reader, self._reader = self._reader, None
                reader.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)

    async def ping(self) -> None:
        """Both connections answer; the writing one in its thread, so a stuck thread shows."""
        probe = "SELECT 1 FROM concord_schema"
        await self._read("Ping", probe, ())
        await self._run("Ping", lambda conn: _fetch_all(conn, probe, ()))

    async def _run(self, operation: str, work: Any) -> Any:
        """A write, in the database thread over the writing connection."""
        self.calls[operation] += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, self._conn, self._lock, work)

    async def _read(self, operation: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a read, run on this thread over the read-only connection."""
        self.calls[operation] += 1
        rows: list[tuple[Any, ...]] = self._guarded(
            self._reader, self._read_lock, lambda conn: _fetch_all(conn, sql, params)
        )
        await asyncio.sleep(0)  # other tasks get a turn between reads, so a scan page after page does not hold the loop
        return rows

    def _guarded(self, conn: sqlite3.Connection | None, lock: threading.Lock, work: Any) -> Any:
        """`work` over `conn`, holding its lock, with SQLite's errors as BackendUnavailable."""
        if conn is None:
            raise BackendUnavailable(f"database {self.path} is not open")
        with lock:
            try:
                return work(conn)
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise BackendUnavailable(f"database {self.path} is locked by another process") from exc
                raise BackendUnavailable(f"database {self.path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise BackendUnavailable(f"database {self.path} is unreadable or corrupt: {exc}") from exc

    # --- reads -------------------------------------------------------------------------

    async def is_empty(self) -> bool:
        """True when the database holds no item at all."""
        return not await self._read("Scan", "SELECT 1 FROM items LIMIT 1", ())

    async def get(self, pk: str, sk: str) -> Item | None:
        return _only_item(await self._read("GetItem", _CURRENT, (pk, sk)))

    async def query(self, pk: str, prefix: str = "", **options: Any) -> list[Item]:
        return [item for item, _ in await self.query_stored(pk, prefix, **options)]

    async def query_stored(
        self,
        pk: str,
        prefix: str = "",
        *,
        consistent: bool = False,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[StoredRead]:
        order = "DESC" if reverse else "ASC"
        sql = f"SELECT {_COLUMNS} FROM items WHERE pk = ?"
        params: list[Any] = [pk]
        if prefix:
            sql += " AND sk >= ? AND sk < ?"
            params += [prefix, prefix_end(prefix)]
        sql += f" ORDER BY sk {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)

        return [_row_to_read(row) for row in await self._read("Query", sql, params)]

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        pk_col, sk_col = INDEXES[index]
        sql = f"SELECT {_COLUMNS} FROM items WHERE {pk_col} = ?"
        params: list[Any] = [key]
        if cursor:
            after_sk, after_pk, after_item_sk = json.loads(base64.urlsafe_b64decode(cursor))
            sql += f" AND ({sk_col}, pk, sk) > (?, ?, ?)"
            params += [after_sk, after_pk, after_item_sk]
        sql += f" ORDER BY {sk_col}, pk, sk LIMIT ?"
        params.append(limit + 1)

        rows = await self._read("Query", sql, params)
        items = [_row_to_read(row)[0] for row in rows[:limit]]
        cursors = [
            base64.urlsafe_b64encode(json.dumps([item[sk_col], item["pk"], item["sk"]]).encode()).decode()
            for item in items
        ]
        return Page(items, cursors[-1] if len(rows) > limit else None, cursors)

    # --- writes ------------------------------------------------------------------------

    async def transact(self, operations: Sequence[Operation]) -> None:
        check_transaction(operations)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for index, op in enumerate(operations):
                    _apply(conn, index, op)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run("TransactWriteItems", work)


_COLUMNS = "pk, sk, CAST(attrs AS BLOB), mac, content_encrypted, content_nonce"
UNREADABLE_ATTRIBUTE = "unreadable_attrs"


def _row_to_read(row: tuple[Any, ...]) -> StoredRead:
    """The item of a row, with its stored JSON. Attributes that are not a JSON object (only an edit outside
    Concord leaves that) become one attribute no signature covers; keys in them that disagree with the
    row's win nothing: the row's keys are kept and no stored form is given, so the signature check fails."""
    pk, sk, stored, mac, encrypted, nonce = row
    try:
        item = orjson.loads(stored)
    except orjson.JSONDecodeError:
        item = None
    if type(item) is not dict:
        item = {UNREADABLE_ATTRIBUTE: stored.decode(errors="replace")}
    if mac is not None:
        item[MAC_ATTRIBUTE] = mac
    if encrypted is not None:
        item["content_encrypted"] = encrypted
    if nonce is not None:
        item["content_nonce"] = nonce
    if item.get("pk") == pk and item.get("sk") == sk:
        return item, stored
    item["pk"], item["sk"] = pk, sk
    return item, None


def _write_item(conn: sqlite3.Connection, item: Item, table: str = "items") -> None:
    for name, value in item.items():
        _refuse_unstorable(value, name)
    conn.execute(
        f"INSERT OR REPLACE INTO {table} (pk, sk, attrs, mac, content_encrypted, content_nonce) VALUES (?, ?, ?, ?, ?, ?)",
        (
            item["pk"],
            item["sk"],
            clear_json(item).decode(),
            item.get(MAC_ATTRIBUTE),
            item.get("content_encrypted"),
            item.get("content_nonce"),
        ),
    )


def _refuse_unstorable(value: Any, name: str) -> None:
    """ValueError for NaN or an infinity (JSON has no such numbers), TypeError for bytes outside the
    binary attributes."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"attribute {name!r}: cannot store the number {value!r}")
    if isinstance(value, (bytes, bytearray)) and name not in BINARY_ATTRIBUTES:
        raise TypeError(f"binary attribute {name!r} is not one of {BINARY_ATTRIBUTES}")
    if isinstance(value, dict):
        for inner in value.values():
            _refuse_unstorable(inner, name)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            _refuse_unstorable(inner, name)


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Set up WAL and, in one transaction, create or upgrade the schema; refuse a newer version."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.strip().split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT version FROM concord_schema").fetchone()
        if row is None:
            conn.execute("INSERT INTO concord_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] == 1:
            _upgrade_from_version_1(conn, path)
        elif row[0] != SCHEMA_VERSION:
            raise SchemaVersionError(f"{path} has schema version {row[0]}; this Concord reads version {SCHEMA_VERSION}")
        for statement in _INDEXES.strip().splitlines():
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _upgrade_from_version_1(conn: sqlite3.Connection, path: Path) -> None:
    """Rewrite a version-1 table (keys, index keys and binaries apart from the attribute JSON) as version 2."""
    conn.execute(_TABLE.format(table="items_v2"))
    for pk, sk, attrs, encrypted, nonce, *index_keys in conn.execute(
        f"SELECT pk, sk, attrs, content_encrypted, content_nonce, {', '.join(INDEX_COLUMNS)} FROM items"
    ).fetchall():
        try:
            item = {**orjson.loads(attrs), "pk": pk, "sk": sk}
            item.update(
                (column, key) for column, key in zip(INDEX_COLUMNS, index_keys, strict=False) if key is not None
            )
            item.update(
                (name, value)
                for name, value in zip(BINARY_ATTRIBUTES, (encrypted, nonce), strict=False)
                if value is not None
            )
            _write_item(conn, item, "items_v2")
        except (ValueError, TypeError) as exc:  # only an edit outside Concord leaves such a row
            raise SchemaVersionError(
                f"cannot upgrade {path} from schema version 1: item {pk} / {sk} holds attributes Concord does "
                f"not write ({exc}); the file is unchanged"
            ) from exc
    conn.execute("DROP TABLE items")
    conn.execute("ALTER TABLE items_v2 RENAME TO items")
    conn.execute("UPDATE concord_schema SET version = ?", (SCHEMA_VERSION,))


_CURRENT = f"SELECT {_COLUMNS} FROM items WHERE pk = ? AND sk = ?"


def _fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """All rows of a query, its cursor closed even when a row fails (an open cursor pins its read snapshot)."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _only_item(rows: list[tuple[Any, ...]]) -> Item | None:
    """The item of a key lookup's row, if there is one."""
    return _row_to_read(rows[0])[0] if rows else None


def _current(conn: sqlite3.Connection, pk: str, sk: str) -> Item | None:
    return _only_item(_fetch_all(conn, _CURRENT, (pk, sk)))


def _holds(condition: Condition | None, current: Item | None) -> bool:
    if condition is None:
        return True
    if condition.kind == "absent":
        return current is None
    return current is not None and current.get(condition.attribute) == condition.value


def _apply(conn: sqlite3.Connection, index: int, op: Operation) -> None:
    if not _holds(op.condition, _current(conn, *op.key)):
        raise ConditionFailed(index, op.key)
    if isinstance(op, Put):
        _write_item(conn, op.item)
    else:
        conn.execute("DELETE FROM items WHERE pk = ? AND sk = ?", op.key)
