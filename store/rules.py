"""Domain rules: ref endpoint types and the status transition matrices."""

from __future__ import annotations

REF_TYPES = ("support", "oppose", "refine", "address", "resolve", "reopen", "question", "depend")
TENSION_ONLY_REFS = ("address", "resolve", "reopen")

#: Allowed status transitions per entity kind; anything else is `invalid_status_transition`.
TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "tension": {
        "open": ("addressed", "resolved"),
        "addressed": ("resolved", "open"),
        "resolved": ("reopened",),
        "reopened": ("addressed", "resolved"),
    },
    "perspective": {
        "open": ("refined", "conceded", "merged"),
        "refined": ("conceded", "merged"),
        "conceded": (),
        "merged": (),
    },
    "recommendation": {
        "proposed": ("amended", "adopted", "rejected"),
        "amended": ("amended", "adopted", "rejected"),
        "adopted": (),
        "rejected": (),
    },
    "evidence": {
        "cited": ("challenged", "confirmed", "refuted"),
        "challenged": ("confirmed", "refuted"),
        "confirmed": ("challenged",),
        "refuted": (),
    },
    "claim": {
        "asserted": ("supported", "opposed", "adopted", "withdrawn"),
        "supported": ("opposed", "adopted", "withdrawn"),
        "opposed": ("supported", "adopted", "withdrawn"),
        "adopted": (),
        "withdrawn": (),
    },
}


def ref_target_problem(ref_type: str, source_kind: str, target_kind: str) -> str | None:
    """Why a ref of this type may not join these kinds, or None when it may."""
    if ref_type == "refine" and source_kind != target_kind:
        return f"refine joins entities of the same kind, not {source_kind} -> {target_kind}"
    if ref_type in TENSION_ONLY_REFS and target_kind != "tension":
        return f"{ref_type} must target a tension, not a {target_kind}"
    return None


def transition_allowed(kind: str, current: str, new: str) -> bool:
    """True when `kind` may move from `current` to `new`."""
    return new in TRANSITIONS.get(kind, {}).get(current, ())
