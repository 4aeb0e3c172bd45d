"""DialogueGraph: refs, transitive links, lineage and verdict context over one Snapshot."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Literal

from .model import Entity, Ref, Verdict
from .snapshot import Snapshot

Direction = Literal["out", "in", "both"]


@dataclass(frozen=True)
class Link:
    """An entity reachable from a start entity, its depth and one shortest path of ids to it."""

    entity_id: str
    depth: int
    path: tuple[str, ...]


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

    @classmethod
    def from_refs(cls, refs: Iterable[Ref], snapshot: Snapshot) -> "DialogueGraph":
        """A graph over explicit refs (for tests and benchmarks)."""
        snapshot.refs = list(refs)
        return cls(snapshot)

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
        if direction not in ("out", "in", "both"):
            raise ValueError(f"direction must be out, in or both, not {direction!r}")
        wanted = frozenset(ref_types) if ref_types is not None else None
        tables = [self.out] if direction == "out" else [self.into] if direction == "in" else [self.out, self.into]
        parent: dict[str, str | None] = {start: None}
        depth_of = {start: 0}
        order: list[str] = []
        queue = deque([start])
        while queue:
            node = queue.popleft()
            depth = depth_of[node]
            if max_depth is not None and depth >= max_depth:
                continue
            for table in tables:
                for ref_type, neighbour in table.get(node, ()):
                    if neighbour in parent or (wanted is not None and ref_type not in wanted):
                        continue
                    parent[neighbour] = node
                    depth_of[neighbour] = depth + 1
                    order.append(neighbour)
                    queue.append(neighbour)
        return [Link(node, depth_of[node], self._path(parent, node)) for node in order]

    @staticmethod
    def _path(parent: dict[str, str | None], node: str) -> tuple[str, ...]:
        path = [node]
        while (previous := parent[path[-1]]) is not None:
            path.append(previous)
        return tuple(reversed(path))

    def lineage(self, entity_id: str) -> list[str]:
        """The refine chain behind an entity, newest first: P0201 -> P0101 -> P0001."""
        chain = [entity_id]
        seen = {entity_id}
        while True:
            older = [target for ref_type, target in self.out.get(chain[-1], ()) if ref_type == "refine" and target not in seen]
            if not older:
                return chain
            chain.append(older[0])
            seen.add(older[0])

    def verdict_context(self, verdict: Verdict) -> VerdictContext:
        """Adopted recommendations, resolved tensions, and evidence/claims supporting them, as of the verdict."""
        entities = self.snapshot.entities
        adopted = sorted({e.id for e in entities.values() if e.adopted_in_verdict == verdict.id} | set(verdict.adopted))
        resolved = sorted(
            eid for eid in entities
            if eid.startswith("T") and any(
                ev.event_type == "resolved" and (ev.reference == verdict.id or ev.created_at <= verdict.created_at)
                for ev in self.snapshot.events_of(eid)
            ) and entities[eid].status == "resolved"
        )
        reached: set[str] = set()
        for root in adopted + resolved:
            for link in self.links(root, "both", ("support", "depend", "address", "resolve")):
                reached.add(link.entity_id)
        in_time = [eid for eid in sorted(reached) if entities[eid].created_at <= verdict.created_at or not verdict.created_at]
        return VerdictContext(
            adopted=adopted,
            resolved_tensions=resolved,
            key_evidence=[eid for eid in in_time if eid.startswith("E")],
            key_claims=[eid for eid in in_time if eid.startswith("C")],
        )
