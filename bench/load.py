"""Load: 32 concurrent GraphQL clients mixing reads and writes while `sim` dialogues run on the same store, then a
check that every acknowledged write is readable. SQLite in a temporary directory, then DynamoDB Local (started here,
stopped by PID). Loopback only; bounded in time (SECONDS per backend) and in count (MAX_REQUESTS_PER_CLIENT, MAX_SIMS).

Run: .venv/bin/python bench/load.py [--seconds N] [--backend sqlite|dynamodb|both]   (under two minutes)

Each request is recorded with its kind, latency and outcome: ok; an expected domain refusal (a status transition a
racing client made invalid, a write that lost every retry to other writers: CONFLICT); a deliberately provoked
refusal (a self-ref, a refine across kinds, a missing entity: counted apart, and an error if it is *not* refused);
or an unexpected error (HTTP status other than 200, transport error or timeout, masked internal error, any other
error code, an answer that contradicts the request or itself). Then every ok registerRef must show in its source's
refsOut, every ok updateTensionStatus must show as an event of that tension's history (found by its unique reason),
every tension's history must replay along the allowed transitions to its current status, and every dialogue's audit
chain must verify: an acknowledged write that is not found is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/graphql.py would shadow the graphql-core package strawberry imports: drop bench/ from the path; put the
# project root on it instead, for `tests.services` (DynamoDB Local) beside the packages.
sys.path[:] = [str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() not in (Path(__file__).resolve().parent, ROOT)
]

import aiohttp  # noqa: E402 - after the path fix above

CLIENTS = 32
SECONDS = 40.0
#: Hard bounds besides the clock.
MAX_REQUESTS_PER_CLIENT = 50_000
MAX_SIMS = 40
REQUEST_TIMEOUT_S = 30.0
#: How long a launched API process waits for its go before it exits on its own.
GATE_TIMEOUT_S = 300.0
#: Seconds the last sim dialogue gets to reach its end after the clients stop (alone, one takes a few seconds).
SIM_FINISH_S = 15.0
SIM_LATENCY_S = 0.4
SIM_MAX_ROUNDS = 6
SIM_PANEL = 5
SEEDED_DIALOGUES = 4
SEEDED_ROUNDS = 3
#: Entity kinds of one seeded round (15 entities, 3 of each kind; small, so seeding DynamoDB Local stays quick).
ROUND_KINDS = ["perspective", "tension", "recommendation", "evidence", "claim"] * 3
PREFIX = {"perspective": "P", "tension": "T", "recommendation": "R", "evidence": "E", "claim": "C"}
POOL = ROOT / "orchestrator" / "demo-pool.json"
TRANSITIONS = {
    "open": ("addressed", "resolved"),
    "addressed": ("resolved", "open"),
    "resolved": ("reopened",),
    "reopened": ("addressed", "resolved"),
}
STOPPED = {"CONVERGED", "ABANDONED", "BUDGET_EXCEEDED", "FAILED"}
#: Share of each request kind a client sends (they sum to 1).
MIX = {
    "read_full": 0.25,
    "read_links": 0.20,
    "read_page": 0.10,
    "write_ref": 0.22,
    "write_status": 0.18,
    "provoked": 0.05,
}
#: Refusals that are legitimate outcomes of racing clients, per kind.
EXPECTED = {"write_status": {"VALIDATION:invalid_status_transition", "CONFLICT"}, "write_ref": {"CONFLICT"}}

FULL = """query Full($id: ID!) { dialogue(id: $id) { id status totalRounds
  perspectives { id refsOut { refType target { id label } } links(maxDepth: 3) { depth path } }
  tensions { id status refsIn { sourceId refType } links(direction: IN, maxDepth: 3) { depth path } }
  recommendations { id refsOut { refType targetId } } evidence { id } claims { id } } }"""
LINKS = """query Links($id: ID!, $e: ID!) { entity(dialogueId: $id, id: $e) { id kind
  links(direction: BOTH, maxDepth: 3) { depth path entity { id kind round } } } }"""
PAGE = """query Page($status: DialogueStatus!, $after: String) { dialogues(status: $status, first: 10, after: $after) {
  nodes { id title status totalRounds } pageInfo { hasNextPage endCursor } } }"""
REF = """mutation Ref($id: ID!, $s: ID!, $t: RefType!, $g: ID!) {
  registerRef(dialogueId: $id, source: $s, refType: $t, target: $g) { sourceId refType targetId } }"""
STATUS = """mutation Status($id: ID!, $t: ID!, $s: TensionStatus!, $r: String) {
  updateTensionStatus(dialogueId: $id, id: $t, status: $s, actors: ["loadbench"], reason: $r) { id status } }"""
START = """mutation Start($input: StartDialogueInput!) { startDialogue(input: $input) }"""
PROGRESS = """query Progress($id: ID!) { dialogue(id: $id) { status totalRounds } }"""
CHECK = """query Check($id: ID!) { dialogue(id: $id) {
  perspectives { id refsOut { refType targetId } } tensions { id status refsOut { refType targetId }
  history { eventType reason } } recommendations { id refsOut { refType targetId } }
  evidence { id refsOut { refType targetId } } claims { id refsOut { refType targetId } } } }"""
AUDIT = """query Audit($id: ID!) { auditReport(dialogueId: $id) { ok entries firstBroken problem } }"""


# --- the server: its own process ---------------------------------------------------------------------------
#
# The API runs in a child process (spawned, so it imports nothing of this process's state), not in a thread here:
# the 32 clients, their JSON decoding and the bookkeeping run in this interpreter, and in a thread they would
# share its GIL and event-loop time with the server, so the latencies would measure the load generator as much as
# Concord. In its own process the server is also what `concord serve` is (uvicorn, one worker, the stores opened
# from CONCORD_* settings), it is stopped by its PID, and the sim dialogues run where `startDialogue` runs them:
# as background tasks of the serving process, over the same backend the clients read and write.


def serve_api(environment: dict[str, str], sim_latency: float, gate: Connection, report: Connection) -> None:
    """Child process: imports, waits for the go on `gate` (the store is seeded by then), then serves uvicorn on
    127.0.0.1 (a free port, sent back on `report`) until SIGTERM."""
    os.environ.update(environment)
    import uvicorn

    from concord.orchestrator.engine.providers import SimProvider
    from concord.orchestrator.engine.run import Orchestrator, RunSettings
    from concord.orchestrator.progress.bus import ProgressBus
    from concord.orchestrator.serving.starter import BackgroundStarter
    from concord.resolvers.app import create_app
    from concord.store.config import Settings
    from concord.store.factory import open_stores

    if not gate.poll(GATE_TIMEOUT_S):
        return  # the bench never got this far
    gate.recv()

    class LoudStarter(BackgroundStarter):
        """BackgroundStarter that also prints a failed run's traceback, so the bench can name a root cause."""

        async def _run(self, orchestrator: Orchestrator, dialogue_id: str) -> None:
            try:
                await orchestrator.run(dialogue_id)
            except Exception:  # noqa: BLE001 - reported, and the bench sees the run stall
                print(
                    f"[server] sim dialogue {dialogue_id} failed:\n{traceback.format_exc()}",
                    file=sys.stderr,
                    flush=True,
                )

    async def main() -> None:
        settings = Settings.from_env()
        stores = await open_stores(settings, principal="bench-api")
        bus = ProgressBus()
        starter = LoudStarter(
            SimProvider(seed=7, latency=sim_latency),
            bus,
            settings.home / "dialogues",
            RunSettings(provider="sim", max_rounds=SIM_MAX_ROUNDS, panel_size=SIM_PANEL),
        )
        app = create_app(stores, bus=bus, starter=starter, dev=False, tokens_file=settings.tokens_file)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False)
        )
        server.capture_signals = nullcontext  # type: ignore[method-assign] - our own handler below
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(2000):
                if server.started or task.done():
                    break
                await asyncio.sleep(0.01)
            if task.done():
                task.result()
            report.send(server.servers[0].sockets[0].getsockname()[1])
            await task
        finally:
            for run in list(starter.tasks):
                run.cancel()
            await asyncio.gather(*starter.tasks, return_exceptions=True)
            await stores.close()

    asyncio.run(main())


class ApiProcess:
    """The API child process: started, addressed at 127.0.0.1, stopped by its PID."""

    def __init__(self, environment: dict[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        gate_out, gate_in = context.Pipe(duplex=False)
        receive, send = context.Pipe(duplex=False)
        self._gate = gate_in
        self._receive = receive
        self.process = context.Process(target=serve_api, args=(environment, SIM_LATENCY_S, gate_out, send), daemon=True)

    def launch(self) -> None:
        """Start the process: it imports (seconds, on a small machine) and waits for `serve()`."""
        self.process.start()

    def serve(self, timeout: float = 60) -> str:
        """Let it open the stores and serve; its base URL once it listens (RuntimeError, after stopping it, if it
        does not in time)."""
        waiting = time.monotonic()
        self._gate.send(True)
        if not self._receive.poll(timeout):
            self.stop()
            raise RuntimeError(f"the API process did not start within {timeout}s")
        port = self._receive.recv()
        print(f"API process serving {time.monotonic() - waiting:.1f}s after its go", flush=True)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        pid = self.process.pid
        if pid is None or not self.process.is_alive():
            return
        os.kill(pid, signal.SIGTERM)
        self.process.join(15)
        if self.process.is_alive():
            os.kill(pid, signal.SIGKILL)
            self.process.join(5)


# --- seeding: synthetic dialogues written with register_round ----------------------------------------------


async def seed(settings: Any) -> dict[str, dict[str, str]]:
    """SEEDED_DIALOGUES dialogues of SEEDED_ROUNDS rounds; returns dialogue id -> {entity id: kind}."""
    from concord.store.factory import open_stores
    from concord.store.model import (
        EntityDraft,
        Expert,
        PanelSeat,
        RefDraft,
        RoundBatch,
        Score,
        StatusChange,
    )

    panel = [
        ("Muffin", "Relational Database Architect"),
        ("Cupcake", "Key-Value Store Specialist"),
        ("Scone", "Site Reliability Engineer"),
    ]
    targets = {
        "tension": ("perspective", "question"),
        "recommendation": ("tension", "address"),
        "evidence": ("recommendation", "support"),
        "claim": ("evidence", "depend"),
    }
    seeded: dict[str, dict[str, str]] = {}
    async with await open_stores(settings, principal="bench-seed") as stores:
        store = stores.dialogues

        async def one(n: int) -> None:
            dialogue_id = await store.create_dialogue(f"Load dialogue {n}", "Does Concord hold up under load?")
            entities: dict[str, str] = {}
            previous: list[str] = []
            for round_ in range(SEEDED_ROUNDS):
                drafts, latest, seqs, perspectives = [], {}, Counter[str](), []
                for kind in ROUND_KINDS:
                    seqs[kind] += 1
                    local = f"MUFFIN-{PREFIX[kind]}{round_:02d}{seqs[kind]:02d}"
                    if kind == "perspective":
                        position = len(perspectives)
                        refs = [RefDraft("refine", previous[position])] if position < len(previous) else []
                        perspectives.append(f"P{round_:02d}{seqs[kind]:02d}")
                    else:
                        target_kind, ref_type = targets[kind]
                        refs = [RefDraft(ref_type, latest[target_kind])]
                    drafts.append(
                        EntityDraft(
                            kind,
                            local,
                            f"{kind} {round_}.{seqs[kind]}",
                            f"content of {kind} {round_}.{seqs[kind]}",
                            ["muffin"],
                            refs,
                        )
                    )
                    latest[kind] = local
                    entities[f"{PREFIX[kind]}{round_:02d}{seqs[kind]:02d}"] = kind
                changes = (
                    [StatusChange(f"T{round_ - 1:02d}01", "resolved", ["muffin"], reason="settled")] if round_ else []
                )
                await store.register_round(
                    dialogue_id,
                    RoundBatch(
                        round=round_,
                        entities=drafts,
                        status_changes=changes,
                        panel=[PanelSeat(name, role, "Core", "pool", 0.9) for name, role in panel],
                        experts=[Expert(name.lower(), role, "Core", "pool", 0.9) for name, role in panel]
                        if round_ == 0
                        else [],
                        answered=[name.lower() for name, _ in panel],
                        scores={name.lower(): Score(3, 2, 2, 1) for name, _ in panel},
                    ),
                )
                previous = perspectives
            seeded[dialogue_id] = entities

        await asyncio.gather(*(one(n) for n in range(SEEDED_DIALOGUES)))
    return dict(sorted(seeded.items()))


# --- the load --------------------------------------------------------------------------------------------------


@dataclass
class Record:
    kind: str
    ms: float
    outcome: str  # ok | expected | provoked | error
    code: str = ""
    at: float = field(default_factory=time.monotonic)  # when it ended


@dataclass
class Shared:
    """What the clients know and what they were told: dialogues, entities, cached statuses, acknowledged writes."""

    entities: dict[str, dict[str, str]]  # dialogue id -> entity id -> kind
    seeded: set[str]
    statuses: dict[tuple[str, str], str]  # (dialogue, tension) -> last status seen
    refs_acked: dict[str, set[tuple[str, str, str]]] = field(default_factory=lambda: defaultdict(set))
    status_acked: list[tuple[str, str, str, str]] = field(default_factory=list)  # dialogue, tension, status, reason
    records: list[Record] = field(default_factory=list)
    sims: dict[str, str] = field(default_factory=dict)  # sim dialogue id -> how it ended
    samples: dict[str, str] = field(default_factory=dict)  # one example answer per unexpected error code


class Client:
    """One GraphQL client with its own random stream."""

    def __init__(
        self, number: int, session: aiohttp.ClientSession, url: str, token: str, shared: Shared, tag: str
    ) -> None:
        self.random = random.Random(number * 7919 + 1)
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.shared = shared
        self.tag = f"{tag}-{number}"
        self.sent = 0
        self.cursor: dict[str, str | None] = {}

    async def post(self, query: str, variables: dict[str, Any]) -> tuple[float, dict[str, Any] | None, str]:
        """(latency ms, JSON body or None, unexpected-error code or "")."""
        started = time.perf_counter()
        try:
            async with self.session.post(
                self.url, json={"query": query, "variables": variables}, headers=self.headers
            ) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return (time.perf_counter() - started) * 1000, None, f"transport:{type(exc).__name__}"
        ms = (time.perf_counter() - started) * 1000
        if status != 200:
            return ms, None, f"http_{status}"
        try:
            body = json.loads(text)
        except ValueError:
            return ms, None, "bad_json"
        if "Traceback" in text or 'File "' in text:
            return ms, body, "stack_trace_leaked"
        return ms, body, ""

    def record(self, kind: str, ms: float, outcome: str, code: str = "", body: Any = None) -> None:
        self.shared.records.append(Record(kind, ms, outcome, code))
        if outcome == "error" and code not in self.shared.samples:
            self.shared.samples[code] = json.dumps(body)[:600] if body is not None else ""

    async def run(self, stop_at: float) -> None:
        kinds, weights = zip(*MIX.items(), strict=False)
        while time.monotonic() < stop_at and self.sent < MAX_REQUESTS_PER_CLIENT:
            self.sent += 1
            kind = self.random.choices(kinds, weights)[0]
            try:
                await getattr(self, kind)()
            except Exception as exc:  # noqa: BLE001 - an answer of an unexpected shape: an error, with its trace
                code = f"unreadable_answer:{type(exc).__name__}"
                self.shared.records.append(Record(kind, 0.0, "error", code))
                self.shared.samples.setdefault(code, traceback.format_exc(limit=3)[-600:])

    def dialogue(self, seeded_only: bool = False, known: int = 2) -> str:
        """A seeded dialogue, or any with `known` entities known (a sim dialogue's are learnt from its full reads)."""
        if seeded_only:
            return self.random.choice(sorted(self.shared.seeded))
        return self.random.choice(sorted(d for d, entities in self.shared.entities.items() if len(entities) >= known))

    # reads

    async def read_full(self) -> None:
        dialogue_id = self.dialogue(known=0)
        ms, body, error = await self.post(FULL, {"id": dialogue_id})
        if self.failed("read_full", ms, body, error):
            return
        dialogue = body["data"]["dialogue"]  # type: ignore[index]
        if dialogue is None:
            return self.record("read_full", ms, "error", "missing_dialogue", body)
        known = self.shared.entities[dialogue_id]
        for kind, name in (
            ("perspective", "perspectives"),
            ("tension", "tensions"),
            ("recommendation", "recommendations"),
            ("evidence", "evidence"),
            ("claim", "claims"),
        ):
            for entity in dialogue[name]:
                known.setdefault(entity["id"], kind)
                for link in entity.get("links", ()):
                    if link["depth"] != len(link["path"]) - 1 or link["path"][0] != entity["id"]:
                        return self.record("read_full", ms, "error", "inconsistent_link", body)
        self.record("read_full", ms, "ok")

    async def read_links(self) -> None:
        dialogue_id = self.dialogue()
        start = self.random.choice(sorted(self.shared.entities[dialogue_id]))
        ms, body, error = await self.post(LINKS, {"id": dialogue_id, "e": start})
        if self.failed("read_links", ms, body, error):
            return
        entity = body["data"]["entity"]  # type: ignore[index]
        if entity is None or entity["id"] != start:
            return self.record("read_links", ms, "error", "wrong_entity", body)
        for link in entity["links"]:
            if (
                link["depth"] != len(link["path"]) - 1
                or link["path"][0] != start
                or link["path"][-1] != link["entity"]["id"]
            ):
                return self.record("read_links", ms, "error", "inconsistent_link", body)
        self.record("read_links", ms, "ok")

    async def read_page(self) -> None:
        status = self.random.choice(["OPEN", "CONVERGED"])
        ms, body, error = await self.post(PAGE, {"status": status, "after": self.cursor.get(status)})
        if self.failed("read_page", ms, body, error):
            return
        page = body["data"]["dialogues"]  # type: ignore[index]
        if any(node["status"] != status for node in page["nodes"]):
            return self.record("read_page", ms, "error", "wrong_status_in_page", body)
        self.cursor[status] = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
        self.record("read_page", ms, "ok")

    # writes

    async def write_ref(self) -> None:
        dialogue_id = self.dialogue()
        known = self.shared.entities[dialogue_id]
        source, target = self.random.sample(sorted(known), 2)
        if known[source] == known[target]:
            choices = ["support", "oppose", "refine", "depend"]
        elif known[target] == "tension":
            choices = ["address", "resolve", "question", "oppose"]
        else:
            choices = ["support", "oppose", "question", "depend"]
        ref_type = self.random.choice(choices)
        ms, body, error = await self.post(REF, {"id": dialogue_id, "s": source, "t": ref_type.upper(), "g": target})
        if self.failed("write_ref", ms, body, error):
            return
        got = body["data"]["registerRef"]  # type: ignore[index]
        if got != {"sourceId": source, "refType": ref_type.upper(), "targetId": target}:
            return self.record("write_ref", ms, "error", "wrong_ref_returned", body)
        self.shared.refs_acked[dialogue_id].add((source, ref_type, target))
        self.record("write_ref", ms, "ok")

    async def write_status(self) -> None:
        # Seeded dialogues only. On a running dialogue, a status change made while a round is being collected makes
        # that round's registration fail (the judge's planned transitions no longer apply) and the run stops.
        dialogue_id = self.dialogue(seeded_only=True)
        tension = self.random.choice(sorted(t for t, k in self.shared.entities[dialogue_id].items() if k == "tension"))
        current = self.shared.statuses.get((dialogue_id, tension), "open")
        status = self.random.choice(TRANSITIONS[current])
        reason = f"{self.tag}-{self.sent}"
        ms, body, error = await self.post(STATUS, {"id": dialogue_id, "t": tension, "s": status.upper(), "r": reason})
        if self.failed("write_status", ms, body, error, (dialogue_id, tension)):
            return
        got = body["data"]["updateTensionStatus"]  # type: ignore[index]
        if got != {"id": tension, "status": status}:
            return self.record("write_status", ms, "error", "wrong_status_returned", body)
        self.shared.statuses[(dialogue_id, tension)] = status
        self.shared.status_acked.append((dialogue_id, tension, status, reason))
        self.record("write_status", ms, "ok")

    async def provoked(self) -> None:
        """A write that must be refused whatever the others did; its refusal is counted apart."""
        dialogue_id = self.dialogue(seeded_only=True)
        known = self.shared.entities[dialogue_id]
        case = self.random.randrange(4)
        if case == 0:  # a ref from an entity to itself
            entity = self.random.choice(sorted(known))
            query, variables, want = (
                REF,
                {"id": dialogue_id, "s": entity, "t": "SUPPORT", "g": entity},
                "VALIDATION:invalid_ref_target",
            )
        elif case == 1:  # refine across kinds
            source = self.random.choice(sorted(e for e, k in known.items() if k == "perspective"))
            target = self.random.choice(sorted(e for e, k in known.items() if k == "claim"))
            query, variables, want = (
                REF,
                {"id": dialogue_id, "s": source, "t": "REFINE", "g": target},
                "VALIDATION:invalid_ref_target",
            )
        elif case == 2:  # a ref to an entity that does not exist
            source = self.random.choice(sorted(known))
            query, variables, want = (
                REF,
                {"id": dialogue_id, "s": source, "t": "SUPPORT", "g": "E9999"},
                "VALIDATION:target_not_found",
            )
        else:  # a status change of a tension that does not exist
            query, variables, want = (
                STATUS,
                {"id": dialogue_id, "t": "T9999", "s": "RESOLVED", "r": "provoked"},
                "NOT_FOUND",
            )
        ms, body, error = await self.post(query, variables)
        if error:
            return self.record("provoked", ms, "error", error, body)
        code = error_code(body)
        if code == want:
            return self.record("provoked", ms, "provoked", code)
        self.record("provoked", ms, "error", f"provoked_answered:{code or 'ok'}", body)

    def failed(
        self, kind: str, ms: float, body: dict[str, Any] | None, error: str, tension: tuple[str, str] | None = None
    ) -> bool:
        """Record a failed request (True) or let the caller check the data (False)."""
        if error:
            self.record(kind, ms, "error", error, body)
            return True
        code = error_code(body)
        if not code:
            return False
        if code in EXPECTED.get(kind, ()):
            if code == "VALIDATION:invalid_status_transition" and tension is not None:
                context = body["errors"][0]["extensions"]["problems"][0].get("context") or {}  # type: ignore[index]
                self.shared.statuses[tension] = context.get("from", self.shared.statuses.get(tension, "open"))
            self.record(kind, ms, "expected", code)
        else:
            self.record(kind, ms, "error", code, body)
        return True


def error_code(body: dict[str, Any] | None) -> str:
    """ "" for an answer without errors, else CODE or CODE:problem of its first error ("INTERNAL" when masked)."""
    errors = (body or {}).get("errors")
    if not errors:
        return ""
    extensions = errors[0].get("extensions") or {}
    code = extensions.get("code") or ("INTERNAL" if errors[0].get("message") == "internal error" else "UNCODED")
    problems = extensions.get("problems") or []
    return f"{code}:{problems[0]['code']}" if problems else str(code)


async def run_sims(session: aiohttp.ClientSession, url: str, token: str, shared: Shared, stop_at: float) -> None:
    """One `sim` dialogue after another, started through startDialogue, while the load lasts; the last one is given
    SIM_FINISH_S more to reach its end once the clients stop. Each becomes a target of the clients' reads and refs."""
    headers = {"Authorization": f"Bearer {token}"}
    pool = json.loads(POOL.read_text())

    async def ask(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with session.post(url, json={"query": query, "variables": variables}, headers=headers) as response:
            return await response.json(content_type=None)  # type: ignore[no-any-return]

    give_up = stop_at + SIM_FINISH_S
    for number in range(MAX_SIMS):
        if time.monotonic() >= stop_at:
            return
        try:
            body = await ask(
                START,
                {
                    "input": {
                        "title": f"Load sim {number}",
                        "question": pool["question"],
                        "pool": pool,
                        "maxRounds": SIM_MAX_ROUNDS,
                        "seed": number,
                    }
                },
            )
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            shared.sims[f"start-{number}"] = f"not started: {type(exc).__name__}"
            return
        if body.get("errors"):
            shared.sims[f"start-{number}"] = f"not started: {error_code(body)}"
            return
        dialogue_id = body["data"]["startDialogue"]
        shared.entities.setdefault(dialogue_id, {})
        rounds_under_load = 0
        while True:
            shared.sims[dialogue_id] = f"running, {rounds_under_load} rounds under load"
            await asyncio.sleep(0.5)
            try:
                dialogue = (await ask(PROGRESS, {"id": dialogue_id}))["data"]["dialogue"]
            except (TimeoutError, aiohttp.ClientError, KeyError, TypeError, ValueError) as exc:
                shared.sims[dialogue_id] = f"progress unreadable: {type(exc).__name__}"
                return
            if time.monotonic() < stop_at:
                rounds_under_load = dialogue["totalRounds"]
            if dialogue["status"] in STOPPED:
                shared.sims[dialogue_id] = (
                    f"{dialogue['status'].lower()} after {dialogue['totalRounds']} rounds "
                    f"({rounds_under_load} under load)"
                )
                break
            if time.monotonic() > give_up:
                shared.sims[dialogue_id] = (
                    f"unfinished: {dialogue['status'].lower()} at {dialogue['totalRounds']} rounds "
                    f"{SIM_FINISH_S:.0f}s after the load ({rounds_under_load} under load)"
                )
                return


# --- after the load: every acknowledged write must be readable ------------------------------------------------


@dataclass
class Verification:
    refs: int = 0
    statuses: int = 0
    lost_refs: list[str] = field(default_factory=list)
    lost_statuses: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unexpected: broken history or audit chain, failed reads
    audits: int = 0
    sim_refs: int = 0  # of `refs`, those on sim dialogues (written while their rounds were being registered)

    @property
    def lost(self) -> int:
        return len(self.lost_refs) + len(self.lost_statuses)


async def verify(session: aiohttp.ClientSession, url: str, token: str, shared: Shared) -> Verification:
    headers = {"Authorization": f"Bearer {token}"}
    result = Verification()
    statuses_by_dialogue: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for dialogue_id, tension, status, reason in shared.status_acked:
        statuses_by_dialogue[dialogue_id].append((tension, status, reason))

    async def ask(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with session.post(url, json={"query": query, "variables": variables}, headers=headers) as response:
            body: dict[str, Any] = await response.json(content_type=None)
        if response.status != 200 or body.get("errors"):
            raise RuntimeError(f"verification read failed: {response.status} {json.dumps(body)[:400]}")
        return body["data"]  # type: ignore[no-any-return]

    for dialogue_id in sorted(shared.entities):
        try:
            dialogue = (await ask(CHECK, {"id": dialogue_id}))["dialogue"]
            audit = (await ask(AUDIT, {"id": dialogue_id}))["auditReport"]
        except (RuntimeError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            result.problems.append(f"{dialogue_id}: cannot be verified: {exc}")
            continue
        refs = {
            (e["id"], r["refType"].lower(), r["targetId"])
            for name in ("perspectives", "tensions", "recommendations", "evidence", "claims")
            for e in dialogue[name]
            for r in e["refsOut"]
        }
        for ref in sorted(shared.refs_acked.get(dialogue_id, ())):
            result.refs += 1
            result.sim_refs += dialogue_id not in shared.seeded
            if ref not in refs:
                result.lost_refs.append(f"{dialogue_id} {ref[0]} -{ref[1]}-> {ref[2]}")
        tensions = {t["id"]: t for t in dialogue["tensions"]}
        for tension, status, reason in statuses_by_dialogue.get(dialogue_id, ()):
            result.statuses += 1
            history = tensions[tension]["history"] if tension in tensions else []
            if not any(e["eventType"] == status and e["reason"] == reason for e in history):
                result.lost_statuses.append(f"{dialogue_id} {tension} -> {status} ({reason})")
        for tension in tensions.values():
            state, events = None, [e["eventType"] for e in tension["history"]]
            for event in events:
                if state is None and event == "created":
                    state = "open"
                elif state is not None and event in TRANSITIONS.get(state, ()):
                    state = event
                else:
                    result.problems.append(f"{dialogue_id} {tension['id']}: history {events} breaks at {event!r}")
                    break
            else:
                if state != tension["status"]:
                    result.problems.append(
                        f"{dialogue_id} {tension['id']}: history ends {state}, status is {tension['status']}"
                    )
        result.audits += 1
        if not audit["ok"]:
            result.problems.append(f"{dialogue_id}: audit chain broken at {audit['firstBroken']}: {audit['problem']}")
    return result


# --- one backend -------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    backend: str
    seconds: float
    records: list[Record]
    verification: Verification
    sims: dict[str, str]
    samples: dict[str, str]
    dialogues: int

    @property
    def failed_sims(self) -> list[str]:
        """Sim dialogues that did not reach their end: the run died, was starved, or could not be started or read."""
        return [f"{d}: {how}" for d, how in self.sims.items() if not how.startswith("converged")]

    @property
    def errors(self) -> int:
        return (
            sum(1 for r in self.records if r.outcome == "error")
            + len(self.verification.problems)
            + len(self.failed_sims)
        )


async def load(url: str, token: str, seeded: dict[str, dict[str, str]], seconds: float, backend: str) -> Outcome:
    # Round r of a seeded dialogue resolved the first tension of round r - 1.
    resolved = {(d, f"T{r:02d}01"): "resolved" for d in seeded for r in range(SEEDED_ROUNDS - 1)}
    shared = Shared({d: dict(e) for d, e in seeded.items()}, set(seeded), resolved)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=CLIENTS + 4)
    graphql = f"{url}/graphql"
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        stop_at = started + seconds
        clients = [
            Client(n, session, graphql, token, shared, f"{backend}-{uuid.uuid4().hex[:6]}") for n in range(CLIENTS)
        ]
        sims = asyncio.create_task(run_sims(session, graphql, token, shared, stop_at))
        await asyncio.gather(*(client.run(stop_at) for client in clients))
        elapsed = time.monotonic() - started
        await sims  # bounded: it gives up SIM_FINISH_S after the load
        print(
            f"[{backend}] load over; the last sim dialogue ended {time.monotonic() - started - elapsed:.1f}s later",
            flush=True,
        )
        verifying = time.monotonic()
        verification = await verify(session, graphql, token, shared)
        print(f"[{backend}] verified in {time.monotonic() - verifying:.1f}s", flush=True)
    return Outcome(backend, elapsed, shared.records, verification, shared.sims, shared.samples, len(shared.entities))


@dataclass
class Plan:
    """One backend's store settings, token and API process, prepared (and the process launched) before its turn."""

    kind: str
    settings: Any
    token: str
    aws: dict[str, str]
    api: ApiProcess


def plan(kind: str, home: Path, service: Any) -> Plan:
    """Settings under `home`, a key file, a read+write token, and the API process, launched (it imports and waits)."""
    from concord.resolvers.tokens import add_token
    from concord.store.config import Settings
    from concord.store.crypto.keys import LocalKeyProvider
    from tests.services import AWS_TEST_ENV

    if kind == "dynamodb":
        settings = Settings(home=home, store="dynamodb", table=f"concord_load_{uuid.uuid4().hex[:8]}")
        aws = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL_DYNAMODB": service.endpoint}
    else:
        settings, aws = Settings(home=home), {}
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    LocalKeyProvider.create_key_file(settings.key_file)
    token = add_token(settings.tokens_file, "local", ["read", "write"], "bench-load")
    api = ApiProcess({**settings.environment(), **aws})
    api.launch()
    return Plan(kind, settings, token, aws, api)


def run_backend(plan: Plan, seconds: float, service: Any = None) -> Outcome:
    """Seed the store, let the API process serve it, load it, verify; the API process is stopped by its PID."""
    kind = plan.kind
    saved = dict(os.environ)
    os.environ.update(plan.aws)
    try:
        if kind == "dynamodb":
            asyncio.run(create_table(plan.settings.table, service.endpoint))
        seeding = time.monotonic()
        seeded = asyncio.run(seed(plan.settings))
        print(
            f"[{kind}] seeded {len(seeded)} dialogues of {SEEDED_ROUNDS * len(ROUND_KINDS)} entities "
            f"in {time.monotonic() - seeding:.1f}s",
            flush=True,
        )
        url = plan.api.serve()
        print(f"[{kind}] API pid {plan.api.process.pid} at {url}; {CLIENTS} clients for {seconds:.0f}s", flush=True)
        return asyncio.run(load(url, plan.token, seeded, seconds, kind))
    finally:
        stopping = time.monotonic()
        plan.api.stop()
        print(f"[{kind}] API process stopped in {time.monotonic() - stopping:.1f}s", flush=True)
        os.environ.clear()
        os.environ.update(saved)


def start_dynamodb_local(service: Any) -> None:
    """Start DynamoDB Local (in memory, on the free port of 127.0.0.1 chosen when it was made) and wait until it answers."""
    starting = time.monotonic()
    service.start()
    print(
        f"[dynamodb] DynamoDB Local pid {service.pid} at {service.endpoint} (up in {time.monotonic() - starting:.1f}s)",
        flush=True,
    )


async def create_table(table: str, endpoint: str) -> None:
    from concord.store.backends.dynamodb import DynamoDBBackend

    backend = DynamoDBBackend(table, endpoint_url=endpoint)
    await backend.open()
    try:
        await backend.create_table()
    finally:
        await backend.close()


# --- report --------------------------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(outcome: Outcome) -> None:
    records = outcome.records
    v = outcome.verification
    latencies = [r.ms for r in records]
    print(
        f"\n== {outcome.backend}: {len(records)} requests in {outcome.seconds:.1f}s "
        f"({len(records) / outcome.seconds:.0f}/s), {CLIENTS} clients, {outcome.dialogues} dialogues"
    )
    print(
        f"   {'kind':<13}{'requests':>9}{'ok':>8}{'expected':>9}{'provoked':>9}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for kind in MIX:
        mine = [r for r in records if r.kind == kind]
        count = Counter(r.outcome for r in mine)
        ms = [r.ms for r in mine]
        print(
            f"   {kind:<13}{len(mine):>9}{count['ok']:>8}{count['expected']:>9}{count['provoked']:>9}{count['error']:>7}"
            f"{percentile(ms, 0.5):>9.1f}{percentile(ms, 0.99):>9.1f}"
        )
    print(
        f"   all          {len(records):>9}{'':>42}{percentile(latencies, 0.5):>9.1f}{percentile(latencies, 0.99):>9.1f}"
    )
    full = sorted((r for r in records if r.kind == "read_full" and r.outcome == "ok"), key=lambda r: r.at)
    if len(full) >= 8:
        quarter = len(full) // 4
        print(
            f"   read_full p50 in the first quarter of the run {percentile([r.ms for r in full[:quarter]], 0.5):.0f} ms, "
            f"in the last {percentile([r.ms for r in full[-quarter:]], 0.5):.0f} ms"
        )
    errors = Counter(f"{r.kind} {r.code}" for r in records if r.outcome == "error")
    print(f"   unexpected errors by kind: {dict(errors) if errors else 'none'}")
    for code, sample in outcome.samples.items():
        print(f"     e.g. {code}: {sample}")
    expected = Counter(f"{r.kind} {r.code}" for r in records if r.outcome == "expected")
    print(f"   expected refusals by code: {dict(expected) if expected else 'none'}")
    provoked = Counter(r.code for r in records if r.outcome == "provoked")
    print(f"   provoked and refused as they must be: {dict(provoked) if provoked else 'none'}")
    print(f"   sim dialogues: {outcome.sims or 'none'}")
    for failed in outcome.failed_sims:
        print(f"     sim did not finish (an error): {failed}")
    print(
        f"   acknowledged writes checked: {v.refs} refs (via refsOut; {v.sim_refs} on sim dialogues), "
        f"{v.statuses} status changes (via history); "
        f"lost {v.lost}; audit chains verified {v.audits}"
    )
    for lost in (v.lost_refs + v.lost_statuses)[:10]:
        print(f"     lost: {lost}")
    for problem in v.problems[:10]:
        print(f"     integrity: {problem}")


def main(argv: list[str] | None = None) -> int:
    from tests.services import DynamoDBLocal, dynamodb_local_missing

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"load duration per backend (default {SECONDS:.0f})"
    )
    parser.add_argument("--backend", choices=["sqlite", "dynamodb", "both"], default="both")
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, 600.0))
    kinds = ["sqlite", "dynamodb"] if args.backend == "both" else [args.backend]
    started = time.monotonic()
    outcomes: list[Outcome] = []
    skipped = ""
    service: Any = None
    if "dynamodb" in kinds and (missing := dynamodb_local_missing()):
        kinds.remove("dynamodb")
        skipped = "dynamodb-local-missing"
        print(f"[dynamodb] not run: {missing}", file=sys.stderr)
    # Everything slow to start starts at once, before any load: DynamoDB Local (a JVM) and both API processes (their
    # imports); each API process then waits for its go, idle, until its store is seeded.
    starter = ThreadPoolExecutor(1, thread_name_prefix="dynamodb-local")
    plans: list[Plan] = []
    with tempfile.TemporaryDirectory(prefix="concord-load-") as directory:
        try:
            if "dynamodb" in kinds:
                service = DynamoDBLocal()  # its port is chosen now, so the API process knows its endpoint
                booting = starter.submit(start_dynamodb_local, service)
            plans = [plan(kind, Path(directory) / kind, service) for kind in kinds]
            if "dynamodb" in kinds:
                booting.result()
            for each in plans:
                outcome = run_backend(each, seconds, service)
                report(outcome)
                outcomes.append(outcome)
        finally:
            for each in plans:
                each.api.stop()  # by PID; a no-op for those already stopped
            if service is not None:
                stopping = time.monotonic()
                starter.shutdown(wait=True)  # a start still in progress ends (bounded by DynamoDBLocal.start)
                service.stop()  # by PID: SIGTERM, SIGKILL after a grace period
                print(f"[dynamodb] DynamoDB Local stopped in {time.monotonic() - stopping:.1f}s", flush=True)
            starter.shutdown()
    requests = sum(len(o.records) for o in outcomes)
    errors = sum(o.errors for o in outcomes)
    lost = sum(o.verification.lost for o in outcomes)
    p99 = percentile([r.ms for o in outcomes for r in o.records], 0.99)
    conflicts = sum(1 for o in outcomes for r in o.records if r.code == "CONFLICT")
    refused = sum(1 for o in outcomes for r in o.records if r.outcome == "expected")
    provoked = sum(1 for o in outcomes for r in o.records if r.outcome == "provoked")
    print(f"\ntotal {time.monotonic() - started:.0f}s")
    print(
        f"BENCH load requests={requests} errors={errors} lost={lost} p99_ms={p99:.1f} "
        f"ratio={(errors + lost) / max(requests, 1):.4f} target=<=0 refused={refused} conflicts={conflicts} "
        f"provoked={provoked}" + (f" skipped={skipped}" if skipped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
