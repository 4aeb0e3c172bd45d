"""DialogueGraph: refs, transitive links, lineage and verdict context over one Snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from concord.store.errors import InvalidArgument
from concord.store.model import Entity, Verdict
from concord.store.snapshot import Snapshot

Direction = Literal["out", "in", "both"]


class Link:
    """An entity reachable from a start entity, its depth, and one shortest path of ids to it."""

    __slots__ = ("entity_id", "depth", "_parents")

    def __init__(self, entity_id: str, depth: int, parents: dict[str, str | None]) -> None:
        self.entity_id = entity_id
        self.depth = depth
        self._parents = parents

    @property
    def path(self) -> tuple[str, ...]:
        """Ids from the start entity to this one (built on demand)."""
        path = [self.entity_id]
        while (previous := self._parents[path[-1]]) is not None:
            path.append(previous)
        return tuple(reversed(path))

    def __repr__(self) -> str:
        return f"Link({self.entity_id!r}, depth={self.depth}, path={self.path!r})"


@dataclass
class VerdictContext:
    """What a verdict rests on, derived at read time."""

    adopted: list[str]
    resolved_tensions: list[str]
    key_evidence: list[str]
    key_claims: list[str]


class DialogueGraph:
    """Adjacency lists built once from a snapshot; every traversal is in memory."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.out: dict[str, list[tuple[str, str]]] = {eid: [] for eid in snapshot.entities}
        self.into: dict[str, list[tuple[str, str]]] = {eid: [] for eid in snapshot.entities}
        for ref in snapshot.refs:
            self.out.setdefault(ref.source, []).append((ref.ref_type, ref.target))
            self.into.setdefault(ref.target, []).append((ref.ref_type, ref.source))
        self._adjacency_cache: dict[tuple[str, frozenset[str] | None], dict[str, list[str]]] = {}

    def entity(self, entity_id: str) -> Entity | None:
        """The entity with this id, if any."""
        return self.snapshot.entities.get(entity_id)

    def refs_out(self, entity_id: str, ref_type: str | None = None) -> list[tuple[str, str]]:
        """(ref_type, target) pairs leaving an entity."""
        return [edge for edge in self.out.get(entity_id, ()) if ref_type is None or edge[0] == ref_type]

    def refs_in(self, entity_id: str, ref_type: str | None = None) -> list[tuple[str, str]]:
        """(ref_type, source) pairs arriving at an entity."""
        return [edge for edge in self.into.get(entity_id, ()) if ref_type is None or edge[0] == ref_type]

    def links(
        self,
        start: str,
        direction: Direction = "out",
        ref_types: Iterable[str] | None = None,
        max_depth: int | None = None,
    ) -> list[Link]:
        """Breadth-first reachability: each entity once, at its least depth, with one shortest path."""
        adjacency = self._adjacency(direction, frozenset(ref_types) if ref_types is not None else None)
        parents: dict[str, str | None] = {start: None}
        links: list[Link] = []
        frontier = [start]
        depth = 0
        while frontier and (max_depth is None or depth < max_depth):
            depth += 1
            next_frontier = []
            for node in frontier:
                for neighbour in adjacency.get(node, ()):
                    if neighbour not in parents:
                        parents[neighbour] = node
                        next_frontier.append(neighbour)
                        links.append(Link(neighbour, depth, parents))
            frontier = next_frontier
        return links

    def _adjacency(self, direction: Direction, wanted: frozenset[str] | None) -> dict[str, list[str]]:
        """Neighbour lists for one direction and ref-type filter, built once and cached."""
        if direction not in ("out", "in", "both"):
            raise InvalidArgument(f"direction must be out, in or both, not {direction!r}")
        key = (direction, wanted)
        if key not in self._adjacency_cache:
            tables = [self.out] if direction == "out" else [self.into] if direction == "in" else [self.out, self.into]
            adjacency: dict[str, list[str]] = {}
            for table in tables:
                for node, edges in table.items():
                    adjacency.setdefault(node, []).extend(
                        target for ref_type, target in edges if wanted is None or ref_type in wanted
                    )
            self._adjacency_cache[key] = adjacency
        return self._adjacency_cache[key]

    def lineage(self, entity_id: str) -> list[str]:
        """The refine chain behind an entity, newest first: P0201 -> P0101 -> P0001."""
        chain = [entity_id]
        seen = {entity_id}
        while True:
            older = [
                target
                for ref_type, target in self.out.get(chain[-1], ())
                if ref_type == "refine" and target not in seen
            ]
            if not older:
                return chain
            chain.append(older[0])
            seen.add(older[0])

    def verdict_context(self, verdict: Verdict) -> VerdictContext:
        """Adopted recommendations, resolved tensions, and evidence/claims supporting them, as of the verdict."""
        entities = self.snapshot.entities
        adopted = sorted({e.id for e in entities.values() if e.adopted_in_verdict == verdict.id} | set(verdict.adopted))
        resolved = sorted(
            eid
            for eid in entities
            if eid.startswith("T")
            and any(
                ev.event_type == "resolved" and (ev.reference == verdict.id or ev.created_at <= verdict.created_at)
                for ev in self.snapshot.events_of(eid)
            )
            and entities[eid].status == "resolved"
        )
        reached: set[str] = set()
        for root in adopted + resolved:
            for link in self.links(root, "both", ("support", "depend", "address", "resolve")):
                reached.add(link.entity_id)
        in_time = [
            eid for eid in sorted(reached) if entities[eid].created_at <= verdict.created_at or not verdict.created_at
        ]
        return VerdictContext(
            adopted=adopted,
            resolved_tensions=resolved,
            key_evidence=[eid for eid in in_time if eid.startswith("E")],
            key_claims=[eid for eid in in_time if eid.startswith("C")],
        )
