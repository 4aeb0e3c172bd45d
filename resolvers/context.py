"""Request context: what a connection knows of its caller, and the per-operation stores and loaders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension

from concord.resolvers.counting import CountingBackend
from concord.resolvers.loaders import Loaders, PartitionCache
from concord.resolvers.ports import DialogueStarter, ProgressSource
from concord.resolvers.reader import StoreReader
from concord.resolvers.tokens import Caller
from concord.store.analytics import AnalyticsStore
from concord.store.audited_write import WriteLocks
from concord.store.backends.base import Backend
from concord.store.clock import Clock
from concord.store.crypto.keys import DekCache, KeyProvider
from concord.store.dialogue_store import DialogueStore


@dataclass(frozen=True)
class Services:
    """What every request shares: one backend, the key provider, the data-key cache, the bus and the starter."""

    backend: Backend
    keys: KeyProvider
    deks: DekCache
    epoch: int
    clock: Clock
    bus: ProgressSource
    starter: DialogueStarter | None
    partitions: PartitionCache | None = None
    locks: WriteLocks = field(default_factory=WriteLocks)


@dataclass
class Connection:
    """An HTTP request or a websocket: the services and, once authenticated, the caller; `state` is the ASGI scope's
    state, where a websocket's caller is left for the token watch."""

    services: Services
    caller: Caller | None
    connection_params: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


class RequestContext:
    """One operation: the caller's tenant-scoped stores over a counting backend, and fresh loaders."""

    def __init__(self, services: Services, caller: Caller) -> None:
        self.caller = caller
        self.services = services
        self.backend = CountingBackend(services.backend)
        self.dialogues = DialogueStore(
            self.backend,
            services.keys,
            tenant=caller.tenant,
            epoch=services.epoch,
            principal=caller.name,
            clock=services.clock,
            dek_cache=services.deks,
            locks=services.locks,
        )
        self.analytics = AnalyticsStore(self.backend, services.keys, self.dialogues)
        self.reader = StoreReader(Loaders(self.dialogues, self.services.partitions))

    def wrote(self) -> None:
        """Forget what this request has read: a mutation just changed it (the next mutation field reads anew)."""
        self.reader = StoreReader(Loaders(self.dialogues, self.services.partitions))

    def store_for_background(self) -> DialogueStore:
        """A store of the caller's tenant over the shared backend, for work that outlives the request."""
        s = self.services
        return DialogueStore(
            s.backend,
            s.keys,
            tenant=self.caller.tenant,
            epoch=s.epoch,
            principal=self.caller.name,
            clock=s.clock,
            dek_cache=s.deks,
            locks=s.locks,
        )


#: What every resolver receives.
Info = strawberry.Info[RequestContext, None]


class PerOperation(SchemaExtension):
    """Gives each operation its own RequestContext (a websocket runs many) and reports its backend calls."""

    def on_operation(self) -> Iterator[None]:
        connection: Connection = self.execution_context.context
        if connection.caller is None:
            raise PermissionError("unauthenticated operation reached the schema")
        self.execution_context.context = RequestContext(connection.services, connection.caller)
        yield

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        return {"backendCalls": context.backend.total} if isinstance(context, RequestContext) else {}
