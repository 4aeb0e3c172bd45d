"""Token lifetimes: expiry, `tokens list`/`revoke`, and revocation closing live websockets (real uvicorn, real client)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets

from concord.orchestrator.progress.bus import ProgressEvent
from concord.resolvers.app import create_app
from concord.resolvers.auth import Tokens
from concord.resolvers.token_watch import CLOSE_REVOKED
from concord.resolvers.tokens import add_token, list_tokens, read_tokens, revoke_token, token_hash
from tests.graphql_helpers import Api
from tests.services import run_cli

#: For behaviour of the HTTP layer that no backend changes: run once, on SQLite.
BACKEND_AGNOSTIC = pytest.mark.parametrize("backend_kind", ["sqlite"])

EVENTS = "subscription($id: ID!) { dialogueEvents(dialogueId: $id) { kind } }"


def tokens_path(tmp_path: Path) -> Path:
    """The tokens file the `api` fixture serves."""
    return tmp_path / "home" / "tokens.json"


async def connect(api: Api, token: str, *, in_header: bool) -> Any:
    """An acknowledged graphql-transport-ws connection authenticated by header or by connection_init payload."""
    headers = api.headers(token) if in_header else {}
    socket = await websockets.connect(
        api.url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"], additional_headers=headers
    )
    payload = {} if in_header else {"Authorization": f"Bearer {api.tokens[token]}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket


def subscribe(dialogue_id: str, operation: str = "1") -> str:
    """A subscribe message for the dialogue's events."""
    return json.dumps(
        {"id": operation, "type": "subscribe", "payload": {"query": EVENTS, "variables": {"id": dialogue_id}}}
    )


async def closed_code(socket: Any, timeout: float) -> int:
    """The close code the server sends within `timeout` seconds; fails if any other message comes first."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        message = await asyncio.wait_for(socket.recv(), timeout)
        pytest.fail(f"expected the socket to close, got {message}")
    assert closed.value.rcvd is not None, "the server closed the socket"
    return int(closed.value.rcvd.code)


async def wait_for_subscribers(api: Api, dialogue_id: str, count: int) -> None:
    """Wait until the bus has `count` subscribers of the dialogue."""
    async with asyncio.timeout(10):
        while api.bus.subscribers(dialogue_id) != count:
            await asyncio.sleep(0.02)


@BACKEND_AGNOSTIC
@pytest.mark.parametrize("in_header", [True, False], ids=["header", "connection_init"])
async def test_revoking_a_token_closes_its_idle_subscription_within_5_s(
    api: Api, tmp_path: Path, in_header: bool
) -> None:
    dialogue_id = await api.stores.dialogues.create_dialogue("Revocation", "Who may still listen?")
    socket = await connect(api, "writer", in_header=in_header)
    bystander = await connect(api, "reader", in_header=in_header)
    try:
        await socket.send(subscribe(dialogue_id))
        await bystander.send(subscribe(dialogue_id))
        await wait_for_subscribers(api, dialogue_id, 2)
        revoke_token(tokens_path(tmp_path), "writer")
        started = time.monotonic()
        assert await closed_code(socket, timeout=5) == CLOSE_REVOKED
        assert time.monotonic() - started < 5
        await wait_for_subscribers(api, dialogue_id, 1)  # the revoked caller's subscription ended; the other runs on
        api.bus.publish(ProgressEvent(dialogue_id, "round_started", 0, None, {}))
        heard = json.loads(await asyncio.wait_for(bystander.recv(), 5))
        assert (heard["type"], heard["payload"]["data"]) == ("next", {"dialogueEvents": {"kind": "round_started"}})
    finally:
        await socket.close()
        await bystander.close()
    refused = await api.post("{ __typename }", token="writer")
    assert refused.status_code == 401
    with pytest.raises(websockets.InvalidStatus):
        await connect(api, "writer", in_header=True)
    late = await websockets.connect(api.url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"])
    await late.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {api.tokens['writer']}"}})
    )
    assert await closed_code(late, timeout=5) == 4403


@BACKEND_AGNOSTIC
async def test_an_operation_after_revocation_is_refused_before_it_reaches_the_schema(api: Api, tmp_path: Path) -> None:
    path = tokens_path(tmp_path)
    api.slot.app = create_app(api.stores, bus=api.bus, starter=api.starter, tokens_file=path, token_recheck=3600)
    dialogue_id = await api.stores.dialogues.create_dialogue("Revocation", "Is the next operation refused?")
    socket = await connect(api, "reader", in_header=False)
    try:
        revoke_token(path, "reader")
        started = time.monotonic()
        await socket.send(subscribe(dialogue_id))
        assert await closed_code(socket, timeout=5) == CLOSE_REVOKED
        assert time.monotonic() - started < 1, "closed by the message's own check, not by the hourly one"
    finally:
        await socket.close()
    assert api.bus.subscribers(dialogue_id) == 0


@BACKEND_AGNOSTIC
async def test_expired_tokens_are_refused_and_an_open_socket_is_closed_at_expiry(api: Api, tmp_path: Path) -> None:
    path = tokens_path(tmp_path)
    now = datetime.now(UTC)
    stale = add_token(path, "local", ["read"], "stale", expires_in=timedelta(hours=1), now=now - timedelta(hours=2))
    fresh = add_token(path, "local", ["read"], "fresh", expires_in=timedelta(hours=1))
    for token, status in ((stale, 401), (fresh, 200)):
        response = await api.client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == status
    moment = [now]
    tokens = Tokens(path, clock=lambda: moment[0])
    caller = read_tokens(path)[token_hash(fresh)]
    assert tokens.current(caller)
    moment[0] = now + timedelta(hours=1, seconds=1)
    assert not tokens.current(caller), "a socket's periodic check refuses it once it expired"


@BACKEND_AGNOSTIC
async def test_tokens_list_shows_last_use_and_never_a_secret(api: Api, tmp_path: Path) -> None:
    path = tokens_path(tmp_path)
    assert (await api.post("{ __typename }", token="reader")).status_code == 200
    listed = {info.name: info for info in list_tokens(path)}
    assert set(listed) == {"writer", "reader", "other"}
    assert listed["reader"].last_used_at is not None and listed["other"].last_used_at is None
    assert listed["other"].tenant == "other" and listed["writer"].scopes == ["read", "write"]
    shown = json.dumps([vars(info) for info in listed.values()])
    for token in api.tokens.values():
        assert token not in shown and token_hash(token) not in shown


def test_tokens_add_list_and_revoke_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = run_cli(home, "tokens", "add", "--name", "ci", "--scopes", "read,write", "--expires", "30d", "--json")
    assert added.returncode == 0, added.stderr
    token = json.loads(added.stdout)["token"]
    for bad in ("30", "0d", "3x", "-1h", "1.5d"):
        refused = run_cli(home, "tokens", "add", "--name", "bad", f"--expires={bad}")
        assert refused.returncode == 2 and "is not a duration" in refused.stderr, bad
    listed = run_cli(home, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)["tokens"]
    assert entry["name"] == "ci" and entry["tenant"] == "local" and entry["scopes"] == ["read", "write"]
    expires = datetime.fromisoformat(entry["expires_at"]) - datetime.fromisoformat(entry["created_at"])
    assert expires == timedelta(days=30) and entry["last_used_at"] is None and entry["expired"] is False
    assert token not in listed.stdout and token_hash(token) not in listed.stdout
    text = run_cli(home, "tokens", "list")
    assert text.stdout.startswith("ci  tenant local  scopes read,write  created ") and "last used never" in text.stdout
    assert run_cli(home, "tokens", "revoke", "ci").returncode == 0
    assert json.loads(run_cli(home, "tokens", "list", "--json").stdout) == {"tokens": []}
    again = run_cli(home, "tokens", "revoke", "ci")
    assert again.returncode == 2 and "no token named 'ci'" in again.stderr
