"""Results of the cross-dialogue queries, the audit check and the progress stream."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from .dialogue import Dialogue
from .entities import Tension


@strawberry.type(description="Relay-style paging state; pass endCursor as `after` for the next page.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="One page of dialogues.")
class DialogueConnection:
    nodes: list[Dialogue]
    page_info: PageInfo


@strawberry.type(description="One page of tensions not yet resolved, across dialogues.")
class TensionConnection:
    nodes: list[Tension]
    page_info: PageInfo


@strawberry.type(description="A dialogue an expert role took part in, from its first round.")
class Participation:
    dialogue_id: strawberry.ID
    expert: str
    first_round: int


@strawberry.type(description="Outcome of recomputing a dialogue's audit hash chain.")
class AuditReport:
    dialogue_id: strawberry.ID
    ok: bool
    entries: int
    head: str
    first_broken: int | None
    problem: str | None


@strawberry.type(description="One step of a running dialogue: round started, expert answered or absent, round closed, verdict.")
class ProgressEvent:
    dialogue_id: strawberry.ID
    kind: str
    round: int | None
    expert: str | None
    data: JSON
    at: str
