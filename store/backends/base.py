"""The item-level contract every storage backend implements.

A backend stores opaque items: a partition key `pk`, a sort key `sk`, cleartext attributes,
the two binary envelope attributes, and optional sparse index keys. It knows nothing of
dialogues, entities or encryption; the domain store above it does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from concord.store.errors import ItemTooLarge

#: An item: `pk`, `sk` and attributes. Values are str, bool, None, lists, dicts, bytes (envelope
#: attributes only), ints below 2**53 and floats; a whole-number float may read back as the equal int.
Item = dict[str, Any]

#: An item as read, with its `clear_json` exactly as the backend stored it (None where it keeps no such form).
StoredRead = tuple[Item, bytes | None]

#: Binary attributes; every other attribute value is JSON-compatible.
BINARY_ATTRIBUTES = ("content_encrypted", "content_nonce")

#: The attribute holding an item's signature; it covers every other attribute.
MAC_ATTRIBUTE = "mac"

_NOT_IN_CLEAR_JSON = frozenset((MAC_ATTRIBUTE, *BINARY_ATTRIBUTES))

#: Sparse secondary indexes: name -> (partition attribute, sort attribute).
INDEXES = {
    "gsi1": ("gsi1pk", "gsi1sk"),
    "gsi2": ("gsi2pk", "gsi2sk"),
    "gsi3": ("gsi3pk", "gsi3sk"),
}

#: Most actions one atomic transaction may hold (DynamoDB's limit, kept on every backend).
MAX_TRANSACTION_ACTIONS = 100

#: Largest item a backend accepts, in bytes of attribute names and values (DynamoDB's limit).
MAX_ITEM_BYTES = 400 * 1024
#: DynamoDB's limit on the items of one TransactWriteItems together.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Condition:
    """A precondition on the current item: absent, or one attribute equal to a value."""

    kind: Literal["absent", "equals"]
    attribute: str = ""
    value: Any = None


ABSENT = Condition("absent")


def equals(attribute: str, value: Any) -> Condition:
    """Condition: the stored item's `attribute` equals `value`."""
    return Condition("equals", attribute, value)


@dataclass(frozen=True)
class Put:
    """Write a whole item, replacing any previous one, if the condition holds."""

    item: Item
    condition: Condition | None = ABSENT

    @property
    def key(self) -> tuple[str, str]:
        """The (pk, sk) of the item written."""
        return str(self.item["pk"]), str(self.item["sk"])


@dataclass(frozen=True)
class Delete:
    """Remove an item if the condition holds."""

    pk: str
    sk: str
    condition: Condition | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The (pk, sk) of the item removed."""
        return self.pk, self.sk


#: Every write is a whole-item Put or a Delete: a signed item cannot be changed in part (see SignedBackend).
Operation = Put | Delete


@dataclass
class Page:
    """One page of an index query: its items, the cursor that resumes after each, and the cursor to the
    next page (None on the last)."""

    items: list[Item]
    cursor: str | None
    cursors: list[str] = field(default_factory=list)


class Backend(Protocol):
    """Async item storage with per-partition prefix queries and atomic transactions."""

    calls: Counter[str]

    async def get(self, pk: str, sk: str) -> Item | None:
        """One item by its full key (strongly consistent), or None."""

    async def query(
        self,
        pk: str,
        prefix: str = "",
        *,
        consistent: bool = False,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[Item]:
        """Items of one partition whose sk starts with `prefix`, in sk order, all pages."""

    async def query_stored(
        self,
        pk: str,
        prefix: str = "",
        *,
        consistent: bool = False,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[StoredRead]:
        """`query` (same options), each item paired with its `clear_json` as stored, so a signature check
        need not rebuild it."""

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        """At most `limit` items of a sparse index partition, in index sort-key order; cursors are opaque."""

    async def transact(self, operations: Sequence[Operation]) -> None:
        """Apply every operation atomically or none; raise ConditionFailed on a failed condition.

        See `check_transaction` for what is refused before anything is sent.
        """

    async def ping(self) -> None:
        """Raise BackendUnavailable unless the backend is reachable and initialised."""

    async def close(self) -> None:
        """Release connections."""


def check_transaction(operations: Sequence[Operation]) -> None:
    """Refuse, before anything is sent: more than MAX_TRANSACTION_ACTIONS operations, two on one item, or
    more than MAX_TRANSACTION_BYTES of Put items in all (ValueError), and a Put over MAX_ITEM_BYTES (ItemTooLarge)."""
    if len(operations) > MAX_TRANSACTION_ACTIONS:
        raise ValueError(f"{len(operations)} operations in one transaction; at most {MAX_TRANSACTION_ACTIONS}")
    seen: set[tuple[str, str]] = set()
    total = 0
    for op in operations:
        key = op.key
        if key in seen:
            raise ValueError(f"one transaction cannot hold two operations on item {key[0]} / {key[1]}")
        seen.add(key)
        if isinstance(op, Put):
            size = item_size(op.item)
            if size > MAX_ITEM_BYTES:
                raise ItemTooLarge(f"item {key[0]} / {key[1]} is {size} bytes; the limit is {MAX_ITEM_BYTES}")
            total += size
    if total > MAX_TRANSACTION_BYTES:
        raise ValueError(f"{total} bytes of items in one transaction; at most {MAX_TRANSACTION_BYTES}")


def clear_json(item: Item) -> bytes:
    """Canonical JSON of every attribute but the MAC and the binary ones: UTF-8, sorted keys, no whitespace.

    Bytes among these attributes make it raise TypeError.
    """
    return orjson.dumps({k: v for k, v in item.items() if k not in _NOT_IN_CLEAR_JSON}, option=orjson.OPT_SORT_KEYS)


def item_size(item: Item) -> int:
    """Approximate stored size of an item as DynamoDB counts it (names plus values)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        total += _value_size(value)
    return total


def _value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (int, float)):
        return 21
    if isinstance(value, (list, tuple)):
        return 3 + sum(_value_size(v) + 1 for v in value)
    if isinstance(value, dict):
        return 3 + sum(len(str(k).encode()) + _value_size(v) + 1 for k, v in value.items())
    return len(str(value).encode())
