"""The strawberry ASGI view: builds the connection context and authenticates websockets in connection_init."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from concord.resolvers.auth import Tokens
from concord.resolvers.context import Connection, Services


class ConcordGraphQL(GraphQL[Connection, None]):
    """POST /graphql and graphql-transport-ws; the caller comes from BearerAuth or the connection_init payload."""

    def __init__(self, schema: BaseSchema, services: Services, tokens: Tokens, *, dev: bool) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if dev else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.services = services
        self.tokens = tokens

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Connection:
        state = request.scope.setdefault("state", {})
        return Connection(self.services, state.get("caller"), state=state)

    async def on_ws_connect(self, context: Connection) -> None:
        """Accept a websocket whose handshake or connection_init payload names a known token."""
        if context.caller is None:
            authorization = context.connection_params.get("Authorization") or context.connection_params.get(
                "authorization"
            )
            context.caller = self.tokens.caller(authorization if isinstance(authorization, str) else None)
        if context.caller is None:
            raise ConnectionRejectionError({"message": "missing or unknown bearer token"})
        context.state["caller"] = context.caller  # so TokenWatch re-checks it
