"""Revocation on open websockets: a socket's token is re-checked on every message and every second while it is idle."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from concord.resolvers.auth import Tokens
from concord.resolvers.tokens import Caller

#: The close code of a websocket whose token was revoked or expired (graphql-transport-ws uses 4403 for Forbidden).
CLOSE_REVOKED = 4403
#: Seconds between the checks of an idle socket's token.
RECHECK_INTERVAL = 1.0


class TokenWatch:
    """Closes a websocket with CLOSE_REVOKED once its caller's token is revoked or expired: when its next message
    arrives (that message never reaches the schema) or at the next periodic check, whichever comes first."""

    def __init__(self, app: ASGIApp, tokens: Tokens, *, interval: float = RECHECK_INTERVAL) -> None:
        self.app = app
        self.tokens = tokens
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        socket = _Watched(self.tokens, scope.setdefault("state", {}), send)
        watcher = asyncio.create_task(socket.watch(self.interval))
        try:
            await self.app(scope, socket.receiving(receive), socket.send)
        finally:
            watcher.cancel()


class _Watched:
    """One websocket: its caller (once authenticated), and whether it was closed for a revoked token."""

    def __init__(self, tokens: Tokens, state: dict[str, Any], send: Send) -> None:
        self.tokens = tokens
        self.state = state
        self._send = send
        self.closed = False

    def revoked(self) -> bool:
        """True when the socket has a caller whose token no longer holds."""
        caller: Caller | None = self.state.get("caller")
        return caller is not None and not self.tokens.current(caller)

    async def close(self) -> None:
        """Close the socket for its revoked token, once."""
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": CLOSE_REVOKED, "reason": "token revoked or expired"})

    async def send(self, message: Message) -> None:
        """Pass the app's messages on until the socket was closed here; after that, nothing more goes out."""
        if not self.closed:
            await self._send(message)

    def receiving(self, receive: Receive) -> Receive:
        """`receive`, checking the token before each message reaches the app."""

        async def checked() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive" and self.revoked():
                await self.close()
                return {"type": "websocket.disconnect", "code": CLOSE_REVOKED}
            return message

        return checked

    async def watch(self, interval: float) -> None:
        """Check the token every `interval` seconds until it no longer holds, then close the socket."""
        while not self.closed:
            await asyncio.sleep(interval)
            if self.revoked():
                await self.close()
