"""Errors as clients see them: domain errors carry a code, everything unexpected is masked."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from concord.store.errors import AlreadyExists, ConflictError, ConvergenceBlocked, NotFound, ValidationFailed

MASKED = "internal error"


def unavailable(message: str) -> GraphQLError:
    """A feature this server was started without."""
    return GraphQLError(message, extensions={"code": "UNAVAILABLE"})


def domain_extensions(error: BaseException | None) -> dict[str, Any] | None:
    """`extensions` for an error the store raises on purpose, None for anything else."""
    if isinstance(error, NotFound):
        return {"code": "NOT_FOUND"}
    if isinstance(error, ValidationFailed):
        return {"code": "VALIDATION", "problems": [p.to_json() for p in error.problems]}
    if isinstance(error, ConvergenceBlocked):
        return {"code": "CONVERGENCE_BLOCKED", "blockers": error.blockers, "state": error.state}
    if isinstance(error, (AlreadyExists, ConflictError)):
        return {"code": "CONFLICT"}
    return None


def raised_in_resolver(error: GraphQLError) -> bool:
    """True for an exception from our code; parse and validation errors and deliberate GraphQLErrors pass as they are."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def unexpected(error: GraphQLError) -> bool:
    """True for the errors that are masked (and logged with their traceback)."""
    return raised_in_resolver(error) and domain_extensions(error.original_error) is None


class ClientErrors(MaskErrors):
    """Turns domain errors into coded GraphQL errors and masks every other exception."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=raised_in_resolver, error_message=MASKED)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        extensions = domain_extensions(error.original_error)
        message = MASKED if extensions is None else str(error.original_error)
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions or {"code": "INTERNAL"},
        )
