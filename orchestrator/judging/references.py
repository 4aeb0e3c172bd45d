"""Resolve marker references to global display ids (protocol.md §3.2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from concord.orchestrator.judging.markers import Marker
from concord.orchestrator.judging.written_ids import Reference, parse_reference
from concord.store.ids import is_display_id

# Identity of a reference for alias matching: the display id, or (expert, round, kind, number).
_AliasKey = tuple[str | None, int | None, str, int] | str


@dataclass(frozen=True)
class IdEntry:
    """One global id and the local id its author wrote for it."""

    global_id: str
    author: str
    round: int
    local_id: str | None


class IdRegistry:
    """Global ids known in a dialogue, with who wrote them under which local id."""

    def __init__(self) -> None:
        self._entries: dict[str, IdEntry] = {}
        self._by_local: dict[tuple[str, str], list[IdEntry]] = {}
        self._aliases: dict[_AliasKey, str] = {}

    def add(
        self,
        global_id: str,
        *,
        author: str,
        round: int,
        local_id: str | None,
        aliases: Iterable[str] = (),
    ) -> None:
        """Register a global id written by `author` in `round` under `local_id`."""
        if not is_display_id(global_id):
            raise ValueError(f"{global_id!r} is not a display id like T0103")
        entry = IdEntry(global_id, author.lower(), round, local_id)
        self._entries[global_id] = entry
        # Ids like T-NEW cannot be named by a reference, so only id-shaped ones are indexed.
        local = parse_reference(local_id) if local_id else None
        if local is not None:
            self._by_local.setdefault((entry.author, f"{local.kind}{local.number}"), []).append(entry)
        for alias in aliases:
            self.add_alias(global_id, alias)

    def add_alias(self, global_id: str, alias: str) -> None:
        """Record another name for a known id, such as the recorded judge's `T01` or `MACARON-T01`."""
        if global_id not in self._entries:
            raise ValueError(f"cannot alias {alias!r} to unknown id {global_id!r}")
        ref = parse_reference(alias)
        if ref is None:
            raise ValueError(f"alias {alias!r} is not shaped like an id (T01, MACARON-T01, ...)")
        self._aliases[_alias_key(ref)] = global_id

    def resolve(self, ref: Reference, *, author: str, round: int) -> str | None:
        """Return the global id `ref` means when `author` writes it in `round`, or None.

        Tried in order: the exact id (a display id, or a judge-published id recorded as an
        alias, which is what experts read in tensions.md); the namespaced form
        EXPERT[-| Rn-]Tnn; the author's own local id from an earlier round.
        """
        if ref.is_global and ref.raw in self._entries:
            return ref.raw
        aliased = self._aliases.get(_alias_key(ref))
        if aliased is not None or ref.is_global:
            return aliased
        owner = ref.expert or author.lower()
        return self._local(owner, ref, before=round)

    def __contains__(self, global_id: object) -> bool:
        """Tell whether a display id is registered."""
        return global_id in self._entries

    def _local(self, owner: str, ref: Reference, *, before: int) -> str | None:
        """Find `owner`'s entry for the local id in `ref`: its given round, else the latest earlier one."""
        candidates = self._by_local.get((owner, f"{ref.kind}{ref.number}"), [])
        if ref.round is not None:
            matching = [e for e in candidates if e.round == ref.round]
        else:
            matching = [e for e in candidates if e.round < before]
        if not matching:
            return None
        return max(matching, key=lambda e: e.round).global_id


def resolve_all(marker: Marker, *, author: str, round: int, registry: IdRegistry) -> tuple[list[str], list[str]]:
    """Resolve every target of a marker; return (global ids, warnings for the ones that failed)."""
    resolved: list[str] = []
    warnings: list[str] = []
    for ref in marker.targets:
        global_id = registry.resolve(ref, author=author, round=round)
        if global_id is None:
            warnings.append(
                f"Reference {ref.raw!r} in the {marker.kind} marker on line {marker.line} "
                f"(written by {author} in round {round}) matches no known id."
            )
        elif global_id not in resolved:
            resolved.append(global_id)
    return resolved, warnings


def _alias_key(ref: Reference) -> _AliasKey:
    """Identity of a reference for alias lookups."""
    if ref.is_global:
        return ref.raw
    return (ref.expert, ref.round, ref.kind, ref.number)
