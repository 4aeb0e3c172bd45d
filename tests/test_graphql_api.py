"""The GraphQL API end to end: a real uvicorn on 127.0.0.1, httpx and gql clients, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from concord.orchestrator.progress.bus import ProgressEvent
from tests.graphql_helpers import RUN_SCRIPT, Api, build_dialogue, converge

FULL_DIALOGUE = """
query Full($id: ID!) {
  dialogue(id: $id) {
    perspectives { refsOut { target { label } } links(maxDepth: 3) { depth } }
  }
}"""


async def test_dialogue_meta_is_one_get_item(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 2)
    body = await api.query(
        "query($id: ID!) { dialogue(id: $id) { id title question status totalRounds origin } }", {"id": dialogue_id}
    )
    assert body["data"]["dialogue"] == {
        "id": dialogue_id,
        "title": "Storage design",
        "totalRounds": 1,
        "origin": "live",
        "question": "Which storage design should Concord use?",
        "status": "OPEN",
    }
    assert body["extensions"]["backendCalls"] == 1


async def test_one_kind_is_meta_plus_one_query(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 12, per_round=10)
    body = await api.query(
        "query($id: ID!) { dialogue(id: $id) { tensions { id label status } } }", {"id": dialogue_id}
    )
    tensions = body["data"]["dialogue"]["tensions"]
    assert [t["id"] for t in tensions] == ["T0001", "T0002", "T0101"]
    assert tensions[0] == {"id": "T0001", "label": "tension 0.1", "status": "resolved"}
    assert body["extensions"]["backendCalls"] == 3  # AP1 meta, then AP3 (which checks the tenant on meta itself)
    round_one = await api.data(
        "query($id: ID!) { dialogue(id: $id) { tensions(round: 1) { id } } }", {"id": dialogue_id}
    )
    assert round_one["dialogue"]["tensions"] == [{"id": "T0101"}]


async def test_rounds_panels_experts_scoreboard_verdicts(api: Api) -> None:
    store = api.stores.dialogues
    dialogue_id = await build_dialogue(store, 7, per_round=5)
    await converge(store, dialogue_id, 2)
    data = await api.data(
        """
      mutation($id: ID!) {
        registerVerdict(dialogueId: $id, input: {id: "final-1", verdictType: FINAL, round: 2, confidence: UNANIMOUS,
                        recommendation: "Adopt the single-table design", adopted: ["R0001"],
                        supportingExperts: ["muffin", "cupcake", "scone"]}) {
          id verdictType confidence forced adopted context { adopted { id status } resolvedTensions { id } } } }""",
        {"id": dialogue_id},
    )
    verdict = data["registerVerdict"]
    assert verdict["verdictType"] == "FINAL" and verdict["confidence"] == "UNANIMOUS" and not verdict["forced"]
    assert verdict["context"]["adopted"] == [{"id": "R0001", "status": "adopted"}]
    assert {"id": "T0001"} in verdict["context"]["resolvedTensions"]

    body = await api.query(
        """
      query($id: ID!) { dialogue(id: $id) {
        status convergedAt
        rounds { number velocity convergePercent openTensions newPerspectives answered signals
                 totals { w c t r total } scores { expert score { total } } panel { name role tier } absent seated }
        experts { slug role tier firstRound }
        scoreboard { total converged blockers rounds { round velocity convergePercent totals { total } }
                     experts { expert score { w total } } }
        verdicts { id recommendation supportingExperts context { adopted { label } keyEvidence { id } } }
        events { entityId eventType round }
      } }""",
        {"id": dialogue_id},
    )
    dialogue = body["data"]["dialogue"]
    assert body["extensions"]["backendCalls"] == 1  # several slices and verdict context: one partition load
    assert dialogue["status"] == "CONVERGED" and dialogue["convergedAt"]
    assert [r["number"] for r in dialogue["rounds"]] == [0, 1, 2]
    assert dialogue["rounds"][2]["velocity"] == 0 and dialogue["rounds"][2]["convergePercent"] == 100.0
    assert dialogue["rounds"][0]["totals"] == {"w": 9, "c": 6, "t": 6, "r": 3, "total": 24}
    assert [s["name"] for s in dialogue["rounds"][0]["panel"]] == ["Muffin", "Cupcake", "Scone"]
    assert sorted(dialogue["rounds"][0]["seated"]) == ["cupcake", "muffin", "scone"]
    assert {e["slug"] for e in dialogue["experts"]} == {"muffin", "cupcake", "scone"}
    assert dialogue["experts"][0]["role"] in {
        "Relational Database Architect",
        "Single-Table Design Specialist",
        "Platform Engineer",
    }
    board = dialogue["scoreboard"]
    assert board["total"] == 72 and board["converged"] and board["blockers"] == []
    assert board["experts"] == [{"expert": e, "score": {"w": 9, "total": 24}} for e in ("cupcake", "muffin", "scone")]
    assert dialogue["verdicts"][0]["id"] == "final-1"
    assert dialogue["verdicts"][0]["context"]["adopted"] == [{"label": "recommendation 0.1"}]
    assert {"entityId": "R0001", "eventType": "adopted", "round": 2} in dialogue["events"]

    narrow = await api.query("query($id: ID!) { scoreboard(dialogueId: $id) { total converged } }", {"id": dialogue_id})
    assert narrow["data"]["scoreboard"] == {"total": 72, "converged": True}
    assert narrow["extensions"]["backendCalls"] == 2  # AP8 rounds: meta check plus one query


async def test_refs_links_history_lineage(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 21, per_round=10)
    body = await api.query(
        """
      query($id: ID!) { dialogue(id: $id) {
        perspectives(round: 2) { id lineage { id } refsOut { refType target { id } } }
        tensions(round: 0) {
          id status history { eventType actors reason }
          refsIn { refType source { id kind } }
          links(direction: IN, maxDepth: 2) { depth path entity { id kind } }
        }
      } }""",
        {"id": dialogue_id},
    )
    assert body["extensions"]["backendCalls"] == 2  # the meta's tenant (GetItem), then one partition load
    dialogue = body["data"]["dialogue"]
    first = dialogue["perspectives"][0]
    assert first["id"] == "P0201"
    assert first["lineage"] == [{"id": "P0201"}, {"id": "P0101"}, {"id": "P0001"}]
    assert first["refsOut"] == [{"refType": "REFINE", "target": {"id": "P0101"}}]
    tension = dialogue["tensions"][0]
    assert tension["id"] == "T0001" and tension["status"] == "resolved"
    assert [h["eventType"] for h in tension["history"]] == ["created", "resolved"]
    assert tension["history"][1] == {"eventType": "resolved", "actors": ["muffin"], "reason": "settled"}
    assert tension["refsIn"] == [{"refType": "ADDRESS", "source": {"id": "R0001", "kind": "RECOMMENDATION"}}]
    assert tension["links"] == [
        {"depth": 1, "path": ["T0001", "R0001"], "entity": {"id": "R0001", "kind": "RECOMMENDATION"}},
        {"depth": 2, "path": ["T0001", "R0001", "E0001"], "entity": {"id": "E0001", "kind": "EVIDENCE"}},
    ]
    chain = await api.data(
        """query($id: ID!) { entity(dialogueId: $id, id: "P0001") {
        links(direction: IN, refTypes: [REFINE]) { depth path } } }""",
        {"id": dialogue_id},
    )
    assert chain["entity"]["links"] == [
        {"depth": 1, "path": ["P0001", "P0101"]},
        {"depth": 2, "path": ["P0001", "P0101", "P0201"]},
    ]


async def test_entity_uses_the_narrow_patterns(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 13, per_round=10)
    variables = {"id": dialogue_id}
    body = await api.query(
        """query($id: ID!) { entity(dialogueId: $id, id: "R0101") {
        __typename id kind label contributors ... on Recommendation { adoptedInVerdict } } }""",
        variables,
    )
    assert body["data"]["entity"] == {
        "__typename": "Recommendation",
        "id": "R0101",
        "kind": "RECOMMENDATION",
        "label": "recommendation 1.1",
        "contributors": ["muffin"],
        "adoptedInVerdict": None,
    }
    assert body["extensions"]["backendCalls"] == 2
    refs = await api.query(
        """query($id: ID!) { entity(dialogueId: $id, id: "R0001") {
        refsOut { sourceId refType targetId } } }""",
        variables,
    )
    assert refs["data"]["entity"]["refsOut"] == [{"sourceId": "R0001", "refType": "ADDRESS", "targetId": "T0001"}]
    assert refs["extensions"]["backendCalls"] == 4  # the entity (meta + get), then AP5 (meta + query)
    history = await api.query(
        """query($id: ID!) { entity(dialogueId: $id, id: "T0001") { history { eventType } } }""", variables
    )
    assert history["data"]["entity"]["history"] == [{"eventType": "created"}, {"eventType": "resolved"}]
    assert history["extensions"]["backendCalls"] == 4  # AP7
    missing = await api.query('query($id: ID!) { entity(dialogueId: $id, id: "T0909") { id } }', variables)
    assert missing["errors"][0]["extensions"] == {"code": "NOT_FOUND"} and missing["data"] == {"entity": None}


async def test_no_n_plus_one(api: Api) -> None:
    store = api.stores.dialogues
    counts = {}
    for size in (10, 100):
        dialogue_id = await build_dialogue(store, size, title=f"Dialogue of {size}")
        before = sum(api.stores.backend.calls.values())
        body = await api.query(FULL_DIALOGUE, {"id": dialogue_id})
        assert "errors" not in body
        counts[size] = body["extensions"]["backendCalls"]
        assert sum(api.stores.backend.calls.values()) - before == counts[size]
        perspectives = body["data"]["dialogue"]["perspectives"]
        assert len(perspectives) == (2 if size == 10 else 20)
        assert any(p["links"] and p["refsOut"] for p in perspectives)
    print(f"\nbackend calls for the full-dialogue query: 10 entities -> {counts[10]}, 100 entities -> {counts[100]}")
    assert counts[10] == counts[100] == 2  # the meta's tenant (GetItem), then one partition load
    through_fragments = """query($id: ID!) { dialogue(id: $id) { ...Slices } }
      fragment Slices on Dialogue { tensions { id } ... on Dialogue { perspectives { ...Refs } } }
      fragment Refs on Entity { refsIn { sourceId } }"""
    assert await api.calls(through_fragments, {"id": dialogue_id}) == 1  # cached: only the version GetItem


async def test_dialogues_connection_pages(api: Api) -> None:
    store = api.stores.dialogues
    ids = [await store.create_dialogue(f"Question {n}", "why?") for n in range(3)]
    await store.set_dialogue_status(ids[2], "abandoned")
    query = """query($first: Int!, $after: String) { dialogues(first: $first, after: $after) {
        nodes { id title tensions { id } } edges { cursor node { id title } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    first = await api.data(query, {"first": 1})
    info = first["dialogues"]["pageInfo"]
    assert info["hasNextPage"] and not info["hasPreviousPage"] and info["startCursor"] == info["endCursor"]
    second = await api.data(query, {"first": 5, "after": info["endCursor"]})
    edges = second["dialogues"]["edges"]
    assert second["dialogues"]["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": edges[0]["cursor"],
        "endCursor": edges[-1]["cursor"],
    }
    assert [e["node"]["id"] for e in edges] == [d["id"] for d in second["dialogues"]["nodes"]]
    seen = [d["id"] for d in first["dialogues"]["nodes"] + second["dialogues"]["nodes"]]
    assert sorted(seen) == sorted(ids[:2])
    assert (await api.data(query, {"first": 5, "after": edges[-1]["cursor"]}))["dialogues"]["edges"] == []
    abandoned = await api.data("{ dialogues(status: ABANDONED) { nodes { id status } } }")
    assert abandoned["dialogues"]["nodes"] == [{"id": ids[2], "status": "ABANDONED"}]
    bad = await api.query('{ dialogues(after: "bm90IGEgY3Vyc29y") { nodes { id } } }')
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert bad["errors"][0]["extensions"]["problems"][0]["code"] == "invalid_cursor"


async def test_open_tensions_and_expert_participation(api: Api) -> None:
    store = api.stores.dialogues
    first = await build_dialogue(store, 10, title="First")
    second = await build_dialogue(store, 10, title="Second")
    page = await api.data("""{ openTensions(first: 100) { nodes { id dialogueId status label refsOut { targetId } }
                                                    pageInfo { hasNextPage } } }""")
    found = {(t["dialogueId"], t["id"]) for t in page["openTensions"]["nodes"]}
    assert found == {(first, "T0001"), (first, "T0002"), (second, "T0001"), (second, "T0002")}
    assert all(t["refsOut"] and t["status"] == "open" for t in page["openTensions"]["nodes"])
    paged = await api.data("""{ openTensions(first: 3) { nodes { id } edges { cursor node { id refsOut { targetId } } }
                                                      pageInfo { hasNextPage endCursor } } }""")
    rest = await api.data(
        "query($after: String) { openTensions(first: 3, after: $after) { nodes { id } } }",
        {"after": paged["openTensions"]["pageInfo"]["endCursor"]},
    )
    assert len(paged["openTensions"]["nodes"]) == 3 and len(rest["openTensions"]["nodes"]) == 1
    edges = paged["openTensions"]["edges"]
    assert [e["node"]["id"] for e in edges] == [t["id"] for t in paged["openTensions"]["nodes"]]
    assert all(e["node"]["refsOut"] for e in edges)
    after_first = await api.data(
        "query($after: String) { openTensions(first: 3, after: $after) { nodes { id } } }",
        {"after": edges[0]["cursor"]},
    )
    assert [t["id"] for t in after_first["openTensions"]["nodes"]] == [e["node"]["id"] for e in edges[1:]] + [
        t["id"] for t in rest["openTensions"]["nodes"]
    ]
    joined = await api.data('{ expertParticipation(role: "  platform ENGINEER ") { dialogueId expert firstRound } }')
    assert sorted(joined["expertParticipation"], key=lambda p: p["dialogueId"]) == sorted(
        [{"dialogueId": d, "expert": "scone", "firstRound": 0} for d in (first, second)], key=lambda p: p["dialogueId"]
    )
    assert (await api.data('{ expertParticipation(role: "Chef") { dialogueId } }'))["expertParticipation"] == []


async def test_audit_report(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    data = await api.data(
        "query($id: ID!) { auditReport(dialogueId: $id) { dialogueId ok entries head firstBroken problem } }",
        {"id": dialogue_id},
    )
    report = data["auditReport"]
    assert report["ok"] and report["entries"] == 2 and len(report["head"]) == 64
    assert report["firstBroken"] is None and report["problem"] is None


async def test_register_ref_and_tension_status(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    variables: dict[str, Any] = {"id": dialogue_id}
    ref = await api.data(
        """mutation($id: ID!) { registerRef(dialogueId: $id, source: "C0001", refType: SUPPORT,
                                                              target: "P0001") { sourceId refType target { label } } }""",
        variables,
    )
    assert ref["registerRef"] == {"sourceId": "C0001", "refType": "SUPPORT", "target": {"label": "perspective 0.1"}}
    both = await api.data(
        """mutation($id: ID!) {
        a: registerRef(dialogueId: $id, source: "C0002", refType: SUPPORT, target: "P0001") { target { refsIn { sourceId } } }
        b: registerRef(dialogueId: $id, source: "E0002", refType: SUPPORT, target: "P0001") { target { refsIn { sourceId } } }
      }""",
        variables,
    )
    assert {r["sourceId"] for r in both["a"]["target"]["refsIn"]} == {"C0001", "C0002", "T0001", "P0002"}
    assert {r["sourceId"] for r in both["b"]["target"]["refsIn"]} == {"C0001", "C0002", "E0002", "T0001", "P0002"}
    wrong = await api.query(
        """mutation($id: ID!) { registerRef(dialogueId: $id, source: "P0001", refType: RESOLVE,
                                                                target: "P0002") { sourceId } }""",
        variables,
    )
    assert wrong["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert wrong["errors"][0]["extensions"]["problems"][0]["code"] == "invalid_ref_target"

    update = """mutation($id: ID!, $t: ID!, $status: TensionStatus!) {
      updateTensionStatus(dialogueId: $id, id: $t, status: $status, actors: ["cupcake"], reason: "agreed") {
        id status history { eventType actors reason } } }"""
    moved = await api.data(update, {**variables, "t": "T0001", "status": "ADDRESSED"})
    assert moved["updateTensionStatus"]["status"] == "addressed"
    assert moved["updateTensionStatus"]["history"][-1] == {
        "eventType": "addressed",
        "actors": ["cupcake"],
        "reason": "agreed",
    }
    refused = await api.query(update, {**variables, "t": "T0001", "status": "REOPENED"})
    problem = refused["errors"][0]["extensions"]["problems"][0]
    assert refused["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert problem["code"] == "invalid_status_transition" and problem["context"] == {
        "entity": "T0001",
        "from": "addressed",
        "to": "reopened",
    }
    not_tension = await api.query(update, {**variables, "t": "P0001", "status": "RESOLVED"})
    assert not_tension["errors"][0]["extensions"]["problems"][0]["code"] == "invalid_display_id"
    missing = await api.query(update, {**variables, "t": "T0909", "status": "RESOLVED"})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_register_verdict_gate_force_and_conflict(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 10)
    register = """mutation($id: ID!, $force: Boolean!) {
      registerVerdict(dialogueId: $id, force: $force, input: {id: "v1", verdictType: FINAL, round: 0,
                      recommendation: "Ship it"}) { id forced warning } }"""
    blocked = await api.query(register, {"id": dialogue_id, "force": False})
    error = blocked["errors"][0]
    assert error["extensions"]["code"] == "CONVERGENCE_BLOCKED"
    assert any(b.startswith("velocity=") for b in error["extensions"]["blockers"])
    assert error["extensions"]["state"]["round"] == 0
    forced = await api.data(register, {"id": dialogue_id, "force": True})
    assert forced["registerVerdict"]["forced"] and forced["registerVerdict"]["warning"].startswith("FORCED CONVERGENCE")
    again = await api.query(register, {"id": dialogue_id, "force": True})
    assert again["errors"][0]["extensions"] == {"code": "CONFLICT"}
    bad_id = await api.query(
        """mutation($id: ID!) { registerVerdict(dialogueId: $id, input: {id: "a/b",
                                verdictType: INTERIM, round: 0, recommendation: "x"}) { id } }""",
        {"id": dialogue_id},
    )
    assert bad_id["errors"][0]["extensions"]["problems"][0]["code"] == "invalid_verdict_id"


async def test_start_dialogue_and_subscribe_to_its_progress(api: Api) -> None:
    start = """mutation($input: StartDialogueInput!) { startDialogue(input: $input) }"""
    pool = {"experts": [{"role": "Platform Engineer", "tier": "Core", "relevance": 0.9}]}
    refused = await api.query(start, {"input": {"title": "Caching", "question": "Cache?", "pool": {}}})
    assert refused["errors"][0]["extensions"]["problems"][0]["code"] == "invalid_pool"
    blank = await api.query(start, {"input": {"title": " ", "question": "Cache?", "pool": pool, "maxRounds": 500}})
    assert [p["field"] for p in blank["errors"][0]["extensions"]["problems"]] == ["input.title", "input.maxRounds"]
    dialogue_id = (
        await api.data(
            start, {"input": {"title": "Caching", "question": "Cache or not?", "pool": pool, "maxRounds": 3, "seed": 7}}
        )
    )["startDialogue"]
    assert dialogue_id.startswith("caching-")
    request = api.starter.requests[-1]
    assert (request.max_rounds, request.seed, request.store.tenant, request.store.principal) == (
        3,
        7,
        "local",
        "writer",
    )

    transport = WebsocketsTransport(
        url=api.url.replace("http", "ws") + "/graphql",
        headers=api.headers(),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    subscription = GraphQLRequest(
        """subscription($id: ID!) { dialogueEvents(dialogueId: $id) {
        dialogueId kind round expert data at } }""",
        variable_values={"id": dialogue_id},
    )
    async with Client(transport=transport) as session:
        events = [e["dialogueEvents"] async for e in session.subscribe(subscription)]
    assert [(e["kind"], e["round"], e["expert"], e["data"]) for e in events] == [
        (kind, round_, expert, data) for kind, round_, expert, data in RUN_SCRIPT
    ]
    assert all(e["dialogueId"] == dialogue_id and e["at"] for e in events)
    assert api.bus.subscribers(dialogue_id) == 0


async def test_subscription_authenticates_in_connection_init(api: Api) -> None:
    dialogue_id = await api.stores.dialogues.create_dialogue("Quiet", "Anything?")
    transport = WebsocketsTransport(
        url=api.url.replace("http", "ws") + "/graphql",
        init_payload={"Authorization": f"Bearer {api.tokens['reader']}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    subscription = GraphQLRequest(
        "subscription($id: ID!) { dialogueEvents(dialogueId: $id) { kind data } }", variable_values={"id": dialogue_id}
    )
    async with Client(transport=transport) as session:
        received: list[dict[str, Any]] = []

        async def listen() -> None:
            async for event in session.subscribe(subscription):
                received.append(event["dialogueEvents"])

        listening = asyncio.create_task(listen())
        async with asyncio.timeout(5):
            while api.bus.subscribers(dialogue_id) == 0:
                await asyncio.sleep(0.01)
        api.bus.publish(ProgressEvent(dialogue_id, "round_started", 0, None, {"panel": []}))
        api.bus.publish(ProgressEvent(dialogue_id, "dialogue_stopped", 0, None, {"reason": "test"}))
        await asyncio.wait_for(listening, 5)
    assert received == [
        {"kind": "round_started", "data": {"panel": []}},
        {"kind": "dialogue_stopped", "data": {"reason": "test"}},
    ]


async def test_cached_partition_is_reused_until_a_write_moves_its_version(api: Api) -> None:
    dialogue_id = await build_dialogue(api.stores.dialogues, 6)
    query = "query($id: ID!) { dialogue(id: $id) { perspectives { id refsIn { sourceId } } } }"
    first = await api.query(query, {"id": dialogue_id})
    again = await api.query(query, {"id": dialogue_id})
    assert again["data"] == first["data"]
    # GetItem (the meta's tenant) and Query, then GetItem (the version)
    assert (first["extensions"]["backendCalls"], again["extensions"]["backendCalls"]) == (2, 1)
    await api.data(
        """mutation($id: ID!) { registerRef(dialogueId: $id, source: "P0002", refType: OPPOSE, target: "P0001")
                      { sourceId } }""",
        {"id": dialogue_id},
    )
    after = await api.query(query, {"id": dialogue_id})
    assert after["extensions"]["backendCalls"] == 3  # version moved: GetItem, then a fresh load (GetItem, Query)
    p0001 = next(p for p in after["data"]["dialogue"]["perspectives"] if p["id"] == "P0001")
    assert {"sourceId": "P0002"} in p0001["refsIn"]
