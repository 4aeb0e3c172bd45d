"""Graduated panel rotation between rounds."""

from __future__ import annotations

from statistics import median

from concord.orchestrator.panel.panels import Panel, PanelSpec, evolve_panel
from concord.orchestrator.panel.pools import Pool
from concord.store.model import UNRESOLVED_TENSION
from concord.store.snapshot import Snapshot

#: A panel never shrinks below this many experts (or the pool size, if smaller).
MIN_PANEL = 3


def next_panel(pool: Pool, snapshot: Snapshot, previous: Panel, used_names: set[str]) -> Panel:
    """Keep high scorers and owners of open tensions; bring pool experts in for uncovered tensions.

    An expert absent two rounds running is replaced by a pool expert; one absent only last round stays (it
    has no score to judge it by). High scorer = last-round total at or above the panel median. A tension is uncovered when none of its contributors stays; each such tension
    brings in the most relevant pool expert not seated before. The panel may shrink, never below
    MIN_PANEL while the pool can fill it.
    """
    round_ = previous.round
    last = snapshot.rounds[round_]
    totals = {name: score.total for name, score in last.scores.items()}
    cut = median(totals.values()) if totals else 0
    open_tensions = [t for t in snapshot.of_kind("tension") if t.status in UNRESOLVED_TENSION]
    owners = {c for t in open_tensions for c in t.contributors}
    before = snapshot.rounds.get(round_ - 1)
    gone = set(last.absent) & set(before.absent if before else ())
    replaced = [m for m in previous.members if m.slug in gone]
    keep = [
        m
        for m in previous.members
        if m.slug not in gone and (m.slug in last.absent or m.slug in owners or totals.get(m.slug, 0) >= cut)
    ]
    kept_slugs = {m.slug for m in keep}
    uncovered = [t for t in open_tensions if not set(t.contributors) & kept_slugs]
    seated_roles = {m.role.casefold() for m in previous.members} | _earlier_roles(snapshot)
    newcomers = [e for e in sorted(pool.experts, key=lambda e: -e.relevance) if e.role.casefold() not in seated_roles]
    fresh = len(uncovered) + len(replaced)
    wanted = fresh + max(0, min(MIN_PANEL, len(pool.experts)) - len(keep) - fresh)
    specs = [PanelSpec(m.name, m.role, "retained", m.tier, None) for m in keep]
    specs += [PanelSpec(None, e.role, "pool") for e in newcomers[:wanted]]
    if not specs:
        specs = [PanelSpec(m.name, m.role, "retained", m.tier, None) for m in previous.members]
    return evolve_panel(pool, round_ + 1, specs, used_names=used_names)


def _earlier_roles(snapshot: Snapshot) -> set[str]:
    return {seat.role.casefold() for rnd in snapshot.rounds.values() for seat in rnd.panel}
