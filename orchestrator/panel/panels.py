"""Panels: round-0 sampling, graduated evolution, panel.json reading and writing, stability checks."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from concord.orchestrator.panel.pools import (
    PASTRY_NAMES,
    Pool,
    draw_experts,
    is_valid_pastry_name,
    normalise_role,
    normalise_tier,
    pastry_name,
    slug,
)
from concord.store.errors import BadInput
from concord.store.model import PanelSeat

EMOJI = "🧁"
SOURCES = ("retained", "pool", "created")
DEFAULT_PANEL_CAP = 12
CREATED_RELEVANCE = 0.75
UNMATCHED_RELEVANCE = 0.70
UNMATCHED_TIER = "Adjacent"
_ROUND_DIR = re.compile(r"round-([0-9]+)")
_IDENTITY = re.compile(
    r"^You are (?P<name>\w+)\W[^,\n]*,\s+(?:an?\s+)?(?P<role>[^\n]+)\s+in an?\s+\S+\s+dialogue", re.MULTILINE
)
_FOCUS = re.compile(r"^\*\*Your Focus\*\*:\s*(?P<focus>[^\n]+)", re.MULTILINE)


class PanelError(BadInput):
    """A panel that cannot be built, evolved or read."""


class SourceCounts(NamedTuple):
    """How many panel members were retained, drawn from the pool, or created."""

    retained: int
    from_pool: int
    created: int


@dataclass(frozen=True)
class Panel:
    """The experts seated for one round."""

    round: int
    members: tuple[PanelSeat, ...]

    def names(self) -> list[str]:
        """Return the member names in panel order."""
        return [member.name for member in self.members]

    @property
    def counts(self) -> SourceCounts:
        """Return the number of members per source."""
        sources = [member.source for member in self.members]
        return SourceCounts(sources.count("retained"), sources.count("pool"), sources.count("created"))

    def to_json(self) -> dict[str, Any]:
        """Return the panel in the agents-plus-history panel.json shape."""
        agents, experts = [], []
        for m in self.members:
            agent: dict[str, Any] = {
                "emoji": EMOJI,
                "name": m.name,
                "relevance": m.relevance,
                "role": m.role,
                "tier": m.tier,
            }
            spec: dict[str, Any] = {"name": m.name, "role": m.role, "source": m.source}
            if m.source == "created":
                spec["tier"] = m.tier
            if m.focus is not None:
                agent["focus"] = spec["focus"] = m.focus
            agents.append(agent)
            experts.append(spec)
        counts = self.counts
        history = {
            "round": self.round,
            "panel_size": len(self.members),
            "retained_count": counts.retained,
            "from_pool_count": counts.from_pool,
            "created_count": counts.created,
            "experts": experts,
        }
        return {"agents": agents, "history": history}


@dataclass(frozen=True)
class PanelSpec:
    """The Judge's request for one seat on the next panel."""

    name: str | None
    role: str
    source: str
    tier: str | None = None
    focus: str | None = None


@dataclass(frozen=True)
class StabilityIssue:
    """A panel member whose name or role broke continuity with earlier rounds."""

    round: int
    name: str
    message: str


def sample_panel(
    pool: Pool, size: int | None = None, *, seed: int | None = None, rng: random.Random | None = None
) -> Panel:
    """Draw the round-0 panel by tier quotas and relevance weight.

    `size` defaults to min(len(pool), 12); a size larger than the pool is clamped to the pool
    size (the whole pool is seated), and a size below 1 raises PanelError. Pass `seed` or `rng`
    (not both) for a reproducible draw; with neither the draw is random.
    """
    if seed is not None and rng is not None:
        raise ValueError("pass seed or rng, not both")
    wanted = min(len(pool.experts), DEFAULT_PANEL_CAP) if size is None else size
    if wanted < 1:
        raise PanelError(f"panel size must be at least 1, got {wanted}")
    drawn = draw_experts(pool, min(wanted, len(pool.experts)), rng or random.Random(seed))
    members = tuple(
        PanelSeat(pastry_name(i), e.role, e.tier, relevance=e.relevance, focus=e.focus) for i, e in enumerate(drawn)
    )
    return Panel(round=0, members=members)


def _check_specs(specs: Sequence[PanelSpec]) -> None:
    """Refuse an empty panel, repeated names, unknown sources and blank roles."""
    if not specs:
        raise PanelError("a panel needs at least one expert")
    seen: set[str] = set()
    for spec in specs:
        if spec.source not in SOURCES:
            raise PanelError(f"source of {spec.name or spec.role!r} must be one of {', '.join(SOURCES)}")
        if not spec.role.strip():
            raise PanelError(f"expert {spec.name!r} has an empty role")
        if spec.name is not None:
            if slug(spec.name) in seen:
                raise PanelError(f"name {spec.name!r} appears twice in the panel")
            seen.add(slug(spec.name))


def _assign_names(specs: Sequence[PanelSpec], used_names: Iterable[str]) -> list[str]:
    """Keep valid pastry names; give every other seat the first name taken nowhere yet."""
    kept = [spec.name if spec.name and is_valid_pastry_name(spec.name) else None for spec in specs]
    taken = set(used_names) | {name for name in kept if name}
    names: list[str] = []
    index = 0
    for name in kept:
        if name is None:
            while pastry_name(index) in taken:
                index += 1
            name = pastry_name(index)
            taken.add(name)
        names.append(name)
    return names


def _seat(pool: Pool, spec: PanelSpec, name: str) -> PanelSeat:
    """Fill one requested seat with tier and relevance from its source and the pool."""
    if spec.source == "created":
        tier = normalise_tier(spec.tier) if spec.tier is not None else UNMATCHED_TIER
        if tier is None:
            raise PanelError(f"created expert {name!r} has an unknown tier {spec.tier!r}")
        relevance = CREATED_RELEVANCE
    else:
        match = pool.find_role(spec.role)
        tier, relevance = (match.tier, match.relevance) if match else (UNMATCHED_TIER, UNMATCHED_RELEVANCE)
    return PanelSeat(name, spec.role, tier, spec.source, relevance, spec.focus)


def evolve_panel(pool: Pool, round: int, specs: Sequence[PanelSpec], *, used_names: Iterable[str] = ()) -> Panel:
    """Seat the Judge's requested panel for a round, filling tier, relevance and names.

    Created experts get their own tier (default Adjacent) and relevance 0.75; others take the
    pool entry of the same role (ignoring case), or Adjacent/0.70 when the pool has none, so a
    requested tier only matters for created experts. Names that are not valid pastry names get
    the first pastry name unused both in these specs and in `used_names` (every name already
    used in the dialogue), so a name never comes back for another role.
    """
    _check_specs(specs)
    names = _assign_names(specs, used_names)
    return Panel(round=round, members=tuple(_seat(pool, s, n) for s, n in zip(specs, names, strict=False)))


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    """A non-empty string field of a panel entry."""
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PanelError(f"{where}.{key} must be a non-empty string")
    return value


def _optional_text(entry: dict[str, Any], key: str, where: str) -> str | None:
    """A string field of a panel entry that may be absent."""
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise PanelError(f"{where}.{key} must be a string")
    return value


def _member(entry: object, where: str, source: object, focus: object, pool: Pool | None) -> PanelSeat:
    """Build one member from a panel.json entry plus its separately recorded source and focus."""
    if not isinstance(entry, dict):
        raise PanelError(f"{where} must be an object")
    name = _text(entry, "name", where)
    role = _text(entry, "role", where)
    tier_raw = _optional_text(entry, "tier", where)
    tier = UNMATCHED_TIER if tier_raw is None else normalise_tier(tier_raw)
    if tier is None:
        raise PanelError(f"{where}.tier {tier_raw!r} is not a tier")
    if source not in SOURCES:
        raise PanelError(f"{where}: source {source!r} must be one of {', '.join(SOURCES)}")
    relevance = entry.get("relevance")
    if relevance is None:
        match = pool.find_role(role) if pool else None
        relevance = match.relevance if match else 0.0
    if not isinstance(relevance, (int, float)) or isinstance(relevance, bool):
        raise PanelError(f"{where}.relevance must be a number")
    if focus is not None and not isinstance(focus, str):
        raise PanelError(f"{where}.focus must be a string")
    return PanelSeat(name, role, tier, source, float(relevance), focus)


def _field(entry: object, key: str) -> object:
    """Return a key of a JSON object, or None for anything that is not an object."""
    return entry.get(key) if isinstance(entry, dict) else None


def _from_bare_list(agents: list[Any], pool: Pool | None) -> list[PanelSeat]:
    """Read the bare agent array written by round-0 sampling."""
    return [_member(a, f"[{i}]", "pool", _field(a, "focus"), pool) for i, a in enumerate(agents)]


def _from_agents(data: dict[str, Any], pool: Pool | None) -> list[PanelSeat]:
    """Read the agents-plus-history shape, taking each source from the history by name."""
    raw_history = data.get("history")
    history: dict[str, Any] = raw_history if isinstance(raw_history, dict) else {}
    specs = {_field(e, "name"): e for e in history.get("experts") or [] if isinstance(e, dict)}
    members = []
    for i, agent in enumerate(data["agents"]):
        spec = specs.get(_field(agent, "name"), {})
        focus = _field(agent, "focus") or spec.get("focus")
        members.append(_member(agent, f"agents[{i}]", spec.get("source", "pool"), focus, pool))
    return members


def _from_judge_panel(entries: list[Any], pool: Pool | None) -> list[PanelSeat]:
    """Read the Judge-written shape, whose entries carry their own source and focus."""
    return [
        _member(e, f"panel[{i}]", _field(e, "source") or "pool", _field(e, "focus"), pool)
        for i, e in enumerate(entries)
    ]


def _members(data: object, pool: Pool | None) -> tuple[list[PanelSeat], object]:
    """Return a decoded panel.json's members and the round it states, if any."""
    if isinstance(data, list):
        return _from_bare_list(data, pool), None
    if isinstance(data, dict) and isinstance(data.get("agents"), list):
        return _from_agents(data, pool), _field(data.get("history"), "round")
    if isinstance(data, dict) and isinstance(data.get("panel"), list):
        return _from_judge_panel(data["panel"], pool), data.get("round")
    raise PanelError("not a panel: expected a list of agents, an 'agents' object, or a 'panel' object")


def _round_from_dir(path: Path) -> int | None:
    """Return N when the file sits in a directory named round-N."""
    match = _ROUND_DIR.fullmatch(path.parent.name)
    return int(match.group(1)) if match else None


def _resolve_round(stated: object, given: int | None, path: Path) -> int:
    """Pick the round stated in the file, else the argument, else the directory name."""
    if stated is not None and (not isinstance(stated, int) or isinstance(stated, bool) or stated < 0):
        raise PanelError(f"{path}: round {stated!r} is not a round number")
    if stated is not None and given is not None and stated != given:
        raise PanelError(f"{path} is for round {stated}, not round {given}")
    for candidate in (stated, given, _round_from_dir(path)):
        if candidate is not None:
            return candidate
    raise PanelError(f"{path}: cannot tell the round; pass it explicitly")


def load_panel(path: Path, round: int | None = None, *, pool: Pool | None = None) -> Panel:
    """Read a panel.json in any of its three shapes into one Panel.

    The round comes from the file, else the `round` argument, else a parent directory named
    round-N; a file and argument that disagree raise PanelError. Members without a recorded
    source count as "pool", without a tier as Adjacent, and without a relevance take the
    matching pool role's relevance when `pool` is given, else 0.0.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PanelError(f"cannot read panel {path}: {exc}") from exc
    try:
        members, stated = _members(data, pool)
    except PanelError as exc:
        raise PanelError(f"{path}: {exc}") from None
    if not members:
        raise PanelError(f"{path}: the panel is empty")
    names = [slug(m.name) for m in members]
    if len(set(names)) != len(names):
        raise PanelError(f"{path}: a name appears twice")
    return Panel(round=_resolve_round(stated, round, path), members=tuple(members))


def _name_order(name: str) -> tuple[int, int]:
    """Sort key placing listed pastry names in list order, then PastryN by number."""
    if name in PASTRY_NAMES:
        return (0, PASTRY_NAMES.index(name))
    return (1, int(name.removeprefix("Pastry")))


def _prompt_details(prompt: Path, name: str) -> tuple[str, str | None]:
    """Return the role and focus written in an expert's prompt file, when it states them."""
    if not prompt.is_file():
        return "", None
    text = prompt.read_text(encoding="utf-8", errors="replace")
    identity = _IDENTITY.search(text)
    role = identity.group("role").strip() if identity and identity.group("name") == name else ""
    focus = _FOCUS.search(text)
    return role, focus.group("focus").strip() if focus else None


def infer_panel(round_dir: Path, round: int, pool: Pool | None = None) -> Panel:
    """Rebuild a round's panel from the answer files in a round directory without panel.json.

    Each lowercase `<name>.md` whose capitalised stem is a pastry name is a member (prompt files
    excluded). Role and focus come from the member's `<name>.prompt.md` identity and focus
    lines when present, else the role is "". Tier and relevance come from the pool role of
    the same name, else Adjacent and 0.0. Sources are not recorded in these files, so every
    member counts as "pool". Members are ordered as in PASTRY_NAMES.
    """
    round_dir = Path(round_dir)
    if not round_dir.is_dir():
        raise PanelError(f"no round directory {round_dir}")
    stems = {
        p.stem.capitalize()
        for p in round_dir.glob("*.md")
        if p.stem == p.stem.lower() and not p.name.endswith(".prompt.md")  # answer files are named in lowercase
    }
    members = []
    for name in sorted(filter(is_valid_pastry_name, stems), key=_name_order):
        role, focus = _prompt_details(round_dir / f"{slug(name)}.prompt.md", name)
        match = pool.find_role(role) if pool and role else None
        tier, relevance = (match.tier, match.relevance) if match else (UNMATCHED_TIER, 0.0)
        members.append(PanelSeat(name, role, tier, "pool", relevance, focus))
    if not members:
        raise PanelError(f"{round_dir} holds no expert answers")
    return Panel(round=round, members=tuple(members))


def _continuity_problem(member: PanelSeat, previous: Panel | None, earlier: tuple[int, str] | None) -> str | None:
    """Describe how a member breaks continuity with the last panel and its name's last role."""
    if member.source == "retained" and previous and member.name not in previous.names():
        return f"marked retained but not on the round-{previous.round} panel"
    if earlier is None or not member.role or not earlier[1]:
        return None
    if normalise_role(member.role) == normalise_role(earlier[1]):
        return None
    if member.source == "retained":
        return f"marked retained but its role changed from {earlier[1]!r} to {member.role!r}"
    return f"name reused: it was {earlier[1]!r} in round {earlier[0]}, now {member.role!r}"


def check_stability(panels: Sequence[Panel]) -> list[StabilityIssue]:
    """Flag retained experts whose role changed or who were not seated last round, and reused names.

    Panels are checked in round order. A name's role is compared with the role it last held
    in any earlier round; unknown roles ("") are not compared.
    """
    issues: list[StabilityIssue] = []
    last_role: dict[str, tuple[int, str]] = {}
    previous: Panel | None = None
    for panel in sorted(panels, key=lambda p: p.round):
        for member in panel.members:
            problem = _continuity_problem(member, previous, last_role.get(member.name))
            if problem:
                issues.append(StabilityIssue(panel.round, member.name, problem))
            if member.role:
                last_role[member.name] = (panel.round, member.role)
        previous = panel
    return issues
