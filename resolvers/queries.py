"""Query root: each field plans its reads from the selection set and calls one access pattern."""

from __future__ import annotations

import strawberry

from concord.resolvers import convert, inputs
from concord.resolvers.context import Info
from concord.resolvers.planning import (
    below,
    below_nodes,
    dialogue_needs_partition,
    entities_need_partition,
    entity_needs_partition,
)
from concord.schema.dialogue import Dialogue, Scoreboard
from concord.schema.entities import Entity, Tension
from concord.schema.enums import DialogueStatus
from concord.schema.reader import MaybeAwaitable
from concord.schema.results import (
    AuditReport,
    DialogueConnection,
    DialogueEdge,
    PageInfo,
    Participation,
    TensionConnection,
    TensionEdge,
)


@strawberry.type
class Query:
    @strawberry.field(description="One dialogue of the caller's tenant.")
    def dialogue(self, info: Info, id: strawberry.ID) -> MaybeAwaitable[Dialogue | None]:
        dialogue_id = inputs.dialogue_id(id)
        reader = info.context.reader
        reader.plan(dialogue_id, whole=dialogue_needs_partition(below(info.selected_fields)))
        return reader.dialogue(dialogue_id)

    @strawberry.field(description="Dialogues with a status, oldest update first (AP9).")
    async def dialogues(
        self, info: Info, status: DialogueStatus = DialogueStatus.OPEN, first: int = 20, after: str | None = None
    ) -> DialogueConnection:
        limit = inputs.page_size(first)
        try:
            page = await info.context.analytics.list_dialogues(status.value, limit=limit, cursor=after)
        except (ValueError, TypeError):
            if after is None:
                raise
            raise inputs.invalid_cursor() from None
        whole = dialogue_needs_partition(below_nodes(info.selected_fields))
        for d in page.dialogues:
            info.context.reader.plan(d.id, whole=whole)
        nodes = [convert.dialogue(d) for d in page.dialogues]
        return DialogueConnection(
            edges=[DialogueEdge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=False)],
            nodes=nodes,
            page_info=page_info(page.cursors, page.cursor),
        )

    @strawberry.field(description="One entity by display id; refs and history by their own patterns (AP5-AP7).")
    def entity(self, info: Info, dialogue_id: strawberry.ID, id: strawberry.ID) -> MaybeAwaitable[Entity | None]:
        checked = inputs.dialogue_id(dialogue_id)
        reader = info.context.reader
        reader.plan(checked, whole=entity_needs_partition(below(info.selected_fields)))
        return reader.entity(checked, id)

    @strawberry.field(description="Tensions not yet resolved across the tenant's dialogues (AP10).")
    async def open_tensions(self, info: Info, first: int = 20, after: str | None = None) -> TensionConnection:
        limit = inputs.page_size(first)
        try:
            page = await info.context.analytics.open_tensions(limit=limit, cursor=after)
        except (ValueError, TypeError):
            if after is None:
                raise
            raise inputs.invalid_cursor() from None
        whole = entities_need_partition(below_nodes(info.selected_fields))
        for dialogue_id, _ in page.tensions:
            info.context.reader.plan(dialogue_id, whole=whole)
        nodes = [convert.entity_as(Tension, dialogue_id, t) for dialogue_id, t in page.tensions]
        return TensionConnection(
            edges=[TensionEdge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=False)],
            nodes=nodes,
            page_info=page_info(page.cursors, page.cursor),
        )

    @strawberry.field(description="Dialogues an expert role took part in, found through the blind index (AP11).")
    async def expert_participation(self, info: Info, role: str) -> list[Participation]:
        found = await info.context.analytics.expert_participation(role)
        return [
            Participation(dialogue_id=strawberry.ID(p.dialogue_id), expert=p.expert, first_round=p.first_round)
            for p in found
        ]

    @strawberry.field(description="Scores per round and expert, and the convergence gate (AP8).")
    def scoreboard(self, info: Info, dialogue_id: strawberry.ID) -> MaybeAwaitable[Scoreboard]:
        return info.context.reader.scoreboard(inputs.dialogue_id(dialogue_id))

    @strawberry.field(description="Recompute the dialogue's audit hash chain.")
    async def audit_report(self, info: Info, dialogue_id: strawberry.ID) -> AuditReport:
        return convert.audit_report(await info.context.dialogues.verify_audit(inputs.dialogue_id(dialogue_id)))


def page_info(cursors: list[str], next_page: str | None) -> PageInfo:
    """Relay paging state of a forward page: its first and last cursors, and whether a next page exists."""
    return PageInfo(
        has_next_page=next_page is not None,
        has_previous_page=False,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
