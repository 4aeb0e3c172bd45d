"""Results of the cross-dialogue queries, the audit check and the progress stream."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from concord.schema.dialogue import Dialogue
from concord.schema.entities import Tension


@strawberry.type(description="Relay paging state; pass endCursor as `after` for the next page.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(description="Always false: pages are read forwards, from `after`.")
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A dialogue and the cursor that resumes after it.")
class DialogueEdge:
    cursor: str
    node: Dialogue


@strawberry.type(description="One page of dialogues (a Relay connection; `nodes` lists the same dialogues).")
class DialogueConnection:
    edges: list[DialogueEdge]
    nodes: list[Dialogue]
    page_info: PageInfo


@strawberry.type(description="A tension and the cursor that resumes after it.")
class TensionEdge:
    cursor: str
    node: Tension


@strawberry.type(description="One page of tensions not yet resolved, across dialogues (a Relay connection).")
class TensionConnection:
    edges: list[TensionEdge]
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


@strawberry.type(
    description="One step of a running dialogue: round started, expert answered or absent, round closed, verdict."
)
class ProgressEvent:
    dialogue_id: strawberry.ID
    kind: str
    round: int | None
    expert: str | None
    data: JSON
    at: str
