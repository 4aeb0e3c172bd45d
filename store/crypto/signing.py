"""Signed items: an HMAC over every item's attributes, added on write and checked on every read.

The envelope already protects encrypted content; the MAC protects what stays in clear (status,
scores, rounds, timestamps, index keys, ref items, audit entries). Its key is derived from the
tenant KEK, not a dialogue's data key, so destroying a dialogue's data keys leaves its cleartext
readable and still verifiable.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from concord.store.backends.base import (
    BINARY_ATTRIBUTES,
    MAC_ATTRIBUTE,
    Backend,
    Item,
    Operation,
    Page,
    Put,
    StoredRead,
    clear_json,
)
from concord.store.crypto.keys import KeyProvider, wrapped_from_item
from concord.store.errors import IntegrityError

MAC_PURPOSE = "item-mac"
_SAFE_INTEGER = 2**53
_BINARY_HEADERS = tuple((name, b"\n%d:%s" % (len(name), name.encode())) for name in BINARY_ATTRIBUTES)


def canonical_value(value: Any) -> Any:
    """The form every backend reads back identically: whole floats below 2**53 as ints, tuples as lists."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _SAFE_INTEGER:
        raise ValueError(f"cannot store the integer {value}: outside ±(2**53 - 1)")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store the number {value!r}")
        return int(value) if value.is_integer() and abs(value) < _SAFE_INTEGER else value
    if isinstance(value, dict):
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_value(v) for v in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def mac_input(item: Item, stored_json: bytes | None = None) -> bytes:
    """What the MAC covers: `clear_json` of the item (`stored_json`, when the backend kept it), then for
    each binary attribute present a newline, `{len(name)}:{name}{len(value)}:` and the value's bytes.

    The JSON is the same whichever backend returned the item. Bytes anywhere else, or anything but
    bytes in a binary attribute, make it raise TypeError.
    """
    parts = [stored_json or clear_json(item)]
    for name, header in _BINARY_HEADERS:
        if name in item:
            value = item[name]
            if type(value) is not bytes:
                raise TypeError(f"binary attribute {name} holds {type(value).__name__}, not bytes")
            parts += (header, b"%d:" % len(value), value)
    return b"".join(parts)


class ItemSigner:
    """HMAC-SHA256 (RFC 2104) of items under one key, its padded-key states hashed once."""

    _BLOCK = 64

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self._BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def mac(self, item: Item, stored_json: bytes | None = None) -> str:
        """The item's MAC, in hex."""
        inner = self._inner.copy()
        inner.update(mac_input(item, stored_json))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def holds(self, item: Item, stored_json: bytes | None = None) -> bool:
        """True when the item carries a MAC that verifies. `stored_json`, when given, is the form the item
        was read from (`Backend.query_stored`): that, not a re-serialisation, is what gets checked."""
        stored = item.get(MAC_ATTRIBUTE)
        if type(stored) is not str:
            return False
        try:
            return hmac.compare_digest(stored, self.mac(item, stored_json))
        except TypeError:  # bytes where text belongs, or the reverse
            return False


def item_mac(key: bytes, item: Item) -> str:
    """HMAC-SHA256 (hex) of `mac_input(item)`."""
    return ItemSigner(key).mac(item)


class SignedBackend:
    """A Backend view that signs every Put and refuses any item whose MAC does not verify."""

    def __init__(self, inner: Backend, keys: KeyProvider, epoch: int) -> None:
        self.inner = inner
        self.keys = keys
        self.epoch = epoch
        self._signers: dict[str, ItemSigner] = {}

    @property
    def calls(self) -> Counter[str]:
        """Calls made to the backend underneath."""
        return self.inner.calls

    async def signer(self, tenant: str) -> ItemSigner:
        """The signer of a tenant (its key derived once)."""
        if tenant not in self._signers:
            self._signers[tenant] = ItemSigner(await self.keys.tenant_secret(tenant, self.epoch, MAC_PURPOSE))
        return self._signers[tenant]

    async def sign(self, item: Item) -> Item:
        """The item in canonical form with its MAC set."""
        signed = {k: canonical_value(v) for k, v in item.items() if k != MAC_ATTRIBUTE}
        signed[MAC_ATTRIBUTE] = (await self.signer(str(item.get("tenant", "")))).mac(signed)
        return signed

    async def check(self, item: Item, stored_json: bytes | None = None) -> Item:
        """The item itself, or IntegrityError when its attributes were changed outside Concord."""
        if not await self.is_authentic(item, stored_json):
            dialogue = str(item.get("pk", "?")).removeprefix("dialogue#")
            await self.check_key(str(item.get("pk", "")), dialogue)
            raise IntegrityError(
                f"dialogue {dialogue}, item {item.get('sk')}: its attributes do not match their signature "
                "(changed, inserted or replaced outside Concord)"
            )
        return item

    async def check_key(self, pk: str, dialogue_id: str) -> None:
        """KeyMaterialError when the key in use cannot unwrap the partition's first data key: a wrong key file (or
        tenant or epoch) fails every signature, and is reported as such rather than as tampering."""
        deks = await self.inner.query(pk, "dek#", limit=1)
        if deks:
            dek = deks[0]
            version = int(str(dek["sk"]).split("#")[1])
            await self.keys.unwrap(str(dek.get("tenant", "")), self.epoch, dialogue_id, version, wrapped_from_item(dek))

    async def is_authentic(self, item: Item, stored_json: bytes | None = None) -> bool:
        """True when the item carries a MAC that verifies under its tenant's key."""
        return (await self.signer(str(item.get("tenant", "")))).holds(item, stored_json)

    async def get(self, pk: str, sk: str) -> Item | None:
        item = await self.inner.get(pk, sk)
        return None if item is None else await self.check(item)

    async def query(self, pk: str, prefix: str = "", **options: Any) -> list[Item]:
        return [await self.check(item, stored) for item, stored in await self.inner.query_stored(pk, prefix, **options)]

    async def get_raw(self, pk: str, sk: str) -> Item | None:
        """One item as stored, unchecked."""
        return await self.inner.get(pk, sk)

    async def query_raw(self, pk: str, prefix: str = "", **options: Any) -> list[StoredRead]:
        """Items as stored, unchecked, each with its stored JSON (for the caller to check, naming every bad item)."""
        return await self.inner.query_stored(pk, prefix, **options)

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        page = await self.inner.query_index(index, key, limit=limit, cursor=cursor)
        return Page([await self.check(item) for item in page.items], page.cursor, page.cursors)

    async def transact(self, operations: Sequence[Operation]) -> None:
        """The operations with every Put's item signed, applied atomically by the backend underneath."""
        signed = [Put(await self.sign(op.item), op.condition) if isinstance(op, Put) else op for op in operations]
        await self.inner.transact(signed)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
