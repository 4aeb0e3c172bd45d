"""Auth, tenancy, limits, masking and the tokens file, against the real server on both backends."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from concord.orchestrator.progress.bus import ProgressBus
from concord.resolvers import convert
from concord.resolvers.app import create_app
from concord.resolvers.ports import StartRequest
from concord.resolvers.tokens import TokensError, add_token, read_tokens, token_hash
from concord.schema import entities as schema_entities
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.errors import IntegrityError
from concord.store.factory import Stores
from concord.store.model import Perspective
from tests.graphql_helpers import Api, build_dialogue, tokens_file

MEANING = "query($id: ID!) { dialogue(id: $id) { title } }"
#: For behaviour of the HTTP layer that no backend changes: run once, on SQLite.
BACKEND_AGNOSTIC = pytest.mark.parametrize("backend_kind", ["sqlite"])


def clean(response: httpx.Response) -> None:
    """A refusal that leaks nothing: no traceback, no source path, no Python exception name."""
    assert "Traceback" not in response.text and 'File "' not in response.text and "Error:" not in response.text


async def test_requests_without_a_known_token_get_401(api: Api) -> None:
    dialogue_id = await api.stores.dialogues.create_dialogue("Secret plans", "Who knows?")
    body = {"query": MEANING, "variables": {"id": dialogue_id}}
    for headers in (
        {},
        {"Authorization": "Bearer concord_unknown"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {api.tokens['writer']}"},
    ):
        response = await api.client.post("/graphql", json=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "Secret" not in response.text
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}
    assert (await api.data(MEANING, {"id": dialogue_id}, token="reader")) == {"dialogue": {"title": "Secret plans"}}


async def test_read_scope_cannot_mutate(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    body = await api.query(
        """mutation($id: ID!) { registerRef(dialogueId: $id, source: "C0001", refType: SUPPORT,
                                                               target: "P0001") { sourceId } }""",
        {"id": dialogue_id},
        token="reader",
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN"}
    refs = await api.data(
        'query($id: ID!) { entity(dialogueId: $id, id: "C0001") { refsOut { targetId } } }', {"id": dialogue_id}
    )
    assert refs["entity"]["refsOut"] == [{"targetId": "E0001"}]
    start = await api.query(
        'mutation { startDialogue(input: {title: "t", question: "q", pool: {experts: [1]}}) }', token="reader"
    )
    assert start["errors"][0]["extensions"] == {"code": "FORBIDDEN"} and api.starter.requests == []


async def test_another_tenants_dialogue_answers_like_a_missing_one(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    missing = dialogue_id[:-6] + ("zzzzzz" if not dialogue_id.endswith("zzzzzz") else "yyyyyy")
    probes = [
        "query($id: ID!) { dialogue(id: $id) { title tensions { label } } }",
        "query($id: ID!) { dialogue(id: $id) { perspectives { links { depth } } } }",
        'query($id: ID!) { entity(dialogueId: $id, id: "T0001") { label } }',
        'query($id: ID!) { entity(dialogueId: $id, id: "T0001") { refsOut { targetId } } }',
        "query($id: ID!) { scoreboard(dialogueId: $id) { total } }",
        "query($id: ID!) { auditReport(dialogueId: $id) { ok } }",
        'mutation($id: ID!) { registerRef(dialogueId: $id, source: "C0001", refType: SUPPORT, target: "P0001") { sourceId } }',
        'mutation($id: ID!) { updateTensionStatus(dialogueId: $id, id: "T0001", status: RESOLVED) { id } }',
        """mutation($id: ID!) { registerVerdict(dialogueId: $id, force: true, input: {id: "v", verdictType: FINAL,
                                round: 0, recommendation: "r"}) { id } }""",
    ]
    for probe in probes:
        theirs = await api.post(probe, {"id": dialogue_id}, token="other")
        absent = await api.post(probe, {"id": missing}, token="other")
        assert theirs.status_code == absent.status_code == 200
        assert theirs.json()["errors"][0]["extensions"] == {"code": "NOT_FOUND"}, probe
        assert theirs.text.replace(dialogue_id, "ID") == absent.text.replace(missing, "ID"), probe
        clean(theirs)
    assert (await api.data("{ dialogues { nodes { id } } }", token="other")) == {"dialogues": {"nodes": []}}
    assert (await api.data("{ openTensions { nodes { id } } }", token="other")) == {"openTensions": {"nodes": []}}
    assert (await api.data('{ expertParticipation(role: "Platform Engineer") { dialogueId } }', token="other")) == {
        "expertParticipation": []
    }
    async with websockets.connect(
        api.url.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],
        additional_headers=api.headers("other"),
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription($id: ID!) { dialogueEvents(dialogueId: $id) { kind } }",
                        "variables": {"id": dialogue_id},
                    },
                }
            )
        )
        answer = json.loads(await socket.recv())
        assert answer["payload"]["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    assert api.bus.subscribers(dialogue_id) == 0


async def test_limits_are_answered_cleanly(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    nested = "label"
    for _ in range(8):
        nested = f"refsOut {{ target {{ {nested} }} }}"
    bomb = await api.query(
        f'query($id: ID!) {{ entity(dialogueId: $id, id: "C0001") {{ {nested} }} }}', {"id": dialogue_id}
    )
    assert "exceeds maximum operation depth" in bomb["errors"][0]["message"] and bomb.get("data") is None
    aliases = " ".join(f"a{n}: dialogue(id: $id) {{ title }}" for n in range(50))
    flood = await api.query(f"query($id: ID!) {{ {aliases} }}", {"id": dialogue_id})
    assert "aliases found" in flood["errors"][0]["message"] and flood.get("data") is None
    tokens = await api.query("{ " + "__typename " * 3000 + "}")
    assert "tokens" in tokens["errors"][0]["message"] and tokens.get("data") is None
    links = await api.query(
        "query($id: ID!) { dialogue(id: $id) { tensions { links { entity { links { depth } } } } } }",
        {"id": dialogue_id},
    )
    assert "inside `links`" in links["errors"][0]["message"] and links.get("data") is None
    page = await api.query("{ dialogues(first: 100000) { nodes { id } } openTensions(first: 0) { nodes { id } } }")
    assert {e["extensions"]["code"] for e in page["errors"]} == {"VALIDATION"} and page["data"] is None
    depth = await api.query(
        'query($id: ID!) { entity(dialogueId: $id, id: "C0001") { links(maxDepth: 0) { depth } } }', {"id": dialogue_id}
    )
    assert depth["errors"][0]["extensions"]["problems"][0]["field"] == "maxDepth"
    for response in (bomb, flood, tokens, links, page):
        assert "Traceback" not in json.dumps(response)

    big = json.dumps({"query": "{ __typename }", "padding": "x" * (10 * 1024 * 1024)}).encode()
    declared = await api.client.post(
        "/graphql", content=big, headers={**api.headers(), "content-type": "application/json"}
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 256 * 1024):
            yield big[start : start + 256 * 1024]

    streamed = await api.client.post(
        "/graphql", content=chunks(), headers={**api.headers(), "content-type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        clean(response)
    assert (await api.data("{ __typename }")) == {"__typename": "Query"}


@BACKEND_AGNOSTIC
async def test_internal_errors_are_masked(api: Api, tmp_path: Path) -> None:
    async def broken(request: StartRequest) -> str:
        raise RuntimeError("cannot reach /srv/secret.db with password hunter2")

    path, tokens = tokens_file(tmp_path / "masked")
    api.slot.app = create_app(api.stores, bus=ProgressBus(), starter=broken, tokens_file=path)
    response = await api.client.post(
        "/graphql",
        headers={"Authorization": f"Bearer {tokens['writer']}"},
        json={"query": 'mutation { startDialogue(input: {title: "t", question: "q", pool: {}}) }'},
    )
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {
            "message": "internal error",
            "locations": [{"line": 1, "column": 12}],
            "path": ["startDialogue"],
            "extensions": {"code": "INTERNAL"},
        }
    ]
    assert "hunter2" not in response.text and "secret" not in response.text
    clean(response)


@BACKEND_AGNOSTIC
async def test_introspection_and_graphiql_only_in_dev(api: Api, tmp_path: Path) -> None:
    introspect = "{ __schema { queryType { name } } }"
    closed = await api.query(introspect)
    assert "introspection has been disabled" in closed["errors"][0]["message"]
    page = await api.client.get("/graphql", headers={**api.headers(), "accept": "text/html"})
    assert page.status_code == 404 and "graphiql" not in page.text.lower()

    path, tokens = tokens_file(tmp_path / "dev")
    api.slot.app = create_app(api.stores, bus=ProgressBus(), starter=None, dev=True, tokens_file=path)
    page = await api.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    opened = await api.client.post(
        "/graphql", json={"query": introspect}, headers={"Authorization": f"Bearer {tokens['reader']}"}
    )
    assert opened.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    assert (await api.client.post("/graphql", json={"query": introspect})).status_code == 401


@BACKEND_AGNOSTIC
async def test_websockets_need_a_token(api: Api) -> None:
    url = api.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        await socket.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "subscription { x }"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            url, subprotocols=["graphql-transport-ws"], additional_headers={"Authorization": "Bearer concord_unknown"}
        ):
            pass


def test_tokens_file_keeps_hashes_only_and_refuses_unsafe_files(tmp_path: Path) -> None:
    path = tmp_path / "home" / "tokens.json"
    first = add_token(path, "acme", ["read"], "dashboard")
    second = add_token(path, "acme", ["read", "write"], "ci")
    assert first != second and first.startswith("concord_")
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert first not in text and second not in text and token_hash(first) in text
    callers = read_tokens(path)
    assert callers[token_hash(second)].tenant == "acme" and callers[token_hash(second)].scopes == {"read", "write"}
    assert json.loads(text)["tokens"][token_hash(first)]["created_at"]
    for tenant, scopes, name, complaint in (
        ("acme", ["admin"], "x", "scopes"),
        ("acme", [], "x", "scopes"),
        ("Bad#Tenant", ["read"], "x", "tenant"),
        ("acme", ["read"], "ci", "already"),
    ):
        with pytest.raises(TokensError, match=complaint):
            add_token(path, tenant, scopes, name)
    os.chmod(path, 0o644)
    with pytest.raises(TokensError, match="chmod 600"):
        add_token(path, "acme", ["read"], "late")
    with pytest.raises(TokensError, match="chmod 600"):
        read_tokens(path)
    with pytest.raises(TokensError, match="concord tokens add"):
        read_tokens(tmp_path / "nowhere.json")


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"name": "ci", "tenant": "acme", "scopes": "read,write"}, "scopes of 'ci' are not a list of strings"),
        ({"name": "ci", "tenant": "acme", "scopes": ["read", 2]}, "scopes of 'ci' are not a list of strings"),
        ({"name": "ci", "tenant": 7, "scopes": ["read"]}, "name or tenant is not a string"),
        ({"tenant": "acme", "scopes": ["read"]}, "name or tenant is not a string"),
        (["ci", "acme", ["read"]], "an entry is not an object"),
    ],
)
def test_a_tokens_entry_of_the_wrong_shape_is_refused(tmp_path: Path, entry: object, complaint: str) -> None:
    """A string of scopes is not read as its letters, and no entry turns into a caller with non-string fields."""
    path = tmp_path / "tokens.json"
    add_token(path, "acme", ["read"], "dashboard")
    document = json.loads(path.read_text())
    document["tokens"]["0" * 64] = entry
    path.write_text(json.dumps(document))
    with pytest.raises(TokensError, match=complaint):
        read_tokens(path)


def test_an_entity_stored_under_another_kind_is_an_integrity_failure() -> None:
    """A field typed Tension never serves a perspective as a tension."""
    perspective = Perspective(id="P0001", round=0, seq=1, label="a view", content="text")
    assert isinstance(convert.entity_as(schema_entities.Perspective, "d1", perspective), schema_entities.Perspective)
    with pytest.raises(IntegrityError, match="P0001 of dialogue d1 is a perspective, not a tension"):
        convert.entity_as(schema_entities.Tension, "d1", perspective)


@BACKEND_AGNOSTIC
async def test_unsafe_tokens_file_fails_closed_and_changes_apply_without_restart(api: Api, tmp_path: Path) -> None:
    path, tokens = tokens_file(tmp_path / "live")
    api.slot.app = create_app(api.stores, bus=ProgressBus(), starter=None, tokens_file=path)
    headers = {"Authorization": f"Bearer {tokens['reader']}"}
    assert (await api.client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)).status_code == 200
    late = add_token(path, "local", ["read"], "late")
    assert (
        await api.client.post("/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {late}"})
    ).status_code == 200
    os.chmod(path, 0o640)
    assert (await api.client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)).status_code == 401
    with pytest.raises(TokensError):
        create_app(api.stores, bus=ProgressBus(), starter=None, tokens_file=path)


@BACKEND_AGNOSTIC
async def test_readyz_reports_an_unreachable_backend(api: Api, tmp_path: Path) -> None:
    backend = await SQLiteBackend(tmp_path / "gone.db").open()
    await backend.close()
    keys = LocalKeyProvider(tmp_path / "umk.key")
    down = Stores(api.stores.settings, backend, keys, api.stores.dialogues, api.stores.analytics)
    path, _ = tokens_file(tmp_path / "down")
    api.slot.app = create_app(down, bus=ProgressBus(), starter=None, tokens_file=path)
    assert (await api.client.get("/readyz")).status_code == 503
    assert (await api.client.get("/healthz")).status_code == 200
