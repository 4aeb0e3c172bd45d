"""The dialogue starter the GraphQL API runs `startDialogue` with: validate, create, run in the background."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from concord.orchestrator.engine.providers import Provider, make_provider
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.panel.pools import PoolError, parse_pool
from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent
from concord.resolvers.ports import StartRequest
from concord.store.errors import Problem, ValidationFailed
from concord.store.factory import Stores

log = logging.getLogger("concord.runs")


class BackgroundStarter:
    """Starts each dialogue as an asyncio task of the serving process; keeps the tasks until they end."""

    def __init__(self, provider: Provider, bus: ProgressBus, out_dir: Path, defaults: RunSettings) -> None:
        self.provider = provider
        self.bus = bus
        self.out_dir = out_dir
        self.defaults = defaults
        self.tasks: set[asyncio.Task[object]] = set()

    async def __call__(self, request: StartRequest) -> str:
        """Validate the request, create the dialogue and return its id; the run continues in the background."""
        try:
            pool = parse_pool(request.pool)
        except PoolError as exc:
            raise ValidationFailed(
                [Problem("invalid_pool", e.message, f"pool.{e.field}", "fix the expert pool") for e in exc.errors]
            ) from exc
        settings = RunSettings(
            **{
                **self.defaults.to_json(),
                "max_rounds": request.max_rounds or self.defaults.max_rounds,
                "seed": request.seed if request.seed is not None else self.defaults.seed,
            }
        )
        orchestrator = Orchestrator(request.store, self.provider, bus=self.bus)
        dialogue_id = await orchestrator.create(request.question, pool, settings, self.out_dir, title=request.title)
        task = asyncio.create_task(self._run(orchestrator, dialogue_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return dialogue_id

    async def _run(self, orchestrator: Orchestrator, dialogue_id: str) -> None:
        try:
            await orchestrator.run(dialogue_id)
        except Exception as exc:  # noqa: BLE001 - a failed run is reported on the stream, not raised into the loop
            log.error("dialogue %s failed: %s", dialogue_id, type(exc).__name__)
            self.bus.publish(ProgressEvent(dialogue_id, "dialogue_failed", data={"reason": type(exc).__name__}))


def make_starter(stores: Stores, bus: ProgressBus) -> BackgroundStarter:
    """Starter for `concord serve`: the agents `Settings.api_provider` names (the `sim` panel by default)."""
    settings = stores.settings
    provider = (
        make_provider("anthropic", api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url)
        if settings.api_provider == "anthropic"
        else make_provider("sim", seed=0)
    )
    return BackgroundStarter(provider, bus, settings.home / "dialogues", RunSettings(provider=settings.api_provider))
