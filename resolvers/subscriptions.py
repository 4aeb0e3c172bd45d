"""Subscription root: progress events of a running dialogue, from the in-process bus."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from concord.resolvers import convert, inputs
from concord.resolvers.context import Info
from concord.schema.reader import settled
from concord.schema.results import ProgressEvent


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Round started, expert answered or absent, round closed, verdict; ends after the last."
    )
    async def dialogue_events(self, info: Info, dialogue_id: strawberry.ID) -> AsyncGenerator[ProgressEvent, None]:
        checked = inputs.dialogue_id(dialogue_id)
        await settled(info.context.reader.dialogue(checked))  # NOT_FOUND unless the dialogue is the caller's tenant's
        async for event in info.context.services.bus.subscribe(checked):
            yield convert.progress(event)
