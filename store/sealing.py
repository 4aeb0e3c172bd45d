"""Sealing and opening items: a dialogue's data keys, unwrapped once and cached, and the envelope around each item.

This module is the only place the store calls the envelope primitives (`seal`, `open_item`).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from concord.store.backends.base import Item
from concord.store.codec import Record
from concord.store.crypto.envelope import open_item, seal
from concord.store.crypto.keys import DekCache, KeyProvider, wrapped_from_item
from concord.store.crypto.signing import SignedBackend
from concord.store.errors import IntegrityError, KeyMaterialError
from concord.store.ids import dialogue_of


def key_version(item: Item) -> int:
    """Data-key version named by an item's key id (`dek#{dialogue}#{v}`)."""
    key_id = str(item.get("key_id", ""))
    try:
        return int(key_id.rsplit("#", 1)[1])
    except (IndexError, ValueError) as exc:
        raise IntegrityError(f"dialogue {dialogue_of(item['pk'])}, item {item['sk']}: bad key id {key_id!r}") from exc


class Sealer:
    """Seals records into items and opens items, under the data keys of their dialogue."""

    def __init__(self, items: SignedBackend, keys: KeyProvider, tenant: str, deks: DekCache) -> None:
        self.items = items
        self.keys = keys
        self.tenant = tenant
        self.deks = deks

    async def data_key(self, meta: Item, version: int, dek_item: Item | None = None) -> bytes:
        """Version `version` of the data key of `meta`'s dialogue: cached, else unwrapped from `dek_item` or the store."""
        dialogue_id = dialogue_of(meta["pk"])
        cached = self.deks.get(dialogue_id, version)
        if cached is not None:
            return cached
        if dek_item is None:
            # Unchecked read: the unwrap authenticates the wrapped key.
            dek_item = await self.items.get_raw(meta["pk"], f"dek#{version}")
        if dek_item is None:
            raise KeyMaterialError(f"dialogue {dialogue_id}: data key v{version} is gone (destroyed or never created)")
        epoch = int(meta.get("epoch", 1))
        dek = await self.keys.unwrap(self.tenant, epoch, dialogue_id, version, wrapped_from_item(dek_item))
        self.deks.put(dialogue_id, version, dek)
        return dek

    async def seal(self, meta: Item, record: Record) -> Item:
        """The item of a record: its keys and clear attributes, and its secret fields sealed under the current key."""
        item: Item = {"pk": record.pk, "sk": record.sk, "tenant": self.tenant, **record.clear}
        if record.secret is not None:
            version = int(meta["dek_version"])
            dek = await self.data_key(meta, version)
            key_id = f"dek#{dialogue_of(meta['pk'])}#{version}"
            item.update(seal(dek, key_id, record.pk, record.sk, record.secret).attributes())
        return item

    async def open(self, item: Item, meta: Item) -> dict[str, Any]:
        """The secret fields of a sealed item of `meta`'s dialogue."""
        return open_item(await self.data_key(meta, key_version(item)), item)

    def opener(self, meta: Item, dek_items: dict[int, Item]) -> PartitionOpener:
        """An opener for the items of one partition read, which holds `dek_items` (version -> `dek#` item)."""
        return PartitionOpener(self, meta, dek_items)


class PartitionOpener:
    """Opens the items of one partition read, building one cipher per data key (it runs once per item: kept lean)."""

    def __init__(self, sealer: Sealer, meta: Item, dek_items: dict[int, Item]) -> None:
        self._sealer = sealer
        self._meta = meta
        self._dek_items = dek_items
        self._ciphers: dict[str, AESGCM] = {}

    async def cipher(self, item: Item) -> AESGCM:
        """The cipher of the data key an item names; KeyMaterialError when that key is gone or does not unwrap."""
        version = key_version(item)
        dek = await self._sealer.data_key(self._meta, version, self._dek_items.get(version))
        cipher = self._ciphers[item["key_id"]] = AESGCM(dek)
        return cipher

    async def open(self, item: Item) -> dict[str, Any]:
        """The secret fields of a sealed item."""
        cipher = self._ciphers.get(item.get("key_id") or "")
        if cipher is None:
            cipher = await self.cipher(item)
        return open_item(cipher, item)
