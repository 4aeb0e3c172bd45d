"""DialogueGraph.links over a large synthetic partition vs a bare dict-of-lists BFS of the same edges."""

from __future__ import annotations

import random
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_of  # noqa: E402
from concord.store.graph import DialogueGraph  # noqa: E402
from concord.store.model import Dialogue, Perspective, Ref  # noqa: E402
from concord.store.rules import REF_TYPES  # noqa: E402
from concord.store.snapshot import Snapshot  # noqa: E402

ENTITIES = 10_000
REFS = 50_000
REPEATS = 5


def synthetic_snapshot(seed: int = 7) -> Snapshot:
    """10,000 perspectives (ids beyond the display-id range are fine for a pure graph) and 50,000 refs with cycles."""
    rng = random.Random(seed)
    ids = [f"P{n:06d}" for n in range(ENTITIES)]
    snap = Snapshot(Dialogue("bench", "local", "bench", "bench?"))
    snap.entities = {eid: Perspective(eid, 0, n, "l", "c") for n, eid in enumerate(ids)}
    refs = [Ref(ids[n], "support", ids[(n + 1) % ENTITIES]) for n in range(ENTITIES)]  # one big cycle
    while len(refs) < REFS:
        refs.append(Ref(rng.choice(ids), rng.choice(REF_TYPES), rng.choice(ids)))
    snap.refs = refs
    return snap


def bare_bfs(adjacency: dict[str, list[str]], start: str) -> dict[str, int]:
    """Plain breadth-first search: node -> depth."""
    depth = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for neighbour in adjacency.get(node, ()):
            if neighbour not in depth:
                depth[neighbour] = depth[node] + 1
                queue.append(neighbour)
    return depth


def main() -> None:
    snap = synthetic_snapshot()
    graph = DialogueGraph(snap)
    adjacency: dict[str, list[str]] = {}
    for ref in snap.refs:
        adjacency.setdefault(ref.source, []).append(ref.target)
        adjacency.setdefault(ref.target, []).append(ref.source)
    start = "P000000"
    links = graph.links(start, "both", None, None)
    bare = bare_bfs(adjacency, start)
    assert len(links) == len(bare) - 1 and all(bare[link.entity_id] == link.depth for link in links)
    concord = best_of(lambda: graph.links(start, "both", None, None))
    baseline = best_of(lambda: bare_bfs(adjacency, start))
    cold = best_of(lambda: DialogueGraph(snap).links(start, "both", None, None))
    ratio = concord / baseline
    print(f"entities={ENTITIES} refs={REFS} reachable={len(links)}")
    print(f"links(both, unbounded)  {concord * 1000:8.2f} ms")
    print(f"bare dict-of-lists BFS  {baseline * 1000:8.2f} ms")
    print(f"graph build + links     {cold * 1000:8.2f} ms (first traversal of a fresh graph)")
    print(
        f"BENCH graph ratio={ratio:.2f} target=<=3 links_ms={concord * 1000:.2f} bfs_ms={baseline * 1000:.2f} "
        f"cold_ratio={cold / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
