"""Bearer authentication: the token registry, the ASGI gate in front of /graphql, and the write permission."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.permission import BasePermission

from concord.resolvers.tokens import Caller, TokensError, read_tokens, token_hash

log = logging.getLogger("concord.api")


class Tokens:
    """The tokens file, re-read when it changes so `concord tokens add` needs no restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, ...] | None = None
        self._callers: dict[str, Caller] = {}
        self._refresh()

    def _refresh(self) -> None:
        """Re-read the file when its mtime, size, inode or mode changed; TokensError when missing or unsafe."""
        try:
            status = self.path.stat()
            stamp: tuple[int, ...] | None = (status.st_mtime_ns, status.st_size, status.st_ino, status.st_mode)
        except FileNotFoundError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            self._callers, self._stamp = read_tokens(self.path), stamp

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller an `Authorization: Bearer …` value names, or None; fails closed on an unsafe file."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            self._refresh()
        except (OSError, TokensError) as exc:
            log.error("refusing every token: %s", exc)
            return None
        return self._callers.get(token_hash(token.strip()))


class BearerAuth:
    """Answers 401 to HTTP requests without a known token; websockets may also authenticate in connection_init."""

    def __init__(self, app: ASGIApp, tokens: Tokens, *, ide: bool) -> None:
        self.app = app
        self.tokens = tokens
        self.ide = ide

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        caller = self.tokens.caller(authorization)
        if scope["type"] == "http" and caller is None and not self._ide_page(scope, headers):
            await unauthenticated()(scope, receive, send)
            return
        if scope["type"] == "websocket" and authorization is not None and caller is None:
            await send({"type": "websocket.close", "code": 1008, "reason": "unknown bearer token"})
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)

    def _ide_page(self, scope: Scope, headers: Headers) -> bool:
        """GraphiQL's page itself is served without a token in dev mode; its queries still need one."""
        return self.ide and scope["method"] == "GET" and "text/html" in headers.get("accept", "")


def unauthenticated() -> JSONResponse:
    """401 with a GraphQL-shaped body."""
    body: dict[str, Any] = {
        "data": None,
        "errors": [{"message": "missing or unknown bearer token", "extensions": {"code": "UNAUTHENTICATED"}}],
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="concord"'})


class CanWrite(BasePermission):
    """Mutations need a token with the `write` scope."""

    message = "this token may only read; mutations need the 'write' scope"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return bool(info.context.caller.may("write"))
