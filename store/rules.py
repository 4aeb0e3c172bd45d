"""Domain rules: ref endpoint types, the status transition matrices, and the convergence gate."""

from __future__ import annotations

from typing import Any

from concord.store.model import Round

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


def gate(last: Round) -> tuple[bool, list[str], dict[str, Any]]:
    """Converged iff velocity == 0 and every answering expert signalled converge; also the blockers and the state."""
    state = {
        "round": last.number,
        "velocity": last.velocity,
        "open_tensions": last.open_tensions,
        "new_perspectives": last.new_perspectives,
        "converge_percent": last.converge_percent,
        "converge_signals": last.signals,
        "answered": last.answered,
    }
    blockers = []
    if last.velocity != 0:
        blockers.append(
            f"velocity={last.velocity} (open_tensions={last.open_tensions}, new_perspectives={last.new_perspectives})"
        )
    if last.answered == 0 or last.signals < last.answered:
        blockers.append(f"converge_percent={last.converge_percent:.0f}% ({last.signals}/{last.answered})")
    return not blockers, blockers, state
