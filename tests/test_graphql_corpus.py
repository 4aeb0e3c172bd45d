"""`links` over an imported corpus dialogue, served by a real uvicorn and queried over HTTP, on both backends.

The recorded rfc-0058 dialogue is imported with the rules judge; from a round-0 tension, `links(direction: IN)`
must return what later rounds did about it (the perspectives that address, refine or resolve it), each at its
least depth with one shortest path starting at the tension, exactly as DialogueGraph computes it in memory.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from concord.orchestrator.blue.importer import import_dialogue
from concord.store.graph import DialogueGraph
from concord.store.snapshot import Snapshot
from tests.conftest import CORPUS, corpus_dialogue
from tests.graphql_helpers import Api

#: Skipped at collection without the corpus, before any server or DynamoDB Local is started for it.
pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(
        not CORPUS.is_dir(), reason=f"recorded corpus not found at {CORPUS} (it ships beside the project, not in it)"
    ),
]

#: Ref types by which a later entity follows up on a tension.
FOLLOW_UPS = {"address", "resolve", "refine", "reopen"}

LINKS = """query($id: ID!, $t: ID!) { entity(dialogueId: $id, id: $t) {
  id kind round
  history { eventType round reference }
  links(direction: IN, maxDepth: 3) { depth path entity { id kind round } }
} }"""

ALL_ROUND_ZERO = """query($id: ID!) { dialogue(id: $id) {
  tensions(round: 0) { id links(direction: BOTH, maxDepth: 3) { depth path entity { id kind round } } }
} }"""


def expected_links(graph: DialogueGraph, start: str, direction: str) -> list[dict[str, Any]]:
    """What the API must answer for `start`, computed in memory from the same partition."""
    snap = graph.snapshot
    return [
        {
            "depth": link.depth,
            "path": list(link.path),
            "entity": {
                "id": link.entity_id,
                "kind": snap.entities[link.entity_id].kind.upper(),
                "round": snap.entities[link.entity_id].round,
            },
        }
        for link in graph.links(start, direction, max_depth=3)
    ]


def joined(graph: DialogueGraph, later: str, earlier: str, direction: str) -> bool:
    """True when one step of a path is a ref in the walked direction (IN: `later` refers to `earlier`)."""
    into = any(source == later for _, source in graph.refs_in(earlier))
    out = any(target == later for _, target in graph.refs_out(earlier))
    return into if direction == "in" else out if direction == "out" else into or out


def check_paths(graph: DialogueGraph, start: str, links: list[dict[str, Any]], direction: str) -> None:
    """Depths agree with paths, every path starts at `start` and follows refs, least depths, each entity once."""
    ids = [link["entity"]["id"] for link in links]
    assert len(ids) == len(set(ids)) and start not in ids
    depth_of = {link["entity"]["id"]: link["depth"] for link in links}
    for link in links:
        path = link["path"]
        assert path[0] == start and path[-1] == link["entity"]["id"]
        assert link["depth"] == len(path) - 1 >= 1
        for earlier, later in pairwise(path):
            assert joined(graph, later, earlier, direction), f"{earlier} -> {later} in {path} is not a ref"
        for step, node in enumerate(path[1:-1], start=1):
            assert depth_of[node] == step  # a prefix of a shortest path is a shortest path
    assert [link["depth"] for link in links] == sorted(link["depth"] for link in links)  # breadth first


def most_followed_round_zero_tension(snap: Snapshot, graph: DialogueGraph) -> str:
    """The round-0 tension that later rounds address, refine or resolve most often."""

    def follow_ups(tension_id: str) -> int:
        return sum(
            1
            for ref_type, source in graph.refs_in(tension_id)
            if ref_type in FOLLOW_UPS and snap.entities[source].round > 0
        )

    tensions = sorted(e.id for e in snap.entities.values() if e.kind == "tension" and e.round == 0)
    assert tensions, "the imported dialogue has no round-0 tension"
    best = max(tensions, key=lambda t: (follow_ups(t), t))
    assert follow_ups(best) > 0, "no later round follows up on any round-0 tension"
    return best


async def test_links_from_a_round_zero_tension_of_an_imported_corpus_dialogue(api: Api) -> None:
    path = corpus_dialogue("rfc-0058")
    store = api.stores.dialogues
    result = await import_dialogue(store, path)
    assert result.status == "imported" and len(result.rounds) >= 3
    snap = await store.load_partition(result.dialogue_id)
    graph = DialogueGraph(snap)
    tension = most_followed_round_zero_tension(snap, graph)

    body = await api.query(LINKS, {"id": result.dialogue_id, "t": tension})
    assert "errors" not in body, body["errors"]
    entity = body["data"]["entity"]
    assert (entity["id"], entity["kind"], entity["round"]) == (tension, "TENSION", 0)
    links = entity["links"]
    print(f"\n{tension} ({snap.entities[tension].label}) in {result.dialogue_id}:")
    for link in links:
        reached = link["entity"]
        print(f"  depth {link['depth']}  {' <- '.join(link['path'])}  ({reached['kind']}, round {reached['round']})")

    assert links == expected_links(graph, tension, "in")
    check_paths(graph, tension, links, "in")
    assert all(link["entity"]["round"] >= 1 for link in links)  # only later rounds follow up on a round-0 tension
    # Depth 1: exactly the later entities that refer to the tension, each by path [tension, entity].
    first = {link["entity"]["id"]: link["path"] for link in links if link["depth"] == 1}
    assert first == {source: [tension, source] for _, source in graph.refs_in(tension)}
    assert {ref_type for ref_type, _ in graph.refs_in(tension)} & {"address", "resolve", "refine"}
    # Deeper ones reach the tension through a depth-1 entity (this corpus chain may not go deeper than 1).
    assert all(link["path"][1] in first for link in links)
    # The chain is the one its history tells: every entity that addressed or resolved it is linked.
    history = entity["history"]
    assert history[0]["eventType"] == "created"
    referenced = {event["reference"] for event in history if event["reference"]}
    assert referenced and referenced <= set(first)
    if snap.entities[tension].status == "resolved":
        assert "resolved" in {event["eventType"] for event in history}

    # Every round-0 tension in one request (one partition load), walking both ways.
    every = await api.query(ALL_ROUND_ZERO, {"id": result.dialogue_id})
    assert "errors" not in every, every["errors"]
    assert every["extensions"]["backendCalls"] == 1
    tensions = every["data"]["dialogue"]["tensions"]
    assert [t["id"] for t in tensions] == sorted(
        e.id for e in snap.entities.values() if e.kind == "tension" and e.round == 0
    )
    for item in tensions:
        assert item["links"] == expected_links(graph, item["id"], "both")
        check_paths(graph, item["id"], item["links"], "both")
    if not graph.refs_out(tension):  # nothing leaves it: both ways is the same walk as inwards
        assert next(t for t in tensions if t["id"] == tension)["links"] == links
