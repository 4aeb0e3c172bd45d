"""The assembled strawberry schema, and its SDL as committed in schema/schema.graphql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ParserCache, ValidationCache
from strawberry.types import ExecutionContext

import concord.schema as schema_package
from concord.resolvers.context import PerOperation
from concord.resolvers.errors import ClientErrors, unexpected
from concord.resolvers.limits import limit_extensions
from concord.resolvers.mutations import Mutation
from concord.resolvers.queries import Query
from concord.resolvers.subscriptions import Subscription
from concord.schema.entities import Claim, Evidence, Perspective, Recommendation, Tension

SDL_PATH = Path(schema_package.__file__).with_name("schema.graphql")


class ConcordSchema(strawberry.Schema):
    """Logs only the errors it masks: user errors are answers, not incidents."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        super().process_errors([e for e in errors if unexpected(e)], execution_context)


def build_schema(*, dev: bool = False) -> strawberry.Schema:
    """The Concord schema; introspection only when `dev`."""
    extensions: list[Any] = [PerOperation, ClientErrors, *limit_extensions(), ParserCache, ValidationCache]
    if not dev:
        extensions.append(DisableIntrospection)
    return ConcordSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Perspective, Tension, Recommendation, Evidence, Claim],
        extensions=extensions,
    )


def sdl() -> str:
    """The printed schema."""
    return build_schema(dev=True).as_str() + "\n"


def write_sdl(path: Path = SDL_PATH) -> Path:
    """Write the printed schema (what `concord schema export` does) and return where."""
    path.write_text(sdl())
    return path
