"""Requests/s of the full-dialogue query through Concord (store, decrypt, auth) against a bare strawberry schema
of the same shape serving the same data from memory, all behind uvicorn on 127.0.0.1; 16 concurrent clients,
the servers loaded in alternating windows. The ratio is against the bare schema as strawberry makes it;
`cached_bare_ratio` is against the same schema given Concord's parser and validation caches.

Run: .venv/bin/python bench/graphql.py   (SQLite in a temporary directory; under two minutes)
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name shadows the graphql-core package strawberry imports: drop bench/ from the path first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import asyncio  # noqa: E402
import multiprocessing  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import strawberry  # noqa: E402
import uvicorn  # noqa: E402

CLIENTS = 16
WARMUP_S = 2.0
MEASURE_S = 10.0
WINDOWS = 5
ENTITIES = 100
TARGET = 0.7
QUERY = """query Full($id: ID!) {
  dialogue(id: $id) { perspectives { refsOut { target { label } } links(maxDepth: 3) { depth } } }
}"""
PREFIX = {"perspective": "P", "tension": "T", "recommendation": "R", "evidence": "E", "claim": "C"}
KINDS = ["perspective", "tension", "recommendation", "evidence", "claim"] * 5


# --- the data: one 100-entity dialogue written through the store ------------------------------------


async def build(home: Path) -> tuple[str, str]:
    """Create the database, a token and a 100-entity dialogue with refs; returns (dialogue id, token)."""
    from concord.resolvers.tokens import add_token
    from concord.store.config import Settings
    from concord.store.factory import open_stores
    from concord.store.model import EntityDraft, Expert, PanelSeat, RoundBatch, Score

    settings = Settings(home=home)
    token = add_token(settings.tokens_file, "local", ["read"], "bench")
    async with await open_stores(settings, principal="bench") as stores:
        store = stores.dialogues
        dialogue_id = await store.create_dialogue("Bench dialogue", "How fast is the API?")
        previous: list[str] = []
        for round_ in range(ENTITIES // len(KINDS)):
            drafts, latest, seqs, perspectives = [], {}, {}, []
            for kind in KINDS:
                seqs[kind] = seqs.get(kind, 0) + 1
                local = f"MUFFIN-{PREFIX[kind]}{round_:02d}{seqs[kind]:02d}"
                drafts.append(
                    EntityDraft(
                        kind,
                        local,
                        f"{kind} {round_}.{seqs[kind]}",
                        f"content {round_}.{seqs[kind]} " * 20,
                        ["muffin"],
                        _refs(kind, latest, previous, len(perspectives)),
                    )
                )
                latest[kind] = local
                if kind == "perspective":
                    perspectives.append(f"P{round_:02d}{seqs[kind]:02d}")
            await store.register_round(
                dialogue_id,
                RoundBatch(
                    round=round_,
                    entities=drafts,
                    panel=[PanelSeat("Muffin", "Architect", "Core")],
                    answered=["muffin"],
                    experts=[Expert("muffin", "Architect", "Core")] if round_ == 0 else [],
                    scores={"muffin": Score(3, 2, 2, 1)},
                ),
            )
            previous = perspectives
    return dialogue_id, token


def _refs(kind: str, latest: dict[str, str], previous: list[str], position: int) -> list[Any]:
    from concord.store.model import RefDraft

    if kind == "perspective":
        refs = [RefDraft("refine", previous[position])] if position < len(previous) else []
        return refs + ([RefDraft("support", latest["perspective"])] if "perspective" in latest else [])
    target, ref_type = {
        "tension": ("perspective", "question"),
        "recommendation": ("tension", "address"),
        "evidence": ("recommendation", "support"),
        "claim": ("evidence", "depend"),
    }[kind]
    return [RefDraft(ref_type, latest[target])]


# --- the bare schema: same shape, data in memory, links computed here -------------------------------


@dataclass
class Memory:
    """The dialogue as plain dictionaries."""

    labels: dict[str, str]
    perspectives: list[str]
    out: dict[str, list[tuple[str, str]]]


@strawberry.type
class BareEntity:
    id: strawberry.ID
    label: str


@strawberry.type
class BareRef:
    ref_type: str
    target: BareEntity


@strawberry.type
class BareLink:
    entity: BareEntity
    depth: int
    path: list[strawberry.ID]


@strawberry.type
class BarePerspective:
    id: strawberry.ID
    label: str
    memory: strawberry.Private[Memory]

    @strawberry.field
    def refs_out(self) -> list[BareRef]:
        return [
            BareRef(ref_type=t, target=BareEntity(id=target, label=self.memory.labels[target]))
            for t, target in self.memory.out.get(self.id, [])
        ]

    @strawberry.field
    def links(self, max_depth: int | None = None) -> list[BareLink]:
        parent: dict[str, str | None] = {self.id: None}
        depth = {self.id: 0}
        queue, found = deque([self.id]), []
        while queue:
            node = queue.popleft()
            if max_depth is not None and depth[node] >= max_depth:
                continue
            for _, neighbour in self.memory.out.get(node, []):
                if neighbour not in parent:
                    parent[neighbour], depth[neighbour] = node, depth[node] + 1
                    found.append(neighbour)
                    queue.append(neighbour)
        links = []
        for node in found:
            path, step = [node], parent[node]
            while step is not None:
                path.append(step)
                step = parent[step]
            links.append(
                BareLink(
                    entity=BareEntity(id=node, label=self.memory.labels[node]),
                    depth=depth[node],
                    path=list(reversed(path)),
                )
            )
        return links


@strawberry.type
class BareDialogue:
    memory: strawberry.Private[Memory]

    @strawberry.field
    def perspectives(self) -> list[BarePerspective]:
        return [
            BarePerspective(id=p, label=self.memory.labels[p], memory=self.memory) for p in self.memory.perspectives
        ]


def bare_app(memory: Memory, *, cached: bool) -> Any:
    """A strawberry ASGI app of the same shape over `memory`; `cached` adds the parser and validation
    caches Concord's schema uses, so the comparison isolates the store, decryption and auth."""
    from strawberry.asgi import GraphQL
    from strawberry.extensions import ParserCache, ValidationCache

    @strawberry.type
    class Query:
        @strawberry.field
        def dialogue(self, id: strawberry.ID) -> BareDialogue:
            return BareDialogue(memory=memory)

    extensions = [ParserCache, ValidationCache] if cached else []
    return GraphQL(strawberry.Schema(query=Query, extensions=extensions), graphql_ide=None)


async def load_memory(home: Path, dialogue_id: str) -> Memory:
    """Read the dialogue once through the store into plain dictionaries."""
    from concord.store.config import Settings
    from concord.store.factory import open_stores

    async with await open_stores(Settings(home=home), principal="bench") as stores:
        snap = await stores.dialogues.load_partition(dialogue_id)
    out: dict[str, list[tuple[str, str]]] = {}
    for ref in snap.refs:
        out.setdefault(ref.source, []).append((ref.ref_type, ref.target))
    return Memory(
        {i: e.label for i, e in snap.entities.items()},
        [e.id for e in snap.entities.values() if e.kind == "perspective"],
        out,
    )


# --- servers and load --------------------------------------------------------------------------------


def serve(kind: str, home: str, dialogue_id: str, port: int) -> None:
    """Child process: uvicorn serving Concord or the bare schema on 127.0.0.1:port."""

    async def main() -> None:
        from concord.orchestrator.progress.bus import ProgressBus
        from concord.resolvers.app import create_app
        from concord.store.config import Settings
        from concord.store.factory import open_stores

        settings = Settings(home=Path(home))
        if kind == "concord":
            stores = await open_stores(settings, principal="bench")
            app = create_app(stores, bus=ProgressBus(), starter=None, tokens_file=settings.tokens_file)
        else:
            app = bare_app(await load_memory(Path(home), dialogue_id), cached=kind == "bare-cached")
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        await uvicorn.Server(config).serve()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.post(url, json={"query": "{ __typename }"}):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def load(url: str, body: dict[str, Any], headers: dict[str, str], seconds: float) -> tuple[float, list[float]]:
    """Seconds taken and latencies (ms) of the requests CLIENTS clients send to `url` for `seconds`."""
    latencies: list[float] = []
    began = time.perf_counter()
    stop_at = began + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while (started := time.perf_counter()) < stop_at:
            async with session.post(url, json=body, headers=headers) as response:
                payload = await response.json()
            if response.status != 200 or "errors" in payload:
                raise RuntimeError(f"bad answer: {response.status} {payload}")
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    return time.perf_counter() - began, latencies  # until the last request sent in time has its answer


def start_server(kind: str, home: Path, dialogue_id: str) -> tuple[Any, str]:
    """The server in its own process, and its URL once it answers."""
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=serve, args=(kind, str(home), dialogue_id, port))
    process.start()
    url = f"http://127.0.0.1:{port}/graphql"
    asyncio.run(wait_ready(url))
    return process, url


def measure(home: Path, dialogue_id: str, token: str) -> dict[str, tuple[float, list[float]]]:
    """Requests/s and latencies of both servers, loaded in alternating windows so both see the same machine."""
    body = {"query": QUERY, "variables": {"id": dialogue_id}}
    headers = {"concord": {"Authorization": f"Bearer {token}"}, "bare": {}, "bare-cached": {}}
    servers = {kind: start_server(kind, home, dialogue_id) for kind in headers}
    try:
        for kind, (_, url) in servers.items():
            asyncio.run(load(url, body, headers[kind], WARMUP_S))
        totals: dict[str, tuple[float, list[float]]] = {kind: (0.0, []) for kind in servers}
        for _ in range(WINDOWS):
            for kind, (_, url) in servers.items():
                seconds, latencies = asyncio.run(load(url, body, headers[kind], MEASURE_S / WINDOWS))
                totals[kind] = (totals[kind][0] + seconds, totals[kind][1] + latencies)
        return {kind: (len(latencies) / seconds, latencies) for kind, (seconds, latencies) in totals.items()}
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.join(10)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="concord-bench-") as directory:
        home = Path(directory)
        dialogue_id, token = asyncio.run(build(home))
        results = measure(home, dialogue_id, token)
    concord_rps, concord_ms = results["concord"]
    ratio = concord_rps / results["bare"][0]
    for name, (rps, ms) in results.items():
        print(
            f"{name:12} {rps:8.1f} req/s  p50 {percentile(ms, 0.5):6.2f} ms  p99 {percentile(ms, 0.99):6.2f} ms  "
            f"mean {statistics.fmean(ms):6.2f} ms  ({len(ms)} requests in {WINDOWS} windows, {CLIENTS} clients, "
            f"{ENTITIES} entities)"
        )
    print(
        f"BENCH graphql ratio={ratio:.2f} target=>={TARGET} p50_ms={percentile(concord_ms, 0.5):.2f} "
        f"p99_ms={percentile(concord_ms, 0.99):.2f} cached_bare_ratio={concord_rps / results['bare-cached'][0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
