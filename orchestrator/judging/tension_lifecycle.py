"""Tension lifecycle (DESIGN §6 authority rule): the acts of one round applied to the tensions before it.

Acts are applied in the order the experts answered:
- RESOLVED, RE:RESOLVE or CONCESSION by the tension's author → resolved (the author settles or
  withdraws it); by anyone else → addressed.
- REFINEMENT or RE:ADDRESS on a tension → addressed (from open or reopened).
- RE:REOPEN → a resolved tension is reopened, an addressed one open again.
- Confirmation: a tension that was addressed before this round becomes resolved when no expert
  re-opens it or opposes it (`[RE:OPPOSE]`) in this round; every addressed tension becomes
  resolved when the whole panel signals `[MOVE:CONVERGE]` (every seated expert answered and signalled:
  with anyone absent, the few who answered cannot close the others' tensions this way).
Every change must also be allowed by the store's transition matrix (`store.rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from concord.store.model import UNRESOLVED_TENSION, StatusChange
from concord.store.rules import transition_allowed

AUTHORITY_RULE = (
    "Authority: a RESOLVED from a tension's author resolves it; anyone else's marks it addressed, "
    "and it is resolved once a round passes with no one re-opening or opposing it, or the whole panel "
    "signals converge."
)
_ACT_WORDS = {"resolve": "resolved", "concede": "conceded", "address": "addressed", "reopen": "re-opened"}


@dataclass
class Act:
    """One expert acting on one existing tension: `act` is resolve, concede, address, reopen or dispute."""

    tension: str
    actor: str
    act: str
    line: int
    source: str | None


def next_status(current: str, act: str, is_author: bool) -> str | None:
    """The status one act moves a tension to, or None when it changes nothing."""
    if act == "reopen":
        return {"resolved": "reopened", "addressed": "open"}.get(current)
    if act in ("resolve", "concede") and is_author:
        return "resolved" if current in UNRESOLVED_TENSION else None
    if act in ("resolve", "concede", "address"):
        return "addressed" if current in ("open", "reopened") else None
    return None


def apply_acts(
    before: Mapping[str, str],
    acts: Sequence[Act],
    *,
    round: int,
    answered: Sequence[str],
    signals: Collection[str],
    seated: Collection[str],
    author_of: Callable[[str], str | None],
) -> tuple[list[StatusChange], dict[str, str]]:
    """The status changes of one round (acts in answer order, then confirmations) and every tension's new status."""
    statuses = dict(before)
    changes: list[StatusChange] = []

    def move(tension: str, status: str, actors: list[str], reason: str, source: str | None = None) -> None:
        if status != statuses[tension] and transition_allowed("tension", statuses[tension], status):
            changes.append(StatusChange(tension, status, actors, source, reason))
            statuses[tension] = status

    order = {slug: n for n, slug in enumerate(answered)}
    for act in sorted(acts, key=lambda a: order[a.actor]):
        is_author = author_of(act.tension) == act.actor
        status = next_status(statuses[act.tension], act.act, is_author)
        if status:
            who = f"{act.actor}, its author" if is_author else act.actor
            move(act.tension, status, [act.actor], f"{_ACT_WORDS[act.act]} by {who} (line {act.line})", act.source)
    disputed = {a.tension for a in acts if a.act in ("reopen", "dispute")}
    for tension, status in before.items():
        if status == "addressed" and tension not in disputed:
            move(tension, "resolved", [], f"confirmed: no one re-opened or opposed it in round {round}")
    if answered and set(answered) >= set(seated) and set(signals) >= set(seated):
        for tension, status in list(statuses.items()):
            if status == "addressed":
                move(tension, "resolved", [], f"confirmed: the whole panel signalled converge in round {round}")
    return changes, statuses
