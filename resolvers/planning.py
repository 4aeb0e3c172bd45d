"""Reads a request's selection set to choose between narrow access patterns and one partition load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

#: Dialogue fields listing entities, by kind.
ENTITY_LISTS = {
    "perspectives": "perspective",
    "tensions": "tension",
    "recommendations": "recommendation",
    "evidence": "evidence",
    "claims": "claim",
}
#: Entity fields that follow refs or events, which one partition load serves for every entity at once.
GRAPH_FIELDS = frozenset({"refsOut", "refsIn", "history", "links", "lineage"})
#: Dialogue fields served by one narrow pattern each (AP8); `scoreboard` is computed from the rounds.
NARROW_SLICES = {"rounds": "rounds", "scoreboard": "rounds", "experts": "experts", "verdicts": "verdicts"}


def fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, looking through inline fragments and fragment spreads."""
    for selection in selections:
        if isinstance(selection, (InlineFragment, FragmentSpread)):
            yield from fields(selection.selections)
        else:
            yield selection


def dialogue_needs_partition(selections: Iterable[Selection]) -> bool:
    """True when fields under a dialogue follow refs, links, history, events or verdict context,
    or need more than one slice (several kinds, rounds and experts, …)."""
    slices: set[object] = set()
    for field in fields(selections):
        if field.name in ENTITY_LISTS:
            if entities_need_partition(field.selections):
                return True
            slices.add((field.name, field.arguments.get("round")))
        elif field.name == "verdicts":
            if any(sub.name == "context" for sub in fields(field.selections)):
                return True
            slices.add("verdicts")
        elif field.name in NARROW_SLICES:
            slices.add(NARROW_SLICES[field.name])
        elif field.name == "events":
            return True
    return len(slices) > 1


def entities_need_partition(selections: Iterable[Selection]) -> bool:
    """True when fields under a list of entities follow refs or events."""
    return any(field.name in GRAPH_FIELDS for field in fields(selections))


def entity_needs_partition(selections: Iterable[Selection]) -> bool:
    """True when one entity's fields need links, lineage, the entities at the ends of its refs,
    or more than one of refsOut, refsIn and history (AP5-AP7 otherwise)."""
    narrow = set()
    for field in fields(selections):
        if field.name in ("links", "lineage"):
            return True
        if field.name in ("refsOut", "refsIn", "history"):
            if any(sub.name in ("source", "target") for sub in fields(field.selections)):
                return True
            narrow.add(field.name)
    return len(narrow) > 1


def below(selected: Iterable[Selection], *path: str) -> list[Selection]:
    """The selections under a resolver's field (all its merged nodes), following sub-fields named in `path`."""
    found = [selection for field in fields(selected) for selection in field.selections]
    for name in path:
        found = [selection for field in fields(found) if field.name == name for selection in field.selections]
    return found


def below_nodes(selected: Iterable[Selection]) -> list[Selection]:
    """The selections under a connection's nodes, asked for as `nodes` or as `edges { node }`."""
    return below(selected, "nodes") + below(selected, "edges", "node")
