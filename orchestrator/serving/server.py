"""`concord serve`: uvicorn over the configured stores, one app per worker process."""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.progress.peers import PeerLink
from concord.resolvers.app import create_app
from concord.resolvers.ports import DialogueStarter
from concord.store.config import Settings
from concord.store.factory import Stores, open_stores

#: A callable that builds the dialogue starter from the worker's stores and bus, as "module:function".
StarterFactory = Callable[[Stores, ProgressBus], DialogueStarter]
_DEV = "CONCORD_SERVE_DEV"
_STARTER = "CONCORD_SERVE_STARTER"


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    dev: bool = False,
    workers: int = 1,
    starter: str | None = None,
) -> None:
    """Run the API until interrupted; `starter` names a StarterFactory as "module:function" (none: no startDialogue)."""
    os.environ.update(settings_environment(settings))
    os.environ[_DEV] = "1" if dev else ""
    os.environ[_STARTER] = starter or ""
    uvicorn.run(
        "concord.orchestrator.serving.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """The CONCORD_* variables that make Settings.from_env() return `settings` in a worker process."""
    environment = {
        "CONCORD_HOME": str(settings.home),
        "CONCORD_TENANT": settings.tenant,
        "CONCORD_KEK_EPOCH": str(settings.epoch),
        "CONCORD_STORE": settings.store,
        "CONCORD_TABLE": settings.table,
        "CONCORD_KEY_PROVIDER": settings.key_provider,
    }
    if settings.kms_key_id:
        environment["CONCORD_KMS_KEY_ID"] = settings.kms_key_id
    if settings.kms_mac_key_id:
        environment["CONCORD_KMS_MAC_KEY_ID"] = settings.kms_mac_key_id
    return environment


def app_from_environment() -> Starlette:
    """One worker's app: opens the stores inside the worker's event loop when uvicorn starts it."""
    settings = Settings.from_env()
    served = _Deferred()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        bus = ProgressBus()
        async with await open_stores(settings, principal="concord-api") as stores, PeerLink(bus, settings):
            factory = _starter_factory(os.environ.get(_STARTER, ""))
            served.app = create_app(
                stores,
                bus=bus,
                starter=factory(stores, bus) if factory else None,
                dev=bool(os.environ.get(_DEV)),
                tokens_file=settings.tokens_file,
            )
            yield

    return Starlette(routes=[Mount("/", app=served)], lifespan=lifespan)


def _starter_factory(path: str) -> StarterFactory | None:
    if not path:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


class _Deferred:
    """The Concord app, built once the stores are open."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
