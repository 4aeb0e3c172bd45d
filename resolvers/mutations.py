"""Mutation root: writes need the `write` scope; each field is one store write."""

from __future__ import annotations

from typing import Annotated

import strawberry

from concord.resolvers import convert, inputs
from concord.resolvers.auth import CanWrite
from concord.resolvers.context import Info
from concord.resolvers.errors import unavailable
from concord.schema.dialogue import Verdict
from concord.schema.entities import Ref, Tension
from concord.schema.enums import RefType, TensionStatus
from concord.schema.inputs import StartDialogueInput, VerdictInput


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Validate, start the panel in the background and return the new dialogue's id at once.",
    )
    async def start_dialogue(self, info: Info, input: StartDialogueInput) -> strawberry.ID:
        starter = info.context.services.starter
        if starter is None:
            raise unavailable("this server runs no dialogues; start them with `concord run`")
        return strawberry.ID(await starter(inputs.start_request(input, info.context.store_for_background())))

    @strawberry.mutation(permission_classes=[CanWrite], description="Register a ref between two entities.")
    async def register_ref(
        self,
        info: Info,
        dialogue_id: strawberry.ID,
        source_id: Annotated[strawberry.ID, strawberry.argument(name="source")],
        ref_type: RefType,
        target_id: Annotated[strawberry.ID, strawberry.argument(name="target")],
    ) -> Ref:
        checked = inputs.dialogue_id(dialogue_id)
        ref = await info.context.dialogues.register_ref(checked, source_id, ref_type.value, target_id)
        info.context.wrote()
        return convert.ref(checked, ref)

    @strawberry.mutation(permission_classes=[CanWrite], description="Move a tension along its lifecycle.")
    async def update_tension_status(
        self,
        info: Info,
        dialogue_id: strawberry.ID,
        id: strawberry.ID,
        status: TensionStatus,
        actors: list[str] | None = None,
        reason: str | None = None,
    ) -> Tension:
        checked = inputs.dialogue_id(dialogue_id)
        updated = await info.context.dialogues.update_entity_status(
            checked, inputs.tension_id(id), status.value, actors=actors or [], reason=reason
        )
        info.context.wrote()
        return convert.entity_as(Tension, checked, updated)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Register a verdict; a final one is refused until the panel converged, unless forced.",
    )
    async def register_verdict(
        self, info: Info, dialogue_id: strawberry.ID, input: VerdictInput, force: bool = False
    ) -> Verdict:
        checked = inputs.dialogue_id(dialogue_id)
        stored = await info.context.dialogues.register_verdict(checked, inputs.verdict(input), force=force)
        info.context.wrote()
        return convert.verdict(checked, stored)
