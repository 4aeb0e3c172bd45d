"""Validation problems shared by single writes and round batches."""

from __future__ import annotations

from concord.store.errors import Problem
from concord.store.ids import KIND_BY_PREFIX, is_display_id
from concord.store.rules import REF_TYPES, TRANSITIONS, ref_target_problem


def transition_problem(field: str, kind: str, entity_id: str, current: str, new: str) -> Problem:
    allowed = TRANSITIONS.get(kind, {}).get(current, ())
    return Problem(
        "invalid_status_transition",
        f"{entity_id} is {current}; a {kind} cannot move from {current} to {new}",
        field,
        f"allowed from {current}: {', '.join(allowed) or 'nothing (final status)'}",
        {"entity": entity_id, "from": current, "to": new},
    )


def ref_shape_problems(field: str, source: str, ref_type: str, target: str) -> list[Problem]:
    problems: list[Problem] = []
    if ref_type not in REF_TYPES:
        problems.append(
            Problem(
                "invalid_ref_type",
                f"unknown ref type {ref_type!r}",
                f"{field}.ref_type",
                f"one of {', '.join(REF_TYPES)}",
            )
        )
    for part, value in (("source", source), ("target", target)):
        if not is_display_id(value):
            problems.append(
                Problem(
                    "invalid_display_id",
                    f"{value!r} is not a display id",
                    f"{field}.{part}",
                    "use a global id like P0102, or a local id of this batch",
                )
            )
    return problems


def ref_rule_problems(field: str, source: str, ref_type: str, target: str) -> list[Problem]:
    if source == target:
        return [
            Problem(
                "invalid_ref_target", f"{source} cannot refer to itself", f"{field}.target", "point at another entity"
            )
        ]
    reason = ref_target_problem(ref_type, KIND_BY_PREFIX[source[0]], KIND_BY_PREFIX[target[0]])
    if reason:
        return [
            Problem(
                "invalid_ref_target",
                reason,
                f"{field}.target",
                "choose a target of the right kind or another ref type",
                {"source": source, "target": target, "ref_type": ref_type},
            )
        ]
    return []
