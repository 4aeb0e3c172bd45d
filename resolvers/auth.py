"""Bearer authentication: the token registry, the ASGI gate in front of /graphql, and the write permission."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.permission import BasePermission

from concord.resolvers.tokens import Caller, TokensError, read_tokens, record_use, token_hash
from concord.store.clock import Clock, utc_now

log = logging.getLogger("concord.api")
#: How precisely `concord tokens list` knows when a token was last used (each server process writes at most this often).
USE_RESOLUTION = timedelta(minutes=1)


class Tokens:
    """The tokens file, re-read when it changes so `concord tokens add` and `revoke` need no restart."""

    def __init__(self, path: Path, *, clock: Clock = utc_now) -> None:
        self.path = path
        self.clock = clock
        self._stamp: tuple[int, ...] | None = None
        self._callers: dict[str, Caller] = {}
        self._noted: dict[str, datetime] = {}
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
        """The caller an `Authorization: Bearer …` value names, or None (unknown, revoked, expired); fails closed on
        an unsafe file."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        caller = self._valid(token_hash(token.strip()))
        if caller is not None:
            self._note_use(caller)
        return caller

    def current(self, caller: Caller) -> bool:
        """True while the caller's token is still in the file and unexpired."""
        return self._valid(caller.digest) is not None

    def _valid(self, digest: str) -> Caller | None:
        try:
            self._refresh()
        except (OSError, TokensError) as exc:
            log.error("refusing every token: %s", exc)
            return None
        caller = self._callers.get(digest)
        return caller if caller is not None and not caller.expired(self.clock()) else None

    def _note_use(self, caller: Caller) -> None:
        """Record the token's last use in the file, at most once per USE_RESOLUTION per token and process."""
        now = self.clock()
        noted = self._noted.get(caller.digest)
        if noted is not None and now - noted < USE_RESOLUTION:
            return
        self._noted[caller.digest] = now
        try:
            record_use(self.path, caller.digest, now)
        except (OSError, TokensError) as exc:
            log.warning("cannot record the last use of token %s: %s", caller.name, exc)


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
