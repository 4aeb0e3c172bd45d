"""AnalyticsStore: the reads that cross dialogue partitions, through the sparse indexes only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from concord.store.backends.base import Backend, Item, Page
from concord.store.codec import decode_dialogue, decode_entity
from concord.store.crypto.envelope import open_item
from concord.store.crypto.keys import KeyProvider, blind_index, wrapped_from_item
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import NotFound
from concord.store.model import DIALOGUE_STATUSES, Dialogue, Entity

MAX_PAGE = 100


@dataclass
class DialoguePage:
    """One page of dialogues, the cursor that resumes after each, and the cursor of the next page."""

    dialogues: list[Dialogue]
    cursor: str | None
    cursors: list[str] = field(default_factory=list)


@dataclass
class TensionPage:
    """One page of unresolved tensions across dialogues, with the cursor that resumes after each."""

    tensions: list[tuple[str, Entity]]
    cursor: str | None
    cursors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Participation:
    """One dialogue an expert role took part in, from its first round."""

    dialogue_id: str
    expert: str
    first_round: int


class AnalyticsStore:
    """Cross-dialogue reads of one tenant: GSI1 (status), GSI2 (open tensions), GSI3 (roles)."""

    def __init__(self, backend: Backend, keys: KeyProvider, dialogues: DialogueStore) -> None:
        self.backend = backend
        self.items = dialogues.items
        self.keys = keys
        self._store = dialogues
        self.tenant = dialogues.tenant

    async def _secret_fields(self, item: Item) -> dict[str, Any]:
        """Decrypt an index item using the dialogue's cached (or fetched) data key."""
        dialogue_id = item["pk"].removeprefix("dialogue#")
        version = int(str(item["key_id"]).rsplit("#", 1)[1])
        dek = self._store.deks.get(dialogue_id, version)
        if dek is None:
            dek_item = await self.items.get(item["pk"], f"dek#{version}")
            if dek_item is None:
                raise NotFound(f"dialogue {dialogue_id}: content erased (no data key v{version})")
            dek = await self.keys.unwrap(
                self.tenant,
                int(item.get("epoch", self._store.epoch)),
                dialogue_id,
                version,
                wrapped_from_item(dek_item),
            )
            self._store.deks.put(dialogue_id, version, dek)
        return open_item(dek, item)

    async def _opened(self, page: Page) -> list[tuple[Item, dict[str, Any], str]]:
        """Each item of an index page with its decrypted fields and cursor; items whose content was erased are left out."""
        opened = []
        for item, cursor in zip(page.items, page.cursors, strict=False):
            try:
                opened.append((item, await self._secret_fields(item), cursor))
            except NotFound:
                continue
        return opened

    async def list_dialogues(self, status: str, *, limit: int = 20, cursor: str | None = None) -> DialoguePage:
        """AP9: dialogues of this tenant with a status, oldest update first."""
        if status not in DIALOGUE_STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(DIALOGUE_STATUSES)}")
        page = await self.items.query_index(
            "gsi1", f"status#{self.tenant}#{status}", limit=min(limit, MAX_PAGE), cursor=cursor
        )
        opened = await self._opened(page)
        return DialoguePage(
            [decode_dialogue(item, secret) for item, secret, _ in opened],
            page.cursor,
            [cursor for _, _, cursor in opened],
        )

    async def _all_meta(self, status: str) -> AsyncIterator[Item]:
        """Every meta item (signature-checked, not decrypted) of this tenant with a status, all pages."""
        cursor = None
        while True:
            page = await self.items.query_index("gsi1", f"status#{self.tenant}#{status}", limit=MAX_PAGE, cursor=cursor)
            for item in page.items:
                yield item
            if page.cursor is None:
                return
            cursor = page.cursor

    async def dialogue_ids(self) -> list[str]:
        """Every dialogue id of this tenant, whatever its status."""
        return [
            item["pk"].removeprefix("dialogue#")
            for status in DIALOGUE_STATUSES
            async for item in self._all_meta(status)
        ]

    async def chain_heads(self) -> dict[str, tuple[int, str]]:
        """Every dialogue's audit-chain head (seq, hash), from the signed cleartext of its meta item."""
        heads: dict[str, tuple[int, str]] = {}
        for status in DIALOGUE_STATUSES:
            async for item in self._all_meta(status):
                heads[item["pk"].removeprefix("dialogue#")] = (
                    int(item.get("audit_seq", 0)),
                    str(item.get("audit_head", "")),
                )
        return heads

    async def open_tensions(self, *, limit: int = 20, cursor: str | None = None) -> TensionPage:
        """AP10: tensions not yet resolved, across this tenant's dialogues."""
        page = await self.items.query_index(
            "gsi2", f"open_tension#{self.tenant}", limit=min(limit, MAX_PAGE), cursor=cursor
        )
        opened = await self._opened(page)
        return TensionPage(
            [(item["pk"].removeprefix("dialogue#"), decode_entity(item, secret)) for item, secret, _ in opened],
            page.cursor,
            [cursor for _, _, cursor in opened],
        )

    async def expert_participation(
        self, role: str, *, limit: int = 100, cursor: str | None = None
    ) -> list[Participation]:
        """AP11: dialogues an expert role joined, found through the blind index."""
        secret = await self.keys.tenant_secret(self.tenant, self._store.epoch, "blind-index")
        page = await self.items.query_index(
            "gsi3", f"role#{self.tenant}#{blind_index(secret, role)}", limit=min(limit, MAX_PAGE), cursor=cursor
        )
        return [
            Participation(
                item["pk"].removeprefix("dialogue#"), item["sk"].removeprefix("expert#"), int(item["first_round"])
            )
            for item in page.items
        ]
