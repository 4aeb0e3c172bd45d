"""Signed items: an HMAC over every item's attributes, added on write and checked on every read.

The envelope already protects encrypted content; the MAC protects what stays in clear (status,
scores, rounds, timestamps, index keys, ref items, audit entries). Its key is derived from the
tenant KEK, not a dialogue's data key, so destroying a dialogue's data keys leaves its cleartext
readable and still verifiable.
"""

from __future__ import annotations

import hmac
import json
from collections import Counter
from typing import Any, Sequence

from .backend import Backend, Check, Delete, Item, Operation, Page, Put, Update
from .errors import IntegrityError
from .keys import KeyProvider

MAC_ATTRIBUTE = "mac"
MAC_PURPOSE = "item-mac"


def _canonical(value: Any) -> Any:
    """A form that reads back identically from every backend (whole floats as ints, tuples as lists)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _encode_number(value: int | float) -> bytes:
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int) or value.is_integer():
        return b"i%d" % int(value)
    return b"d" + repr(value).encode()


def _encode_json(value: Any) -> bytes:
    return b"j" + json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_ENCODERS: dict[type, Any] = {
    str: lambda v: b"s" + v.encode(),
    bytes: lambda v: b"b" + v,
    bytearray: lambda v: b"b" + bytes(v),
    type(None): lambda v: b"n",
    bool: _encode_number,
    int: _encode_number,
    float: _encode_number,
    dict: _encode_json,
    list: _encode_json,
    tuple: _encode_json,
}


def _encode(value: Any) -> bytes:
    """A type-tagged byte form of one attribute value, the same whichever backend returned it."""
    return _ENCODERS.get(type(value), _encode_json)(value)


def item_mac(key: bytes, item: Item) -> str:
    """HMAC-SHA256 (hex) over every attribute but the MAC itself: length-framed name and typed value, by name."""
    parts = []
    for name in sorted(item):
        if name != MAC_ATTRIBUTE:
            encoded_name, value = name.encode(), _encode(item[name])
            parts.append(b"%d:%s%d:" % (len(encoded_name), encoded_name, len(value)))
            parts.append(value)
    return hmac.digest(key, b"".join(parts), "sha256").hex()


def signature_holds(key: bytes, item: Item) -> bool:
    """True when the item carries a MAC that verifies under `key`."""
    stored = item.get(MAC_ATTRIBUTE)
    return isinstance(stored, str) and hmac.compare_digest(stored, item_mac(key, item))


class SignedBackend:
    """A Backend view that signs every Put and refuses any item whose MAC does not verify."""

    def __init__(self, inner: Backend, keys: KeyProvider, epoch: int) -> None:
        self.inner = inner
        self.keys = keys
        self.epoch = epoch
        self._macs: dict[str, bytes] = {}

    @property
    def calls(self) -> Counter[str]:
        """Calls made to the backend underneath."""
        return self.inner.calls

    async def key(self, tenant: str) -> bytes:
        """The MAC key of a tenant (derived once)."""
        if tenant not in self._macs:
            self._macs[tenant] = await self.keys.tenant_secret(tenant, self.epoch, MAC_PURPOSE)
        return self._macs[tenant]

    async def sign(self, item: Item) -> Item:
        """The item with its MAC set."""
        signed = {k: v for k, v in item.items() if k != MAC_ATTRIBUTE}
        signed[MAC_ATTRIBUTE] = item_mac(await self.key(str(item.get("tenant", ""))), signed)
        return signed

    async def check(self, item: Item) -> Item:
        """The item itself, or IntegrityError when its attributes were changed outside Concord."""
        if not await self.is_authentic(item):
            dialogue = str(item.get("pk", "?")).removeprefix("dialogue#")
            raise IntegrityError(
                f"dialogue {dialogue}, item {item.get('sk')}: its attributes do not match their signature "
                "(changed, inserted or replaced outside Concord)"
            )
        return item

    async def is_authentic(self, item: Item) -> bool:
        """True when the item carries a MAC that verifies under its tenant's key."""
        return signature_holds(await self.key(str(item.get("tenant", ""))), item)

    async def get(self, pk: str, sk: str) -> Item | None:
        item = await self.inner.get(pk, sk)
        return None if item is None else await self.check(item)

    async def query(self, pk: str, prefix: str = "", **options: Any) -> list[Item]:
        return [await self.check(item) for item in await self.inner.query(pk, prefix, **options)]

    async def get_raw(self, pk: str, sk: str) -> Item | None:
        """One item as stored, unchecked."""
        return await self.inner.get(pk, sk)

    async def query_raw(self, pk: str, prefix: str = "", **options: Any) -> list[Item]:
        """Items as stored, unchecked (for verification reports that must name every bad item)."""
        return await self.inner.query(pk, prefix, **options)

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        page = await self.inner.query_index(index, key, limit=limit, cursor=cursor)
        return Page([await self.check(item) for item in page.items], page.cursor)

    async def transact(self, operations: Sequence[Operation]) -> None:
        signed: list[Operation] = []
        for op in operations:
            if isinstance(op, Put):
                signed.append(Put(await self.sign(op.item), op.condition))
            elif isinstance(op, (Delete, Check)):
                signed.append(op)
            elif isinstance(op, Update):
                raise TypeError(f"{op.sk}: partial updates cannot keep an item signed; rewrite it with a Put")
            else:
                raise TypeError(f"unknown operation {op!r}")
        await self.inner.transact(signed)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
