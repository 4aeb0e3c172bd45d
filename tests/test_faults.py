"""Faults: a store, key service, disk, model server or API server fails mid-run; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from concord.orchestrator.engine.providers import Answer, AnthropicProvider, Call, SimProvider
from concord.orchestrator.engine.run import Orchestrator, RunResult, RunSettings
from concord.orchestrator.panel.panels import sample_panel
from concord.orchestrator.panel.pools import load_pool
from concord.store.backends.dynamodb import DynamoDBBackend
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.config import Settings
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.crypto.kms import KmsKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import BackendUnavailable
from concord.store.factory import open_stores
from concord.store.model import TextRecord
from tests.fake_anthropic import FakeAnthropic, fake_server_process
from tests.graphql_helpers import build_dialogue
from tests.services import (
    AWS_TEST_ENV,
    HOST,
    DynamoDBLocal,
    MotoServer,
    concord,
    dynamodb_local_missing,
    environment,
    free_port,
    served,
)
from tests.test_crash_resume import answers_on_disk

ROOT = Path(__file__).resolve().parents[1]
POOL = load_pool(ROOT / "orchestrator" / "demo-pool.json")
QUESTION = "How should a small team keep deliberation records safe?"
SEED = 5
SETTINGS = RunSettings(panel_size=3, max_rounds=3, seed=SEED, concurrency=3)
#: Seconds any single wait in these tests may take before the test fails instead of hanging.
WAIT = 60.0


def assert_clean(message: str) -> None:
    """A message meant for people: no botocore names, no traceback."""
    for noise in ("botocore", "Traceback", "ClientError", 'File "'):
        assert noise not in message, message


async def wait_until(check: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll an async predicate until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out slow for {what}")


async def stored_texts(store: DialogueStore, dialogue_id: str, kind: str, round: int = 0) -> dict[str, str]:
    """Expert slug -> text of the stored (non-repair) prompts or answers of one round."""
    texts = (await store.load_partition(dialogue_id)).texts
    return {t.expert: t.text for t in texts if (t.kind, t.round, t.repair) == (kind, round, False)}


async def finished_cleanly(store: DialogueStore, result: RunResult) -> None:
    """The run reached a final verdict and the audit chain and the files on disk verify."""
    assert result.verdict is not None and result.status == "converged", result.to_json()
    report = await store.verify_audit(result.dialogue_id, files_root=result.directory)
    assert report.ok, report


class CountingSim(SimProvider):
    """The sim panel, remembering every (expert, round, repair) it was asked for."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.calls: list[tuple[str, int, bool]] = []

    async def complete(self, call: Call) -> Answer:
        """Record the call, then answer like the sim."""
        self.calls.append((call.expert, call.round, call.repair))
        return await super().complete(call)


class HeldSim(CountingSim):
    """The sim panel, except that `held` experts answer round 0 only once `release` is set."""

    def __init__(self, seed: int, held: set[str]) -> None:
        super().__init__(seed)
        self.held = held
        self.release = asyncio.Event()

    async def complete(self, call: Call) -> Answer:
        """Wait for the release first when the call is one of the held ones."""
        if call.round == 0 and call.expert in self.held:
            await self.release.wait()
        return await super().complete(call)


# --- 1. DynamoDB Local killed in the middle of a round --------------------------------------------


@pytest.mark.dynamodb
async def test_dynamodb_killed_mid_round_then_resume(
    tmp_path: Path, key_file: Path, aws_test_env: dict[str, str]
) -> None:
    missing = dynamodb_local_missing()
    if missing is not None:
        pytest.skip(missing)
    database = DynamoDBLocal(db_path=tmp_path / "dynamodb")
    backend = DynamoDBBackend("concord_faults", endpoint_url=database.endpoint)
    run: asyncio.Task[RunResult] | None = None
    try:
        await asyncio.to_thread(database.start)
        await backend.open()
        await backend.create_table()
        store = DialogueStore(backend, LocalKeyProvider(key_file), principal="fault-test")
        panel = [m.slug for m in sample_panel(POOL, SETTINGS.panel_size, seed=SEED).members]
        provider = HeldSim(SEED, {panel[-1]})
        orchestrator = Orchestrator(store, provider)
        dialogue_id = await orchestrator.create(QUESTION, POOL, SETTINGS, tmp_path / "out")
        run = asyncio.create_task(orchestrator.run(dialogue_id))

        async def others_stored() -> dict[str, str] | None:
            answers = await stored_texts(store, dialogue_id, "answer")
            prompts = await stored_texts(store, dialogue_id, "prompt")
            return answers if len(answers) == len(panel) - 1 and len(prompts) == len(panel) else None

        before = await wait_until(others_stored, "every round-0 answer but the held one in DynamoDB")
        await asyncio.to_thread(database.kill)
        provider.release.set()
        with pytest.raises(BackendUnavailable) as failed:
            await asyncio.wait_for(run, WAIT)
        message = str(failed.value)
        assert f"cannot reach DynamoDB at {database.endpoint}" in message
        assert_clean(message)
        held_files = list((tmp_path / "out").glob(f"*/round-0/{panel[-1]}.md"))
        assert len(held_files) == 1, "the answer that arrived while the store was down is kept on disk"

        await asyncio.to_thread(database.start)  # same port, same -dbPath
        resumed = CountingSim(SEED)
        result = await Orchestrator(store, resumed).run(dialogue_id)
        assert not [c for c in resumed.calls if c[1] == 0], f"round-0 answers bought again: {resumed.calls}"
        after = await stored_texts(store, dialogue_id, "answer")
        assert {k: after[k] for k in before} == before, "every answer stored before the kill is unchanged"
        assert set(after) == set(panel)
        assert after[panel[-1]] == held_files[0].read_text(encoding="utf-8")
        await finished_cleanly(store, result)
    finally:
        if run is not None and not run.done():
            run.cancel()
        await backend.close()
        await asyncio.to_thread(database.stop)


# --- 2. The prompt directory becoming read-only ----------------------------------------------------


# The tests run as root, which ignores file modes (CAP_DAC_OVERRIDE). Dropping every capability from the
# bounding and inheritable sets before exec leaves uid 0 without it, so a 0555 directory refuses writes as it
# would for any user, while the process still owns and reads the test's root-owned temporary files (which
# `nobody` could not even reach: pytest's base temporary directory is 0700).
def unprivileged(command: list[str]) -> list[str]:
    """`command` run with no capabilities at all, so that file modes apply to it."""
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", *command]


def dialogue_id_in(home: Path) -> str:
    """The id of the one dialogue stored under `home`."""

    async def find() -> str:
        stores = await open_stores(Settings(home=home))
        try:
            page = await stores.analytics.list_dialogues("open")
            assert len(page.dialogues) == 1
            return page.dialogues[0].id
        finally:
            await stores.close()

    return asyncio.run(find())


def stored_answers(home: Path, dialogue_id: str) -> dict[tuple[str, int], str]:
    """(expert, round) -> text of every non-repair answer stored under `home`."""

    async def read() -> dict[tuple[str, int], str]:
        stores = await open_stores(Settings(home=home))
        try:
            texts = (await stores.dialogues.load_partition(dialogue_id)).texts
            return {(t.expert, t.round): t.text for t in texts if t.kind == "answer" and not t.repair}
        finally:
            await stores.close()

    return asyncio.run(read())


def test_prompt_directory_read_only_mid_run(tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop root's capabilities")
    home, out = tmp_path / "home", tmp_path / "out"
    first, slow = (m.slug for m in sample_panel(POOL, 3, seed=SEED).members[:2])
    run = [
        "run",
        "--question",
        QUESTION,
        "--pool",
        str(ROOT / "orchestrator" / "demo-pool.json"),
        "--provider",
        "anthropic",
        "--panel-size",
        "3",
        "--seed",
        str(SEED),
        "--concurrency",
        "1",
        "--max-rounds",
        "3",
        "--out",
        str(out),
        "--quiet",  # without --json: the error is one line on stderr
    ]
    with fake_server_process(log=tmp_path / "requests.jsonl", seed=SEED, script=[f"{slow}@0=slow:1"]) as fake:
        env = environment(home, fake.base_url)
        process = subprocess.Popen(
            unprivileged(concord(*run)), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + WAIT
            while not list(out.glob(f"*/round-0/{slow}.prompt.md")):  # `slow` is being asked (for a second)
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, f"the run never asked {slow}"
                time.sleep(0.02)
            assert (first, 0, False) in answers_on_disk(out), "concurrency 1: the panel answers in order"
            (directory,) = out.glob("*/")
            for path in (directory, directory / "round-0"):
                path.chmod(0o555)
            _, stderr = process.communicate(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        failed_at = time.time()
        for path in (directory, directory / "round-0"):
            path.chmod(0o755)
        assert process.returncode == 1, stderr
        assert stderr.strip() == f"concord: Permission denied: {directory / 'round-0' / slow}.md", stderr
        dialogue_id = dialogue_id_in(home)
        on_disk = {(expert, number) for expert, number, repair in answers_on_disk(out) if not repair}
        kept = stored_answers(home, dialogue_id)
        assert (slow, 0) not in on_disk and (slow, 0) in kept, "the answer that could not be written is stored"
        assert on_disk | {(slow, 0)} == set(kept), "every answer received before the failure is stored"

        resumed = subprocess.run(
            concord("resume", dialogue_id, "--quiet", "--json"),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["status"] == "converged"
        again = {(r["expert"], r["round"]) for r in fake.requests() if r["time"] > failed_at}
        assert not again & set(kept), f"stored answers were requested again: {sorted(again & set(kept))}"
    assert {k: v for k, v in stored_answers(home, dialogue_id).items() if k in kept} == kept
    verified = subprocess.run(
        concord("audit", "verify", dialogue_id, "--json"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout + verified.stderr


# --- 3. The KMS endpoint down ----------------------------------------------------------------------


# The KMS endpoint is a relay in front of moto: moto keeps its keys in memory, so stopping moto itself would
# lose them, whereas a real KMS outage loses nothing. Taking the endpoint down models the outage.
class TcpRelay:
    """A TCP relay on 127.0.0.1 to another local port that can go down and come back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        """The relay's URL."""
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        """Listen (again) on the relay's port, or on a free one the first time."""
        self._server = await asyncio.start_server(self._relay, HOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(HOST, self.target_port)
        self._writers |= {writer, upstream_writer}
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until either side closes."""
    with suppress(ConnectionError, OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.close()


def kms_keys(endpoint: str) -> tuple[str, str]:
    """A fresh symmetric CMK and HMAC key in moto."""
    client = boto3.client("kms", endpoint_url=endpoint, region_name=AWS_TEST_ENV["AWS_REGION"])
    try:
        cmk = client.create_key(Description="concord fault test")["KeyMetadata"]["KeyId"]
        mac = client.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    finally:
        client.close()
    return cmk, mac


def item_count(database: Path) -> int:
    """Rows in the SQLite items table, read directly."""
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM items").fetchone()[0])


async def test_kms_down_with_cold_key_cache_then_back(moto_server: MotoServer, tmp_path: Path) -> None:
    cmk, mac = kms_keys(moto_server.endpoint)
    relay = TcpRelay(moto_server.port)
    await relay.start()
    database = tmp_path / "concord.db"
    backend = await SQLiteBackend(database).open()
    providers: list[KmsKeyProvider] = []

    def kms_store() -> DialogueStore:
        providers.append(KmsKeyProvider(cmk, endpoint_url=relay.endpoint, mac_key_id=mac, max_attempts=2))
        return DialogueStore(backend, providers[-1], principal="fault-test")

    try:
        first = Orchestrator(kms_store(), SimProvider(SEED))
        dialogue_id = await first.create(QUESTION, POOL, SETTINGS, tmp_path / "out")
        await relay.stop()
        cold = kms_store()  # a new process: no data key, no tenant secret in memory
        rows = item_count(database)
        with pytest.raises(BackendUnavailable) as failed:
            await Orchestrator(cold, SimProvider(SEED)).run(dialogue_id)
        message = str(failed.value)
        assert f"cannot reach KMS at {relay.endpoint} while unwrapping data key v1 of dialogue {dialogue_id}" in message
        assert_clean(message)
        prompt = TextRecord(
            "prompt", 0, "muffin", "a prompt written while KMS is down", path="round-0/muffin.prompt.md"
        )
        with pytest.raises(BackendUnavailable, match="KMS"):
            await cold.record_text(dialogue_id, prompt)
        with pytest.raises(BackendUnavailable, match="KMS .* while creating data key v1"):
            await cold.create_dialogue("Another dialogue", QUESTION)
        assert item_count(database) == rows, "nothing was written, not even half of a dialogue"

        await relay.start()  # the same port again
        result = await Orchestrator(cold, SimProvider(SEED)).run(dialogue_id)
        await finished_cleanly(cold, result)
    finally:
        for provider in providers:
            await provider.close()
        await backend.close()
        await relay.stop()


# --- 4. The model server dropping connections mid-answer ------------------------------------------


async def test_dropped_connections_are_retried_then_the_expert_is_absent(
    sqlite_backend: SQLiteBackend, key_file: Path, tmp_path: Path
) -> None:
    panel = [m.slug for m in sample_panel(POOL, 3, seed=SEED).members]
    flaky, gone = panel[0], panel[1]
    store = DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="fault-test")
    with FakeAnthropic(seed=SEED) as fake:
        fake.script_expert(flaky, "drop", round=0)
        fake.script_expert(gone, "drop", "drop", "drop", round=0)
        provider = AnthropicProvider(api_key="sk-fake-key-for-tests", base_url=fake.base_url, timeout=10)
        try:
            orchestrator = Orchestrator(store, provider)
            settings = RunSettings(provider="anthropic", panel_size=3, max_rounds=3, seed=SEED, concurrency=3)
            dialogue_id = await orchestrator.create(QUESTION, POOL, settings, tmp_path / "out")
            result = await orchestrator.run(dialogue_id)
        finally:
            await provider.aclose()
        round0 = [(r["expert"], r["reply"]) for r in fake.requests if r["round"] == 0]
    assert round0.count((flaky, "drop")) == 1 and round0.count((flaky, "normal")) == 1, "one transparent retry"
    assert round0.count((gone, "drop")) == 3 and (gone, "normal") not in round0, "the SDK gave up after its retries"
    snap = await store.load_partition(dialogue_id)
    first = snap.rounds[0]
    assert first.absent == [gone] and first.answered == 2, "the expert whose every attempt dropped is recorded absent"
    answers = await stored_texts(store, dialogue_id, "answer")
    assert flaky in answers and gone not in answers, "nothing is invented for the absent expert"
    await finished_cleanly(store, result)


# --- 5. SIGKILL of `concord serve` during writes ---------------------------------------------------

REGISTER_REF = """mutation($d: ID!, $s: ID!, $t: ID!) {
  registerRef(dialogueId: $d, source: $s, refType: SUPPORT, target: $t) { source { id } target { id } } }"""
UPDATE_STATUS = """mutation($d: ID!, $id: ID!, $status: TensionStatus!) {
  updateTensionStatus(dialogueId: $d, id: $id, status: $status, actors: ["load"]) { id status } }"""
READ_BACK = """query($d: ID!, $id: ID!) {
  entity(dialogueId: $d, id: $id) { status refsOut { refType target { id } } history { eventType } } }"""


async def mutate(client: httpx.AsyncClient, query: str, variables: dict[str, str]) -> None:
    """Send one mutation that must succeed."""
    body = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
    assert "errors" not in body, body


async def write_until_killed(
    client: httpx.AsyncClient,
    dialogue_id: str,
    refs: list[tuple[str, str]],
    tensions: list[str],
    acked: list[tuple[str, ...]],
) -> None:
    """Alternate refs and status changes (tensions in turn), logging each acknowledged one, until the server dies."""
    statuses = dict.fromkeys(tensions, "open")
    try:
        for n, (source, target) in enumerate(refs):
            await mutate(client, REGISTER_REF, {"d": dialogue_id, "s": source, "t": target})
            acked.append(("ref", source, target))
            tension = tensions[n % len(tensions)]
            status = "addressed" if statuses[tension] == "open" else "open"
            await mutate(client, UPDATE_STATUS, {"d": dialogue_id, "id": tension, "status": status.upper()})
            statuses[tension] = status
            acked.append(("status", tension, status))
    except httpx.TransportError:
        return


def test_sigkill_of_serve_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def prepare() -> tuple[str, list[str], list[str]]:
        stores = await open_stores(Settings(home=home))
        try:
            dialogue_id = await build_dialogue(stores.dialogues, 50, per_round=25)
            snap = await stores.dialogues.load_partition(dialogue_id)
            return (
                dialogue_id,
                sorted(e.id for e in snap.of_kind("perspective")),
                sorted(t.id for t in snap.of_kind("tension") if t.status == "open"),
            )
        finally:
            await stores.close()

    dialogue_id, perspectives, open_tensions = asyncio.run(prepare())
    env = environment(home, "http://127.0.0.1:9")
    added = subprocess.run(
        concord("tokens", "add", "--tenant", "local", "--scopes", "read,write", "--name", "writer", "--json"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    headers = {"Authorization": f"Bearer {json.loads(added.stdout)['token']}"}
    pairs = [(s, t) for s in perspectives for t in perspectives if s != t]
    workers = [(pairs[n::2], open_tensions[n::2]) for n in range(2)]
    port = free_port()
    acked: list[list[tuple[str, ...]]] = [[], []]

    async def stream(process: subprocess.Popen[bytes]) -> None:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10) as client:
            tasks = [
                asyncio.create_task(write_until_killed(client, dialogue_id, refs, tensions, log))
                for (refs, tensions), log in zip(workers, acked, strict=False)
            ]
            deadline = time.monotonic() + WAIT
            while sum(map(len, acked)) < 40 and not all(t.done() for t in tasks):
                assert time.monotonic() < deadline, "the mutation stream stalled"
                await asyncio.sleep(0.01)
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*tasks), WAIT)

    with served(home, port) as process:
        asyncio.run(stream(process))
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    acknowledged = [entry for log in acked for entry in log]
    assert 40 <= len(acknowledged) and sum(e[0] == "ref" for e in acknowledged) < len(pairs), "killed mid-stream"

    async def read_back() -> dict[str, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10) as client:
            entities = {}
            for entity_id in perspectives + open_tensions:
                response = await client.post(
                    "/graphql", json={"query": READ_BACK, "variables": {"d": dialogue_id, "id": entity_id}}
                )
                body = response.json()
                assert "errors" not in body, body
                entities[entity_id] = body["data"]["entity"]
            return entities

    with served(home, port):
        entities = asyncio.run(read_back())
    for kind, source, target in acknowledged:
        if kind == "ref":
            assert {"refType": "SUPPORT", "target": {"id": target}} in entities[source]["refsOut"], (source, target)
    for log in acked:
        for tension in {entry[1] for entry in log if entry[0] == "status"}:
            wanted = [entry[2] for entry in log if entry[:2] == ("status", tension)]
            history = [e["eventType"] for e in entities[tension]["history"]][1:]
            assert history[: len(wanted)] == wanted and len(history) <= len(wanted) + 1, (tension, wanted, history)
    verified = subprocess.run(
        concord("audit", "verify", "--json"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout + verified.stderr
