"""A per-request view of the shared backend that counts the calls one request makes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from concord.store.backends.base import Backend, Item, Operation, Page, StoredRead


class CountingBackend:
    """Delegates to the shared backend and counts each call, so concurrent requests count apart."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        """Backend calls made through this view."""
        return sum(self.calls.values())

    async def get(self, pk: str, sk: str) -> Item | None:
        self.calls["GetItem"] += 1
        return await self.backend.get(pk, sk)

    async def query(
        self, pk: str, prefix: str = "", *, consistent: bool = False, reverse: bool = False, limit: int | None = None
    ) -> list[Item]:
        self.calls["Query"] += 1
        return await self.backend.query(pk, prefix, consistent=consistent, reverse=reverse, limit=limit)

    async def query_stored(self, pk: str, prefix: str = "", **options: Any) -> list[StoredRead]:
        self.calls["Query"] += 1
        return await self.backend.query_stored(pk, prefix, **options)

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        self.calls["Query"] += 1
        return await self.backend.query_index(index, key, limit=limit, cursor=cursor)

    async def transact(self, operations: Sequence[Operation]) -> None:
        self.calls["TransactWriteItems"] += 1
        await self.backend.transact(operations)

    async def ping(self) -> None:
        self.calls["Ping"] += 1
        await self.backend.ping()

    async def close(self) -> None:
        """The shared backend outlives every request: nothing to close."""
