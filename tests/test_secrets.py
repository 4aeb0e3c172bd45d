"""Secrets: no key, data key, token or API key in a log line, error, prompt/answer file or GraphQL answer; 0600 files."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from concord.orchestrator.cli.main import main
from concord.orchestrator.engine.providers import AgentFailed, AnthropicProvider, Call
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.panel.pools import load_pool
from concord.resolvers.auth import Tokens
from concord.resolvers.tokens import TokensError, add_token, read_tokens, token_hash
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.config import Settings
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.crypto.kms import KmsKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import StoreError
from concord.store.factory import open_stores
from tests.fake_anthropic import FakeAnthropic
from tests.graphql_helpers import Api, build_dialogue
from tests.services import concord, free_port
from tests.test_hostile_input import RecordingBus

ROOT = Path(__file__).resolve().parents[1]
POOL = load_pool(ROOT / "orchestrator" / "demo-pool.json")
#: For behaviour no backend changes: run once, on SQLite.
BACKEND_AGNOSTIC = pytest.mark.parametrize("backend_kind", ["sqlite"])
#: Group or world may read, write or enter: every one of these must be refused.
UNSAFE_MODES = (0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o610)


class Secrets:
    """Every form in which a secret could leak: text as is, raw bytes, hex, base64."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.raw: dict[str, bytes] = {}

    def add_text(self, name: str, value: str) -> None:
        """A secret that is text (a token, an API key)."""
        self.texts[name] = value
        self.raw[name] = value.encode()

    def add_bytes(self, name: str, value: bytes) -> None:
        """A secret that is key material: searched raw, as hex (either case) and as base64."""
        self.raw[name] = value
        for form, text in (
            ("hex", value.hex()),
            ("HEX", value.hex().upper()),
            ("b64", base64.b64encode(value).decode()),
            ("b64url", base64.urlsafe_b64encode(value).decode().rstrip("=")),
        ):
            self.texts[f"{name} ({form})"] = text
        self.texts[f"{name} (repr)"] = repr(value)[2:-1]

    def assert_absent(self, where: str, content: str | bytes) -> None:
        """Fail naming the secret and the place when any form of any secret occurs in `content`."""
        if isinstance(content, bytes):
            for name, value in self.raw.items():
                assert value not in content, f"{name} found in {where}"
            content = content.decode("utf-8", errors="replace")
        for name, text in self.texts.items():
            assert text not in content, f"{name} found in {where}"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block under another process umask."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


async def failure(action: object) -> str:
    """The message and repr of the error an awaitable raises (it must raise a domain error)."""
    with pytest.raises((StoreError, AgentFailed, ValueError)) as raised:
        await action  # type: ignore[misc]
    return f"{raised.value}\n{raised.value!r}"


# --- a run with failures, then every kind of key error ---------------------------------------------


async def test_run_and_its_errors_leave_no_secret_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    api_key = "sk-ant-api03-" + secrets.token_urlsafe(40)
    found = Secrets()
    found.add_text("ANTHROPIC_API_KEY", api_key)
    stores = await open_stores(Settings(home=home), principal="secret-test")
    bus = RecordingBus()
    try:
        with FakeAnthropic(seed=3) as fake:
            fake.script_expert("muffin", "500", "500", "500", round=0)
            fake.script_expert("cupcake", "malformed", round=0)
            provider = AnthropicProvider(api_key=api_key, base_url=fake.base_url, timeout=10)
            try:
                orchestrator = Orchestrator(stores.dialogues, provider, bus=bus)
                settings = RunSettings(provider="anthropic", panel_size=3, max_rounds=2, seed=3)
                dialogue_id = await orchestrator.create("Where do keys live?", POOL, settings, tmp_path / "out")
                result = await orchestrator.run(dialogue_id)
            finally:
                await provider.aclose()
        found.add_bytes("UMK", bytes.fromhex(stores.settings.key_file.read_text().strip()))  # made by the first write
        dek = stores.dialogues.deks.get(dialogue_id, 1)
        assert dek is not None
        found.add_bytes("DEK", dek)
        assert [e for e in bus.events if e.kind == "expert_absent"], "an Anthropic failure was provoked"

        messages = []
        other_key = tmp_path / "other" / "umk.key"
        LocalKeyProvider.create_key_file(other_key)
        wrong = DialogueStore(stores.backend, LocalKeyProvider(other_key), principal="secret-test")
        messages.append(await failure(wrong.load_partition(dialogue_id)))
        missing = DialogueStore(stores.backend, LocalKeyProvider(tmp_path / "gone.key"), principal="secret-test")
        messages.append(await failure(missing.get_dialogue(dialogue_id)))
        exposed = tmp_path / "exposed" / "umk.key"
        exposed.parent.mkdir()
        shutil.copy(stores.settings.key_file, exposed)
        exposed.chmod(0o644)
        readable = DialogueStore(stores.backend, LocalKeyProvider(exposed), principal="secret-test")
        messages.append(await failure(readable.get_dialogue(dialogue_id)))
        dead_kms = KmsKeyProvider("alias/concord", endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1)
        try:
            kms_store = DialogueStore(stores.backend, dead_kms, principal="secret-test")
            messages.append(await failure(kms_store.create_dialogue("KMS is down", "Does it leak?")))
        finally:
            await dead_kms.close()
        offline = AnthropicProvider(
            api_key=api_key, base_url=f"http://127.0.0.1:{free_port()}", max_retries=0, timeout=2
        )
        try:
            messages.append(await failure(offline.complete(Call("system", "prompt", "muffin", 0, "claude-sonnet-4-6"))))
        finally:
            await offline.aclose()
    finally:
        await stores.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONCORD_", "ANTHROPIC_"))}
    env.update(CONCORD_HOME=str(tmp_path / "exposed"), ANTHROPIC_API_KEY=api_key)
    shutil.copy(home / "concord.db", tmp_path / "exposed" / "concord.db")
    shown = await asyncio.to_thread(
        subprocess.run,
        concord("show", dialogue_id),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 1 and "chmod 600" in shown.stderr, shown.stderr
    messages.append(shown.stdout + shown.stderr)

    assert "chmod 600" in messages[2] and "KMS" in messages[3] and "connection failed" in messages[4], messages
    for n, message in enumerate(messages):
        found.assert_absent(f"error message {n}: {message!r}", message)
    found.assert_absent("the captured log", caplog.text)
    assert any(r.name.startswith(("anthropic", "httpx", "httpcore")) for r in caplog.records), (
        "DEBUG logs were captured"
    )
    for event in bus.events:
        found.assert_absent(f"progress event {event.kind}", repr(event))
    files = [p for p in result.directory.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".prompt.md") for p in files) and any(p.name.endswith(".repair.md") for p in files)
    for path in files:
        found.assert_absent(str(path), path.read_bytes())
    for path in home.glob("concord.db*"):
        found.assert_absent(str(path), path.read_bytes())


# --- the API ------------------------------------------------------------------------------------------


@BACKEND_AGNOSTIC
async def test_api_answers_and_logs_hold_no_token_or_key(
    api: Api, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    found = Secrets()
    for name, token in api.tokens.items():
        found.add_text(f"token {name}", token)
    found.add_bytes("UMK", bytes.fromhex(key_file.read_text().strip()))
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    dek = api.stores.dialogues.deks.get(dialogue_id, 1)
    assert dek is not None
    found.add_bytes("DEK", dek)
    stranger = "concord_" + secrets.token_urlsafe(32)
    found.add_text("an unknown token", stranger)
    responses = []
    for headers in (
        {"Authorization": f"Bearer {stranger}"},
        {"Authorization": f"Basic {api.tokens['writer']}"},
        {"Authorization": f"Bearer {api.tokens['writer']}x"},
        {"Authorization": f"bearer {stranger}"},
    ):
        response = await api.client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert response.status_code == 401
        responses.append(response)
    for query, token in (
        ('{ dialogue(id: "no-such-dialogue-aaaaaa") { title } }', "writer"),
        ('query($d: ID!) { entity(dialogueId: $d, id: "T9999") { label } }', "writer"),
        ('query($d: ID!) { entity(dialogueId: $d, id: "not an id") { label } }', "writer"),
        (
            'mutation($d: ID!) { registerRef(dialogueId: $d, source: "P0001", refType: RESOLVE, target: "P0002") { createdAt } }',
            "writer",
        ),
        ('mutation($d: ID!) { updateTensionStatus(dialogueId: $d, id: "T0001", status: REOPENED) { id } }', "writer"),
        (
            'mutation($d: ID!) { registerRef(dialogueId: $d, source: "P0001", refType: SUPPORT, target: "C0001") { createdAt } }',
            "reader",
        ),
        ("query($d: ID!) { dialogue(id: $d) { title } }", "other"),
        ("{ dialogue(id: ", "writer"),
        ("query($d: ID!) { auditReport(dialogueId: $d) { ok head } }", "reader"),
    ):
        response = await api.post(query, {"d": dialogue_id} if "$d" in query else None, token=token)
        assert response.status_code < 500
        responses.append(response)
    assert sum("errors" in r.json() for r in responses) >= 10, "errors were provoked"
    for response in responses:
        found.assert_absent(f"the answer to a request ({response.status_code})", response.text)
        found.assert_absent("response headers", str(response.headers))
    found.assert_absent("the captured log", caplog.text)


def test_an_unsafe_tokens_file_is_logged_without_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "live" / "tokens.json"
    token = add_token(path, "local", ["read"], "dashboard")
    tokens = Tokens(path)
    assert tokens.caller(f"Bearer {token}") is not None
    path.chmod(0o640)
    assert tokens.caller(f"Bearer {token}") is None, "an unsafe file fails closed"
    refusal = [r.getMessage() for r in caplog.records if r.name == "concord.api"]
    assert refusal and "chmod 600" in refusal[-1]
    found = Secrets()
    found.add_text("token", token)
    found.assert_absent("the captured log", caplog.text)


# --- file modes ----------------------------------------------------------------------------------------


def test_key_file_is_0600_whatever_the_umask_and_refused_when_others_may_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with umask(0):
        direct = tmp_path / "direct" / "umk.key"
        LocalKeyProvider.create_key_file(direct)
        monkeypatch.setenv("CONCORD_HOME", str(tmp_path / "cli"))
        assert main(["keys", "init", "--json"]) == 0
        opened = asyncio.run(open_and_close(tmp_path / "store"))
    for path in (direct, tmp_path / "cli" / "umk.key", opened):
        assert mode_of(path) == 0o600, path
    for unsafe in UNSAFE_MODES:
        direct.chmod(unsafe)
        with pytest.raises(StoreError, match=f"mode {unsafe:04o}.*chmod 600"):
            LocalKeyProvider(direct).umk()
    direct.chmod(0o600)
    assert len(LocalKeyProvider(direct).umk()) == 32


async def open_and_close(home: Path) -> Path:
    """Open the stores of a new home and write once (which creates its key file); return the key file."""
    stores = await open_stores(Settings(home=home), principal="secret-test")
    try:
        await stores.dialogues.create_dialogue("Modes", "Which mode has the key file?")
    finally:
        await stores.close()
    return stores.settings.key_file


async def test_a_store_refuses_to_run_on_a_readable_key_file(tmp_path: Path, key_file: Path) -> None:
    backend = await SQLiteBackend(tmp_path / "concord.db").open()
    try:
        key_file.chmod(0o644)
        store = DialogueStore(backend, LocalKeyProvider(key_file), principal="secret-test")
        with pytest.raises(StoreError, match="readable by group or others"):
            await store.create_dialogue("Exposed", "Will it write?")
    finally:
        await backend.close()
    with sqlite3.connect(tmp_path / "concord.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM items").fetchone() == (0,), "nothing was written"


def test_tokens_file_is_0600_whatever_the_umask_and_refused_when_others_may_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "direct" / "tokens.json"
    monkeypatch.setenv("CONCORD_HOME", str(tmp_path / "cli"))
    with umask(0):
        token = add_token(path, "local", ["read"], "dashboard")
        assert main(["tokens", "add", "--tenant", "local", "--scopes", "read,write", "--name", "ci", "--json"]) == 0
    cli_file = tmp_path / "cli" / "tokens.json"
    for file in (path, cli_file):
        assert mode_of(file) == 0o600, file
    assert token_hash(token) in read_tokens(path)
    assert token_hash(json.loads(capsys.readouterr().out)["token"]) in read_tokens(cli_file)
    for unsafe in UNSAFE_MODES:
        path.chmod(unsafe)
        with pytest.raises(TokensError, match=f"mode {unsafe:04o}.*chmod 600"):
            read_tokens(path)
        with pytest.raises(TokensError, match="chmod 600"):
            add_token(path, "local", ["read"], f"late-{unsafe:o}")
        with pytest.raises(TokensError, match="chmod 600"):
            Tokens(path)
    path.chmod(0o600)
    assert set(read_tokens(path)) == {token_hash(token)}, "no refused add left a token behind"
