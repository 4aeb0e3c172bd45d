"""A dialogue's grounding documents as the store keeps them: names and HMAC-SHA256 digests, sealed, audited.

Names and digests live only inside the sealed `grounding` item: no key, attribute or audit entry shows them.
A digest is an HMAC under a tenant secret (purpose `grounding`), never a plain hash, so it reveals nothing
about a file's content to whoever reads the store, and the audit entry of the write covers the sealed envelope.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

from concord.store.audited_write import AuditedWriter, WritePlan
from concord.store.backends.base import ABSENT, Item, Put
from concord.store.clock import iso
from concord.store.codec import Record
from concord.store.errors import AlreadyExists, KeyMaterialError
from concord.store.sealing import Sealer

GROUNDING_SK = "grounding"
PURPOSE = "grounding"
#: The folder of a dialogue's directory that holds its grounding files.
GROUNDING_DIR = "grounding"


def grounding_mac(secret: bytes, name: str, data: bytes) -> str:
    """HMAC-SHA256 (hex) of one grounding file's name and bytes."""
    return hmac.new(secret, name.encode("utf-8") + b"\x00" + data, hashlib.sha256).hexdigest()


class GroundingRecords:
    """Records a dialogue's grounding once, and checks the files of its folder against that record."""

    def __init__(self, writer: AuditedWriter, sealer: Sealer) -> None:
        self.writer = writer
        self.sealer = sealer
        self.items = writer.items
        self.tenant = writer.tenant

    async def _secret(self, meta: Item) -> bytes:
        return await self.sealer.keys.tenant_secret(self.tenant, int(meta.get("epoch", 1)), PURPOSE)

    async def record(self, dialogue_id: str, files: Mapping[str, bytes]) -> dict[str, str]:
        """Store the names and HMACs of `files` in one audited write; AlreadyExists when the dialogue has them."""

        async def plan(meta: Item) -> WritePlan[dict[str, str]]:
            if await self.items.get(meta["pk"], GROUNDING_SK) is not None:
                raise AlreadyExists(f"dialogue {dialogue_id}: its grounding is already recorded")
            secret = await self._secret(meta)
            macs = {name: grounding_mac(secret, name, data) for name, data in sorted(files.items())}
            clear = {"type": "grounding", "created_at": iso(self.writer.clock())}
            item = await self.sealer.seal(meta, Record(meta["pk"], GROUNDING_SK, clear, {"files": macs}))
            return WritePlan([Put(item, ABSENT)], macs)

        return await self.writer.write(dialogue_id, "record_grounding", plan)

    async def recorded(self, dialogue_id: str) -> dict[str, str]:
        """Name -> HMAC of the dialogue's grounding files; empty when it has none."""
        meta = await self.writer.reader.meta_item(dialogue_id)
        item = await self.items.get(meta["pk"], GROUNDING_SK)
        return dict((await self.sealer.open(item, meta))["files"]) if item is not None else {}

    async def problems(self, dialogue_id: str, root: Path) -> tuple[int, list[str]]:
        """(files checked, problems): each recorded grounding file under `root/grounding/` that is missing or changed.

        A dialogue whose data keys were destroyed (crypto-erased) has no readable record left to check against.
        """
        try:
            recorded = await self.recorded(dialogue_id)
        except KeyMaterialError:
            return 0, []
        if not recorded:
            return 0, []
        secret = await self._secret(await self.writer.reader.meta_item(dialogue_id))
        found = []
        for name, mac in recorded.items():
            path = root / GROUNDING_DIR / name
            if not path.is_file():
                found.append(f"{GROUNDING_DIR}/{name}: grounding file missing (recorded by record_grounding)")
            elif not hmac.compare_digest(grounding_mac(secret, name, path.read_bytes()), mac):
                found.append(f"{GROUNDING_DIR}/{name}: grounding file changed since it was recorded")
        return len(recorded), found
