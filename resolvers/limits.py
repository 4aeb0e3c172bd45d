"""Limits on what one request may ask: body size, depth, aliases, tokens and nested `links`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationRule,
)
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

MAX_BODY_BYTES = 1024 * 1024
#: Largest refused body still read to its end before answering 413; a larger one gets the answer at once.
DRAIN_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 2000


def limit_extensions() -> list[Callable[[], SchemaExtension]]:
    """Extension factories enforcing the token limit and the depth, alias and nested-links rules."""
    return [partial(MaxTokensLimiter, max_token_count=MAX_TOKENS), partial(AddValidationRules, LIMIT_RULES)]


class NoNestedLinks(ValidationRule):
    """`links` inside `links` multiplies the result by the dialogue's size at each level: refuse it."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            d.name.value: d for d in self.context.document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        if _links_nesting(node, fragments, frozenset()) > 1:
            self.report_error(
                GraphQLError(
                    "`links` may not be selected inside `links`; query the reached entity by id instead", [node]
                )
            )


def _links_nesting(
    node: OperationDefinitionNode | FieldNode | InlineFragmentNode | FragmentDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    """The most `links` fields on one path below `node`."""
    deepest = 0
    for selection in node.selection_set.selections if node.selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen or name not in fragments:
                continue
            deepest = max(deepest, _links_nesting(fragments[name], fragments, seen | {name}))
        elif isinstance(selection, (FieldNode, InlineFragmentNode)):
            own = isinstance(selection, FieldNode) and selection.name.value == "links"
            deepest = max(deepest, own + _links_nesting(selection, fragments, seen))
    return deepest


#: Built once (the limiters would build new rule classes per request), so ValidationCache recognises a document.
LIMIT_RULES: list[type[ASTValidationRule]] = [depth_rule(MAX_DEPTH, None), aliases_rule(MAX_ALIASES), NoNestedLinks]


class BodyLimit:
    """Answers 413 to a request body over `max_bytes` before anything parses it."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send, drain=declared.isdigit() and int(declared) <= DRAIN_BYTES)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, drain=more)
                return
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, *, drain: bool) -> None:
        """413; when `drain`, after reading and dropping the rest of the body (up to DRAIN_BYTES) so that a client
        still sending it is listening when the answer comes, instead of seeing the connection reset."""
        dropped = 0
        while drain and dropped <= DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            dropped += len(message.get("body", b""))
            drain = message.get("more_body", False)
        body = {
            "data": None,
            "errors": [
                {"message": f"request body exceeds {self.max_bytes} bytes", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
            ],
        }
        await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that hands out the buffered body once, then defers to the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
