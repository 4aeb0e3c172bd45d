"""Expert pools: pastry names, pool parsing and validation, tier quotas and weighted drawing."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from concord.store.errors import BadInput

TIERS = ("Core", "Adjacent", "Wildcard")
PASTRY_NAMES: tuple[str, ...] = (
    "Muffin",
    "Cupcake",
    "Scone",
    "Eclair",
    "Donut",
    "Brioche",
    "Croissant",
    "Macaron",
    "Cannoli",
    "Strudel",
    "Beignet",
    "Churro",
    "Profiterole",
    "Tartlet",
    "Galette",
    "Palmier",
    "Kouign",
    "Sfogliatella",
    "Financier",
    "Religieuse",
)
_NUMBERED_PASTRY = re.compile(r"Pastry[0-9]+")
_POOL_KEYS = frozenset({"domain", "question", "experts"})
_EXPERT_KEYS = frozenset({"role", "tier", "relevance", "focus"})


def pastry_name(index: int) -> str:
    """Return the expert name for a 0-based panel position."""
    if index < 0:
        raise ValueError(f"pastry index must be >= 0, got {index}")
    return PASTRY_NAMES[index] if index < len(PASTRY_NAMES) else f"Pastry{index + 1}"


def is_valid_pastry_name(name: str) -> bool:
    """Tell whether a name is a listed pastry (exact case) or 'Pastry' followed by digits."""
    return name in PASTRY_NAMES or _NUMBERED_PASTRY.fullmatch(name) is not None


def slug(name: str) -> str:
    """Return the file stem and store slug of an expert name."""
    return name.lower()


def normalise_tier(value: str) -> str | None:
    """Map a tier spelled in any case onto its canonical form, or None if it is not a tier."""
    wanted = value.strip().casefold()
    return next((tier for tier in TIERS if tier.casefold() == wanted), None)


def normalise_role(role: str) -> str:
    """Return the comparison key of a role: case-folded, whitespace collapsed."""
    return " ".join(role.split()).casefold()


@dataclass(frozen=True)
class PoolExpert:
    """One role the Judge may put on a panel."""

    role: str
    tier: str
    relevance: float
    focus: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the expert as a JSON object, unknown keys included."""
        data: dict[str, Any] = {"role": self.role, "tier": self.tier, "relevance": self.relevance}
        if self.focus is not None:
            data["focus"] = self.focus
        return {**data, **self.extra}


@dataclass(frozen=True)
class Pool:
    """A validated expert pool with its domain and question."""

    domain: str
    question: str | None
    experts: tuple[PoolExpert, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the pool as a JSON object, unknown keys included."""
        data: dict[str, Any] = {"domain": self.domain}
        if self.question is not None:
            data["question"] = self.question
        data["experts"] = [expert.to_json() for expert in self.experts]
        return {**data, **self.extra}

    def find_role(self, role: str) -> PoolExpert | None:
        """Return the pool expert whose role equals `role` ignoring case, if any."""
        key = normalise_role(role)
        return next((e for e in self.experts if normalise_role(e.role) == key), None)


@dataclass(frozen=True)
class FieldError:
    """One problem found in a pool, located by a field path such as experts[3].tier."""

    field: str
    message: str

    def __str__(self) -> str:
        """Return the error as 'field: message'."""
        return f"{self.field}: {self.message}"


class PoolError(BadInput):
    """An expert pool that could not be read or failed validation; its message lists every field error on one line."""

    def __init__(self, errors: Sequence[FieldError], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        listed = "; ".join(str(error) for error in self.errors)
        super().__init__(listed if source is None else f"invalid expert pool {source}: {listed}")


def _is_number(value: object) -> TypeGuard[int | float]:
    """Tell whether a JSON value is a number (booleans excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_expert(raw: object, where: str, errors: list[FieldError]) -> PoolExpert | None:
    """Validate one pool expert, appending its field errors; None when it has any."""
    if not isinstance(raw, dict):
        errors.append(FieldError(where, "must be an object"))
        return None
    role = raw.get("role")
    if not isinstance(role, str) or not role.strip():
        errors.append(FieldError(f"{where}.role", "required, a non-empty string"))
        role = None
    tier_raw = raw.get("tier")
    tier = normalise_tier(tier_raw) if isinstance(tier_raw, str) else None
    if tier is None:
        choices = ", ".join(TIERS)
        errors.append(FieldError(f"{where}.tier", f"must be one of {choices} (any case), got {tier_raw!r}"))
    raw_relevance = raw.get("relevance")
    relevance = float(raw_relevance) if _is_number(raw_relevance) and 0.0 <= raw_relevance <= 1.0 else None
    if relevance is None:
        message = f"must be a number between 0 and 1, got {raw_relevance!r}"
        errors.append(FieldError(f"{where}.relevance", message))
    focus = raw.get("focus")
    if focus is not None and not isinstance(focus, str):
        errors.append(FieldError(f"{where}.focus", "must be a string when present"))
        return None
    if role is None or tier is None or relevance is None:
        return None
    extra = {k: v for k, v in raw.items() if k not in _EXPERT_KEYS}
    return PoolExpert(role=role, tier=tier, relevance=relevance, focus=focus, extra=extra)


def _parse_experts(raw: object, errors: list[FieldError]) -> tuple[PoolExpert, ...]:
    """Validate the experts list, appending field errors for it and each entry."""
    if raw is None:
        errors.append(FieldError("experts", "required"))
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError("experts", "must be a list"))
        return ()
    if not raw:
        errors.append(FieldError("experts", "must hold at least one expert"))
        return ()
    experts: list[PoolExpert] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(raw):
        expert = _parse_expert(item, f"experts[{index}]", errors)
        if expert is None:
            continue
        key = normalise_role(expert.role)
        if key in first_index:
            message = f"repeats the role of experts[{first_index[key]}]"
            errors.append(FieldError(f"experts[{index}].role", message))
            continue
        first_index[key] = index
        experts.append(expert)
    return tuple(experts)


def parse_pool(data: object) -> Pool:
    """Validate decoded pool JSON, raising one PoolError that lists every field error."""
    if not isinstance(data, dict):
        raise PoolError([FieldError("pool", "must be a JSON object")])
    errors: list[FieldError] = []
    domain = data.get("domain")
    if not isinstance(domain, str) or not domain.strip():
        errors.append(FieldError("domain", "required, a non-empty string"))
        domain = ""
    question = data.get("question")
    if question is not None and not isinstance(question, str):
        errors.append(FieldError("question", "must be a string when present"))
    experts = _parse_experts(data.get("experts"), errors)
    if errors:
        raise PoolError(errors)
    extra = {k: v for k, v in data.items() if k not in _POOL_KEYS}
    return Pool(domain=domain, question=question, experts=experts, extra=extra)


def load_pool(path: Path) -> Pool:
    """Read and validate an expert-pool.json file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PoolError([FieldError("file", f"cannot read {path}: {exc}")], source=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        raise PoolError([FieldError("file", message)], source=str(path)) from exc
    try:
        return parse_pool(data)
    except PoolError as exc:
        raise PoolError(exc.errors, source=str(path)) from None


def tier_split(n: int) -> tuple[int, int, int]:
    """Return how many (Core, Adjacent, Wildcard) experts a panel of n draws."""
    if n < 0:
        raise ValueError(f"panel size must be >= 0, got {n}")
    if n <= 2:
        return (n, 0, 0)
    if n <= 5:
        core, wildcard = max(1, n // 3), 1
    else:
        core, wildcard = n // 3, n // 4
    return (core, n - core - wildcard, wildcard)


def _pick_index(experts: Sequence[PoolExpert], rng: random.Random) -> int:
    """Spin a relevance-weighted roulette wheel once; uniform when no weight is positive."""
    total = math.fsum(e.relevance for e in experts)
    if total <= 0:
        return rng.randrange(len(experts))
    target = rng.random() * total
    reached = 0.0
    for index, expert in enumerate(experts):
        reached += expert.relevance
        if target < reached:
            return index
    return max(i for i, e in enumerate(experts) if e.relevance > 0)  # float rounding at the rim


def weighted_sample(experts: Sequence[PoolExpert], k: int, rng: random.Random) -> list[PoolExpert]:
    """Draw k experts by relevance without replacement, or all of them in order if k covers them."""
    if k >= len(experts):
        return list(experts)
    left = list(experts)
    return [left.pop(_pick_index(left, rng)) for _ in range(k)]


def draw_experts(pool: Pool, size: int, rng: random.Random) -> list[PoolExpert]:
    """Fill each tier's quota by weighted draw, then top up from any unused role."""
    picked: list[PoolExpert] = []
    for tier, quota in zip(TIERS, tier_split(size), strict=False):
        picked += weighted_sample([e for e in pool.experts if e.tier == tier], quota, rng)
    unused = [e for e in pool.experts if e not in picked]
    while len(picked) < size and unused:
        picked.append(unused.pop(_pick_index(unused, rng)))
    return picked
