"""Domain rules: ref endpoint types, the status transition matrices, and the convergence gate."""

from __future__ import annotations

import math
from typing import Any

from concord.store.errors import InvalidArgument
from concord.store.model import Round

#: Share of the seated panel that must answer for a round to count toward convergence.
DEFAULT_QUORUM = 2 / 3

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


def gate(last: Round, quorum: float = DEFAULT_QUORUM) -> tuple[bool, list[str], dict[str, Any]]:
    """Converged iff velocity == 0 and every seated expert signalled converge in a quorate round.

    Also returns the blockers and the state. Absent experts count as not signalled and are named; a round in
    which fewer than `quorum` of the seated panel answered does not count toward convergence.
    """
    check_quorum(quorum)
    seated = len(last.seated)
    needed = math.ceil(quorum * seated)
    quorate = seated > 0 and last.answered >= needed
    names = {seat.slug: seat.name for seat in last.panel}
    absent = [names.get(slug, slug) for slug in sorted(last.absent)]
    state = {
        "round": last.number,
        "velocity": last.velocity,
        "open_tensions": last.open_tensions,
        "new_perspectives": last.new_perspectives,
        "converge_percent": last.converge_percent,
        "converge_signals": last.signals,
        "answered": last.answered,
        "panel_size": seated,
        "absent": absent,
        "quorum": quorum,
        "quorate": quorate,
    }
    blockers = []
    if last.velocity != 0:
        blockers.append(
            f"velocity={last.velocity} (open_tensions={last.open_tensions}, new_perspectives={last.new_perspectives})"
        )
    if seated == 0 or last.signals < seated:
        blockers.append(f"converge_percent={last.converge_percent:.0f}% ({last.signals}/{seated})")
    if not quorate:
        blockers.append(f"quorum not met: {last.answered}/{seated} answered, {needed} needed")
    if absent:
        blockers.append(f"absent (not signalled): {', '.join(absent)}")
    return not blockers, blockers, state


def check_quorum(quorum: float) -> None:
    """Refuse a quorum that is not a share of the panel in (0, 1]."""
    if not 0 < quorum <= 1:
        raise InvalidArgument(f"quorum must be a share of the seated panel in (0, 1], not {quorum}")
