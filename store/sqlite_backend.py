"""Embedded backend: one SQLite file (WAL) holding the same items as the DynamoDB table."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import orjson

from .backend import (
    BINARY_ATTRIBUTES,
    INDEXES,
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_ACTIONS,
    Check,
    Condition,
    ConditionFailed,
    Delete,
    Item,
    Operation,
    Page,
    Put,
    Update,
    item_size,
)
from .errors import BackendUnavailable, ItemTooLarge, SchemaVersionError

SCHEMA_VERSION = 1
INDEX_COLUMNS = tuple(column for pair in INDEXES.values() for column in pair)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS concord_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    content_encrypted BLOB,
    content_nonce BLOB,
    {", ".join(f"{c} TEXT" for c in INDEX_COLUMNS)},
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
""" + "".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON items ({pk}, {sk}) WHERE {pk} IS NOT NULL;\n"
    for name, (pk, sk) in INDEXES.items()
)


def prefix_end(prefix: str) -> str:
    """Smallest string greater than every string starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class SQLiteBackend:
    """Items in a local SQLite database; every access pattern is one indexed query."""

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.calls: Counter[str] = Counter()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # One thread of its own: SQLite work is serialised anyway, and sharing the loop's default
        # pool would make it queue behind unrelated blocking work (and vice versa).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="concord-sqlite")

    @property
    def is_new(self) -> bool:
        """True when the database file does not exist yet."""
        return not self.path.exists()

    async def open(self) -> "SQLiteBackend":
        """Open (creating if needed) the database and check its schema version."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        return self

    def _open(self) -> None:
        if not self.path.parent.is_dir():
            raise BackendUnavailable(f"cannot create the database: directory {self.path.parent} does not exist")
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
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
                elif row[0] != SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"{self.path} has schema version {row[0]}; this Concord reads version {SCHEMA_VERSION}"
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise BackendUnavailable(f"cannot open {self.path} as a Concord database: {exc}") from exc
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)

    async def ping(self) -> None:
        await self._run("Ping", lambda conn: conn.execute("SELECT 1 FROM concord_schema").fetchone())

    async def _run(self, operation: str, work: Any) -> Any:
        self.calls[operation] += 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._locked, work)

    def _locked(self, work: Any) -> Any:
        if self._conn is None:
            raise BackendUnavailable(f"database {self.path} is not open")
        with self._lock:
            try:
                return work(self._conn)
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise BackendUnavailable(f"database {self.path} is locked by another process") from exc
                raise BackendUnavailable(f"database {self.path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise BackendUnavailable(f"database {self.path} is unreadable or corrupt: {exc}") from exc

    # --- reads -------------------------------------------------------------------------

    async def get(self, pk: str, sk: str) -> Item | None:
        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            return conn.execute(f"SELECT {_COLUMNS} FROM items WHERE pk = ? AND sk = ?", (pk, sk)).fetchone()

        row = await self._run("GetItem", work)
        return _row_to_item(row) if row else None

    async def query(
        self,
        pk: str,
        prefix: str = "",
        *,
        consistent: bool = False,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[Item]:
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

        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        return [_row_to_item(row) for row in await self._run("Query", work)]

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

        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        rows = await self._run("Query", work)
        items = [_row_to_item(row) for row in rows[:limit]]
        cursors = [
            base64.urlsafe_b64encode(json.dumps([item[sk_col], item["pk"], item["sk"]]).encode()).decode() for item in items
        ]
        return Page(items, cursors[-1] if len(rows) > limit else None, cursors)

    # --- writes ------------------------------------------------------------------------

    async def transact(self, operations: Sequence[Operation]) -> None:
        if len(operations) > MAX_TRANSACTION_ACTIONS:
            raise ValueError(f"{len(operations)} operations in one transaction; at most {MAX_TRANSACTION_ACTIONS}")
        seen: set[tuple[str, str]] = set()
        for op in operations:
            key = (op.item["pk"], op.item["sk"]) if isinstance(op, Put) else (op.pk, op.sk)
            if key in seen:
                raise ValueError(f"one transaction cannot hold two operations on item {key[0]} / {key[1]}")
            seen.add(key)
            if isinstance(op, Put) and (size := item_size(op.item)) > MAX_ITEM_BYTES:
                raise ItemTooLarge(f"item {op.item['pk']} / {op.item['sk']} is {size} bytes; the limit is {MAX_ITEM_BYTES}")

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


_COLUMNS = "pk, sk, attrs, content_encrypted, content_nonce, " + ", ".join(INDEX_COLUMNS)
_NO_INDEX_KEYS = (None,) * len(INDEX_COLUMNS)
UNREADABLE_ATTRIBUTE = "unreadable_attrs"


def _attributes(text: str) -> Item:
    """The attributes column as written by `_write_item`; anything else (NaN, a list, bad JSON, which
    only an edit outside Concord leaves) as one attribute no signature covers, so reads report the item."""
    try:
        attributes = orjson.loads(text)
    except orjson.JSONDecodeError:
        attributes = None
    return attributes if isinstance(attributes, dict) else {UNREADABLE_ATTRIBUTE: text}


def _row_to_item(row: tuple[Any, ...]) -> Item:
    item = _attributes(row[2])
    item["pk"], item["sk"] = row[0], row[1]
    if row[3] is not None:
        item["content_encrypted"] = bytes(row[3])
    if row[4] is not None:
        item["content_nonce"] = bytes(row[4])
    if row[5:] != _NO_INDEX_KEYS:
        item.update((column, value) for column, value in zip(INDEX_COLUMNS, row[5:]) if value is not None)
    return item


def _write_item(conn: sqlite3.Connection, item: Item) -> None:
    attrs = {k: v for k, v in item.items() if k not in ("pk", "sk", *BINARY_ATTRIBUTES, *INDEX_COLUMNS)}
    for name, value in attrs.items():
        if isinstance(value, (bytes, bytearray)):
            raise TypeError(f"binary attribute {name!r} is not one of {BINARY_ATTRIBUTES}")
    conn.execute(
        f"INSERT OR REPLACE INTO items ({_COLUMNS}) VALUES ({', '.join('?' * (5 + len(INDEX_COLUMNS)))})",
        (
            item["pk"],
            item["sk"],
            json.dumps(attrs, sort_keys=True, separators=(",", ":"), allow_nan=False),
            item.get("content_encrypted"),
            item.get("content_nonce"),
            *(item.get(column) for column in INDEX_COLUMNS),
        ),
    )


def _current(conn: sqlite3.Connection, pk: str, sk: str) -> Item | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM items WHERE pk = ? AND sk = ?", (pk, sk)).fetchone()
    return _row_to_item(row) if row else None


def _holds(condition: Condition | None, current: Item | None) -> bool:
    if condition is None:
        return True
    if condition.kind == "absent":
        return current is None
    if condition.kind == "exists":
        return current is not None
    return current is not None and current.get(condition.attribute) == condition.value


def _apply(conn: sqlite3.Connection, index: int, op: Operation) -> None:
    if isinstance(op, Put):
        current = _current(conn, op.item["pk"], op.item["sk"])
        if not _holds(op.condition, current):
            raise ConditionFailed(index, op)
        _write_item(conn, op.item)
    elif isinstance(op, Update):
        current = _current(conn, op.pk, op.sk)
        if not _holds(op.condition, current):
            raise ConditionFailed(index, op)
        item = dict(current) if current else {"pk": op.pk, "sk": op.sk}
        item.update(op.set)
        for name, amount in op.add.items():
            item[name] = item.get(name, 0) + amount
        for name in op.remove:
            item.pop(name, None)
        _write_item(conn, item)
    elif isinstance(op, Delete):
        if not _holds(op.condition, _current(conn, op.pk, op.sk)):
            raise ConditionFailed(index, op)
        conn.execute("DELETE FROM items WHERE pk = ? AND sk = ?", (op.pk, op.sk))
    elif isinstance(op, Check):
        if not _holds(op.condition, _current(conn, op.pk, op.sk)):
            raise ConditionFailed(index, op)
    else:
        raise TypeError(f"unknown operation {op!r}")
