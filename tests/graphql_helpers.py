"""Shared by the GraphQL tests: uvicorn on 127.0.0.1 in the test's loop, an HTTP client, dialogue builders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent
from concord.resolvers.app import create_app
from concord.resolvers.ports import StartRequest
from concord.resolvers.tokens import add_token
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import Problem, ValidationFailed
from concord.store.factory import Stores
from concord.store.model import EntityDraft, Expert, PanelSeat, RefDraft, RoundBatch, Score, StatusChange

PANEL = [
    ("Muffin", "Relational Database Architect"),
    ("Cupcake", "Single-Table Design Specialist"),
    ("Scone", "Platform Engineer"),
]
PREFIX = {"perspective": "P", "tension": "T", "recommendation": "R", "evidence": "E", "claim": "C"}
#: The kinds of one round's entities, in order; a builder takes a prefix of it.
ROUND_KINDS = ["perspective", "tension", "recommendation", "evidence", "claim"] * 5
#: What the fake run publishes once someone listens.
RUN_SCRIPT = [
    ("round_started", 0, None, {"panel": ["muffin", "cupcake"]}),
    ("expert_answered", 0, "muffin", {"tokens": 812}),
    ("expert_absent", 0, "cupcake", {"reason": "timeout"}),
    ("round_closed", 0, None, {"velocity": 0, "converge_percent": 100.0}),
    ("verdict", 0, None, {"verdict": "final"}),
]


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run uvicorn for `app` on a free port of 127.0.0.1 in this event loop; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="websockets-sansio")
    )
    server.capture_signals = nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class Slot:
    """The app of the current test behind the one server of the session (uvicorn starts once, not per test)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None, "no test app is being served"
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
async def server() -> AsyncIterator[tuple[str, Slot]]:
    """One uvicorn on 127.0.0.1 for the session, serving whatever app a test puts in its slot."""
    slot = Slot()
    async with serve(slot) as url:
        yield url, slot


class FakeStarter:
    """Checks the pool, creates the dialogue through the store it is handed, and runs a scripted panel in the
    background that publishes its progress on the bus once someone subscribes."""

    def __init__(self, bus: ProgressBus) -> None:
        self.bus = bus
        self.requests: list[StartRequest] = []
        self.runs: set[asyncio.Task[None]] = set()

    async def __call__(self, request: StartRequest) -> str:
        if not isinstance(request.pool, dict) or not request.pool.get("experts"):
            raise ValidationFailed([Problem("invalid_pool", "the pool lists no experts", "input.pool", "add experts")])
        dialogue_id = await request.store.create_dialogue(request.title, request.question)
        self.requests.append(request)
        run = asyncio.create_task(self._run(dialogue_id))
        self.runs.add(run)
        run.add_done_callback(self.runs.discard)
        return dialogue_id

    async def _run(self, dialogue_id: str) -> None:
        async with asyncio.timeout(10):
            while self.bus.subscribers(dialogue_id) == 0:
                await asyncio.sleep(0.01)
        for kind, round_, expert, data in RUN_SCRIPT:
            self.bus.publish(ProgressEvent(dialogue_id, kind, round_, expert, data))

    async def stop(self) -> None:
        """Cancel runs nobody subscribed to."""
        for run in list(self.runs):
            run.cancel()
            with suppress(asyncio.CancelledError, TimeoutError):
                await run


@dataclass
class Api:
    """A running server: its URL, an HTTP client, tokens by name, the bus, the stores and the fake starter."""

    url: str
    client: httpx.AsyncClient
    tokens: dict[str, str]
    bus: ProgressBus
    stores: Stores
    starter: FakeStarter
    slot: Slot

    def headers(self, token: str = "writer") -> dict[str, str]:
        """Authorization header of a named token."""
        return {"Authorization": f"Bearer {self.tokens[token]}"}

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str = "writer"
    ) -> httpx.Response:
        """POST a GraphQL request."""
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers(token)
        )

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str = "writer"
    ) -> dict[str, Any]:
        """POST a GraphQL request and return the JSON body of its 200 answer."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "Traceback" not in response.text and 'File "' not in response.text
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str = "writer"
    ) -> dict[str, Any]:
        """The data of a request that must succeed."""
        body = await self.query(query, variables, token=token)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def calls(self, query: str, variables: dict[str, Any] | None = None) -> int:
        """Backend calls one successful request made, as the response reports them."""
        body = await self.query(query, variables)
        assert "errors" not in body, body["errors"]
        return int(body["extensions"]["backendCalls"])


def tokens_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A tokens file with `writer` and `reader` of tenant local and `other` of tenant other."""
    path = tmp_path / "home" / "tokens.json"
    tokens = {
        "writer": add_token(path, "local", ["read", "write"], "writer"),
        "reader": add_token(path, "local", ["read"], "reader"),
        "other": add_token(path, "other", ["read", "write"], "other"),
    }
    return path, tokens


@pytest.fixture
async def api(stores: Stores, tmp_path: Path, server: tuple[str, Slot]) -> AsyncIterator[Api]:
    """Concord served over `stores` (both backends) on 127.0.0.1, with a fake dialogue starter."""
    url, slot = server
    path, tokens = tokens_file(tmp_path)
    bus = ProgressBus()
    starter = FakeStarter(bus)
    slot.app = create_app(stores, bus=bus, starter=starter, dev=False, tokens_file=path)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Api(url, client, tokens, bus, stores, starter, slot)
        await starter.stop()
    slot.app = None


def _refs(kind: str, latest: dict[str, str], earlier_perspective: str | None) -> list[RefDraft]:
    """A valid ref for each kind to what came just before it."""
    if kind == "perspective":
        if earlier_perspective:
            return [RefDraft("refine", earlier_perspective)]
        return [RefDraft("support", latest["perspective"])] if "perspective" in latest else []
    target_kind, ref_type = {
        "tension": ("perspective", "question"),
        "recommendation": ("tension", "address"),
        "evidence": ("recommendation", "support"),
        "claim": ("evidence", "depend"),
    }[kind]
    return [RefDraft(ref_type, latest[target_kind])]


def round_batch(round_: int, **fields: Any) -> RoundBatch:
    """A round with the three-expert panel, everyone answering."""
    batch = RoundBatch(
        round=round_,
        panel=[PanelSeat(name, role, "Core", "pool", 0.9) for name, role in PANEL],
        experts=[Expert(name.lower(), role, "Core", "pool", 0.9) for name, role in PANEL] if round_ == 0 else [],
        answered=[name.lower() for name, _ in PANEL],
        scores={name.lower(): Score(3, 2, 2, 1) for name, _ in PANEL},
    )
    for name, value in fields.items():
        setattr(batch, name, value)
    return batch


async def build_dialogue(
    store: DialogueStore, entities: int, *, title: str = "Storage design", per_round: int = 25
) -> str:
    """A dialogue of `entities` entities in rounds of up to `per_round` (kinds in turn: P, T, R, E, C), each entity
    referring to what came before it; from round 1 on, each round resolves the first tension of the round before."""
    dialogue_id = await store.create_dialogue(title, "Which storage design should Concord use?")
    made = 0
    round_ = 0
    previous_perspectives: list[str] = []
    while made < entities:
        kinds = ROUND_KINDS[: min(per_round, entities - made)]
        seqs: dict[str, int] = {}
        latest: dict[str, str] = {}
        drafts = []
        perspectives: list[str] = []
        for kind in kinds:
            seqs[kind] = seqs.get(kind, 0) + 1
            local = f"MUFFIN-{PREFIX[kind]}{round_:02d}{seqs[kind]:02d}"
            earlier = (
                previous_perspectives[len(perspectives)]
                if kind == "perspective" and len(perspectives) < len(previous_perspectives)
                else None
            )
            drafts.append(
                EntityDraft(
                    kind,
                    local,
                    f"{kind} {round_}.{seqs[kind]}",
                    f"content of {kind} {round_}.{seqs[kind]}",
                    ["muffin"],
                    _refs(kind, latest, earlier),
                )
            )
            latest[kind] = local
            if kind == "perspective":
                perspectives.append(f"P{round_:02d}{seqs[kind]:02d}")
        changes = [StatusChange(f"T{round_ - 1:02d}01", "resolved", ["muffin"], reason="settled")] if round_ else []
        await store.register_round(dialogue_id, round_batch(round_, entities=drafts, status_changes=changes))
        previous_perspectives = perspectives
        made += len(kinds)
        round_ += 1
    return dialogue_id


async def converge(store: DialogueStore, dialogue_id: str, round_: int) -> None:
    """Register a round in which nothing is open and every expert signals converge."""
    await store.register_round(
        dialogue_id, round_batch(round_, signals=[n.lower() for n, _ in PANEL], open_tensions=0, new_perspectives=0)
    )
