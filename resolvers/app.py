"""The Starlette application: /graphql behind bearer auth and the body limit, /healthz and /readyz."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from concord.resolvers.auth import BearerAuth, Tokens
from concord.resolvers.context import Services
from concord.resolvers.limits import BodyLimit
from concord.resolvers.loaders import PartitionCache
from concord.resolvers.ports import DialogueStarter, ProgressSource
from concord.resolvers.schema import build_schema
from concord.resolvers.token_watch import RECHECK_INTERVAL, TokenWatch
from concord.resolvers.view import ConcordGraphQL
from concord.store.factory import Stores

log = logging.getLogger("concord.api")


def create_app(
    stores: Stores,
    *,
    bus: ProgressSource,
    starter: DialogueStarter | None,
    dev: bool = False,
    tokens_file: Path,
    token_recheck: float = RECHECK_INTERVAL,
) -> Starlette:
    """Serve the stores' backend and keys over GraphQL; each request gets stores of its token's tenant, and an open
    websocket is closed within `token_recheck` seconds of its token's revocation."""
    services = Services(
        backend=stores.backend,
        keys=stores.keys,
        deks=stores.dialogues.deks,
        epoch=stores.dialogues.epoch,
        clock=stores.dialogues.clock,
        bus=bus,
        starter=starter,
        partitions=PartitionCache(),
    )
    tokens = Tokens(tokens_file)
    view = ConcordGraphQL(build_schema(dev=dev), services, tokens, dev=dev)
    graphql = BearerAuth(TokenWatch(BodyLimit(view), tokens, interval=token_recheck), tokens, ide=dev)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        try:
            await stores.backend.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("not ready: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )
