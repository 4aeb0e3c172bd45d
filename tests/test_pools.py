"""Tests for expert pools, round-0 sampling, panel evolution, panel.json loading and stability."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from concord.orchestrator.panel.panels import (
    Panel,
    PanelError,
    PanelSpec,
    check_stability,
    evolve_panel,
    infer_panel,
    load_panel,
    sample_panel,
)
from concord.orchestrator.panel.pools import (
    PASTRY_NAMES,
    TIERS,
    FieldError,
    Pool,
    PoolError,
    is_valid_pastry_name,
    load_pool,
    parse_pool,
    pastry_name,
    slug,
    tier_split,
)
from concord.store.model import PanelSeat
from tests.conftest import corpus_dialogue, corpus_path

# (Core, Adjacent, Wildcard) quotas for panel sizes 1..20 (pools.md §2.2).
TIER_TABLE = {
    1: (1, 0, 0),
    2: (2, 0, 0),
    3: (1, 1, 1),
    4: (1, 2, 1),
    5: (1, 3, 1),
    6: (2, 3, 1),
    7: (2, 4, 1),
    8: (2, 4, 2),
    9: (3, 4, 2),
    10: (3, 5, 2),
    11: (3, 6, 2),
    12: (4, 5, 3),
    13: (4, 6, 3),
    14: (4, 7, 3),
    15: (5, 7, 3),
    16: (5, 7, 4),
    17: (5, 8, 4),
    18: (6, 8, 4),
    19: (6, 9, 4),
    20: (6, 9, 5),
}


@pytest.fixture
def d58() -> Path:
    return corpus_dialogue("rfc-0058")


@pytest.fixture
def jira() -> Path:
    return corpus_dialogue("jira")


@pytest.fixture
def lpp() -> Path:
    return corpus_dialogue("local-prod-parity")


@pytest.fixture
def ukfs() -> Path:
    return corpus_dialogue("ukfs-spec-review")


def _pool(*tiers_and_relevances: tuple[str, float]) -> Pool:
    experts = [
        {"role": f"Role {i}", "tier": tier, "relevance": relevance}
        for i, (tier, relevance) in enumerate(tiers_and_relevances)
    ]
    return parse_pool({"domain": "Testing", "experts": experts})


def _tier_counts(panel: Panel) -> tuple[int, int, int]:
    counts = Counter(m.tier for m in panel.members)
    return tuple(counts[t] for t in TIERS)


# --- tier_split (pools.md §7.1, protocol.md §9.13) -------------------------------------------


@pytest.mark.parametrize("n", sorted(TIER_TABLE))
def test_tier_split_matches_table(n: int) -> None:
    assert tier_split(n) == TIER_TABLE[n]
    assert sum(tier_split(n)) == n


@pytest.mark.parametrize(
    ("n", "expected"), [(2, (2, 0, 0)), (3, (1, 1, 1)), (5, (1, 3, 1)), (10, (3, 5, 2)), (12, (4, 5, 3))]
)
def test_tier_split_protocol_values(n: int, expected: tuple[int, int, int]) -> None:
    assert tier_split(n) == expected


# --- pool parsing (pools.md §7.2) ------------------------------------------------------------


def test_tiers_parse_in_any_case() -> None:
    pool = _pool(("core", 0.9), ("ADJACENT", 0.6), ("Wildcard", 0.3), ("wIlDcArD", 0.2))
    assert [e.tier for e in pool.experts] == ["Core", "Adjacent", "Wildcard", "Wildcard"]


def test_every_field_error_is_collected() -> None:
    data = {
        "domain": "Testing",
        "experts": [
            {"role": "Fine", "tier": "core", "relevance": 0.9},
            {"role": "Bad tier", "tier": "middle", "relevance": 0.5},
            {"role": "Too relevant", "tier": "adjacent", "relevance": 1.5},
            {"role": "", "tier": "wildcard", "relevance": "high"},
        ],
    }
    with pytest.raises(PoolError) as caught:
        parse_pool(data)
    fields = [e.field for e in caught.value.errors]
    assert fields == ["experts[1].tier", "experts[2].relevance", "experts[3].role", "experts[3].relevance"]
    assert str(caught.value).split("; ") == [str(e) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"domain": "Testing", "experts": []}, "experts"),
        ({"domain": "Testing"}, "experts"),
        ({"experts": [{"role": "A", "tier": "core", "relevance": 0.5}]}, "domain"),
        ({"domain": 7, "experts": [{"role": "A", "tier": "core", "relevance": 0.5}]}, "domain"),
        ({"domain": "Testing", "experts": [{"tier": "core", "relevance": 0.5}]}, "experts[0].role"),
        ({"domain": "Testing", "experts": [{"role": "A", "tier": "core", "relevance": True}]}, "experts[0].relevance"),
        ({"domain": "Testing", "experts": [{"role": "A", "tier": "core", "relevance": -0.1}]}, "experts[0].relevance"),
    ],
)
def test_single_field_errors(data: dict, field: str) -> None:
    with pytest.raises(PoolError) as caught:
        parse_pool(data)
    assert [e.field for e in caught.value.errors] == [field]


def test_missing_domain_and_empty_experts_are_reported_together() -> None:
    with pytest.raises(PoolError) as caught:
        parse_pool({"experts": []})
    assert {e.field for e in caught.value.errors} == {"domain", "experts"}


def test_repeated_role_is_an_error() -> None:
    data = {
        "domain": "T",
        "experts": [
            {"role": "Chef", "tier": "core", "relevance": 0.5},
            {"role": "chef", "tier": "adjacent", "relevance": 0.4},
        ],
    }
    with pytest.raises(PoolError) as caught:
        parse_pool(data)
    assert caught.value.errors == [FieldError("experts[1].role", "repeats the role of experts[0]")]


def test_unknown_keys_survive_write_back() -> None:
    data = {
        "domain": "Testing",
        "panel_size": 8,
        "experts": [{"role": "A", "tier": "core", "relevance": 0.5, "focus": "edges", "weight": 3}],
    }
    out = parse_pool(data).to_json()
    assert out["panel_size"] == 8
    assert out["experts"] == [{"role": "A", "tier": "Core", "relevance": 0.5, "focus": "edges", "weight": 3}]


def test_load_pool_names_the_path_of_a_missing_or_broken_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(PoolError, match="nope.json"):
        load_pool(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(PoolError, match="broken.json.*not valid JSON"):
        load_pool(broken)


def test_find_role_ignores_case() -> None:
    pool = _pool(("core", 0.9), ("adjacent", 0.5))
    assert pool.find_role("ROLE 1") is pool.experts[1]
    assert pool.find_role("Role") is None


@pytest.mark.corpus
def test_every_corpus_pool_loads_and_round_trips() -> None:
    paths = sorted(corpus_path().glob("*/expert-pool.json"))
    assert len(paths) == 4
    for path in paths:
        raw = json.loads(path.read_text(encoding="utf-8"))
        pool = load_pool(path)
        assert len(pool.experts) == len(raw["experts"])
        for expert in raw["experts"]:
            expert["tier"] = expert["tier"].capitalize()
        assert pool.to_json() == raw, path


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("pattern", "split"),
    [("rfc-0058", (4, 6, 4)), ("jira", (4, 8, 5)), ("ukfs-spec-review", (6, 7, 5)), ("local-prod-parity", (6, 7, 5))],
)
def test_corpus_pool_tier_sizes(pattern: str, split: tuple[int, int, int]) -> None:
    pool = load_pool(corpus_dialogue(pattern) / "expert-pool.json")
    assert tuple(sum(e.tier == t for e in pool.experts) for t in TIERS) == split


# --- sampling (pools.md §7.3-6, protocol.md §9.12-13) ---------------------------------------


@pytest.mark.corpus
def test_default_size_is_pool_size_capped_at_twelve(d58: Path) -> None:
    assert len(sample_panel(load_pool(d58 / "expert-pool.json"), seed=1).members) == 12
    assert len(sample_panel(_pool(("core", 0.9), ("adjacent", 0.5), ("wildcard", 0.2)), seed=1).members) == 3


@pytest.mark.corpus
def test_tier_counts_follow_quotas_when_tiers_are_large_enough(d58: Path) -> None:
    pool = load_pool(d58 / "expert-pool.json")
    sizes = Counter(e.tier for e in pool.experts)
    for n in range(1, len(pool.experts) + 1):
        panel = sample_panel(pool, n, seed=n)
        roles = [m.role for m in panel.members]
        assert len(roles) == n and len(set(roles)) == n
        if all(q <= sizes[t] for t, q in zip(TIERS, tier_split(n), strict=False)):
            assert _tier_counts(panel) == tier_split(n)


def test_shortfall_is_filled_from_other_tiers() -> None:
    pool = _pool(("core", 0.9), *[("adjacent", 0.5)] * 5)
    panel = sample_panel(pool, 6, seed=3)
    assert tier_split(6) == (2, 3, 1)
    assert _tier_counts(panel) == (1, 5, 0)
    assert len({m.role for m in panel.members}) == 6


def test_size_above_pool_is_clamped_and_below_one_refused() -> None:
    pool = _pool(("core", 0.9), ("adjacent", 0.5), ("wildcard", 0.2))
    panel = sample_panel(pool, 10, seed=1)
    assert [m.role for m in panel.members] == [e.role for e in pool.experts]
    with pytest.raises(PanelError, match="panel size must be at least 1, got 0"):
        sample_panel(pool, 0)


@pytest.mark.corpus
def test_fixed_seed_gives_identical_panel(jira: Path) -> None:
    pool = load_pool(jira / "expert-pool.json")
    assert sample_panel(pool, 9, seed=42) == sample_panel(pool, 9, seed=42)


def test_unseeded_draw_follows_relevance() -> None:
    pool = _pool(("core", 0.9), ("core", 0.3))
    draws = 10_000
    first = sum(sample_panel(pool, 1).members[0].role == "Role 0" for _ in range(draws))
    assert abs(first / draws - 0.75) <= 0.02


@pytest.mark.corpus
def test_whole_tier_comes_in_pool_order(jira: Path) -> None:
    pool = load_pool(jira / "expert-pool.json")
    core = [e.role for e in pool.experts if e.tier == "Core"]
    assert len(core) == tier_split(12)[0]
    for seed in range(5):
        panel = sample_panel(pool, seed=seed)
        assert [m.role for m in panel.members[: len(core)]] == core
        assert panel.names()[: len(core)] == list(PASTRY_NAMES[: len(core)])
    recorded = infer_panel(jira / "round-0", 0, pool)
    assert [m.role for m in recorded.members[: len(core)]] == core


def test_twenty_five_names() -> None:
    pool = _pool(*[("core", 0.5)] * 25)
    names = sample_panel(pool, 25, seed=0).names()
    assert names == list(PASTRY_NAMES) + [f"Pastry{i}" for i in range(21, 26)]
    assert [pastry_name(i) for i in range(25)] == names
    assert PASTRY_NAMES[0] == "Muffin" and PASTRY_NAMES[-1] == "Religieuse" and len(PASTRY_NAMES) == 20


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Pastry", False),
        ("pastry3", False),
        ("KETTLE", False),
        ("muffin", False),
        ("Pastry7", True),
        ("Religieuse", True),
    ],
)
def test_pastry_name_validity(name: str, valid: bool) -> None:
    assert is_valid_pastry_name(name) is valid


def test_slug_is_lowercase_name() -> None:
    assert slug("Sfogliatella") == "sfogliatella"
    assert PanelSeat("Pastry21", "R", "Core", relevance=0.5).slug == "pastry21"


# --- evolve_panel (pools.md §7.8, protocol.md §9.14) -----------------------------------------


def _specs(panel: Panel) -> list[PanelSpec]:
    return [PanelSpec(m.name, m.role, m.source, focus=m.focus) for m in panel.members]


@pytest.mark.corpus
@pytest.mark.parametrize("round_no", [1, 2, 3])
def test_evolve_reproduces_recorded_panels(d58: Path, round_no: int) -> None:
    pool = load_pool(d58 / "expert-pool.json")
    recorded = load_panel(d58 / f"round-{round_no}" / "panel.json")
    evolved = evolve_panel(pool, round_no, _specs(recorded))
    assert evolved == recorded
    history = json.loads((d58 / f"round-{round_no}" / "panel.json").read_text(encoding="utf-8"))["history"]
    assert evolved.counts == (history["retained_count"], history["from_pool_count"], history["created_count"])


@pytest.mark.corpus
def test_evolve_role_without_pool_match_is_adjacent_070(d58: Path) -> None:
    pool = load_pool(d58 / "expert-pool.json")
    recorded = load_panel(d58 / "round-2" / "panel.json")
    unmatched = [m for m in recorded.members if pool.find_role(m.role) is None]
    assert len(unmatched) == 1
    seat = evolve_panel(pool, 2, [PanelSpec(unmatched[0].name, unmatched[0].role, "retained")]).members[0]
    assert (seat.tier, seat.relevance) == ("Adjacent", 0.70)


def test_evolve_sources_tiers_and_relevance() -> None:
    pool = _pool(("core", 0.9), ("adjacent", 0.6), ("wildcard", 0.3))
    specs = [
        PanelSpec("Muffin", "role 0", "retained"),
        PanelSpec("Cupcake", "ROLE 2", "pool"),
        PanelSpec(None, "Invented", "created"),
        PanelSpec(None, "Invented Core", "created", tier="core", focus="dig"),
        PanelSpec("Scone", "Not in pool", "pool"),
    ]
    panel = evolve_panel(pool, 1, specs)
    assert panel.counts == (1, 2, 2)
    assert [(m.tier, m.relevance) for m in panel.members] == [
        ("Core", 0.9),
        ("Wildcard", 0.3),
        ("Adjacent", 0.75),
        ("Core", 0.75),
        ("Adjacent", 0.70),
    ]
    assert panel.members[3].focus == "dig"


def test_evolve_names_skip_names_used_anywhere_in_the_dialogue() -> None:
    pool = _pool(("core", 0.9))
    specs = [
        PanelSpec("Scone", "A", "pool"),
        PanelSpec(None, "B", "created"),
        PanelSpec("kettle", "C", "created"),
        PanelSpec("Pastry30", "D", "created"),
    ]
    panel = evolve_panel(pool, 2, specs, used_names=["Muffin", "Eclair"])
    assert panel.names() == ["Scone", "Cupcake", "Donut", "Pastry30"]


@pytest.mark.parametrize(
    "specs",
    [
        [],
        [PanelSpec("Muffin", "A", "pool"), PanelSpec("Muffin", "B", "pool")],
        [PanelSpec("Muffin", "A", "borrowed")],
        [PanelSpec("Muffin", " ", "pool")],
        [PanelSpec(None, "A", "created", tier="middle")],
    ],
)
def test_evolve_refuses_bad_panels(specs: list[PanelSpec]) -> None:
    with pytest.raises(PanelError):
        evolve_panel(_pool(("core", 0.9)), 1, specs)


def test_evolved_panel_writes_shape_two_and_reads_back(tmp_path: Path) -> None:
    pool = _pool(("core", 0.9), ("adjacent", 0.6))
    panel = evolve_panel(
        pool,
        3,
        [
            PanelSpec("Muffin", "Role 0", "retained", focus="close T0101"),
            PanelSpec(None, "Fresh", "created", tier="wildcard"),
        ],
    )
    data = panel.to_json()
    assert set(data) == {"agents", "history"}
    assert data["history"]["round"] == 3 and data["history"]["created_count"] == 1
    assert data["history"]["experts"][1] == {
        "name": "Cupcake",
        "role": "Fresh",
        "source": "created",
        "tier": "Wildcard",
    }
    assert all(agent["emoji"] == "🧁" for agent in data["agents"])
    path = tmp_path / "round-3" / "panel.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_panel(path) == panel


# --- loading panel.json (pools.md §7.12) -----------------------------------------------------


@pytest.mark.corpus
def test_every_corpus_panel_loads() -> None:
    paths = sorted(corpus_path().glob("*/round-*/panel.json"))
    assert len(paths) == 10
    for path in paths:
        raw = json.loads(path.read_text(encoding="utf-8"))
        panel = load_panel(path)
        entries = raw["agents"] if "agents" in raw else raw["panel"]
        assert panel.names() == [e["name"] for e in entries]
        assert panel.round == int(path.parent.name.removeprefix("round-"))
        assert all(m.tier in TIERS for m in panel.members)


@pytest.mark.corpus
def test_d58_round_one_counts(d58: Path) -> None:
    panel = load_panel(d58 / "round-1" / "panel.json")
    assert len(panel.members) == 8
    assert panel.counts == (6, 2, 0)


@pytest.mark.corpus
def test_judge_written_panel_reads_sources_and_takes_relevance_from_pool(ukfs: Path) -> None:
    pool = load_pool(ukfs / "expert-pool.json")
    panel = load_panel(ukfs / "round-1" / "panel.json", pool=pool)
    assert panel.counts == (6, 2, 1)
    created = [m for m in panel.members if m.source == "created"]
    assert [m.tier for m in created] == ["Adjacent"]
    for m in panel.members:
        match = pool.find_role(m.role)
        assert m.relevance == (match.relevance if match else 0.0)


def test_bare_array_panel_loads(tmp_path: Path) -> None:
    agents = [
        {"name": "Muffin", "role": "Kiln Operator", "emoji": "🧁", "tier": "Core", "relevance": 0.9},
        {
            "name": "Cupcake",
            "role": "Glaze Chemist",
            "emoji": "🧁",
            "tier": "Wildcard",
            "relevance": 0.3,
            "focus": "crazing",
        },
    ]
    path = tmp_path / "round-0" / "panel.json"
    path.parent.mkdir()
    path.write_text(json.dumps(agents), encoding="utf-8")
    panel = load_panel(path)
    assert panel == Panel(
        0,
        (
            PanelSeat("Muffin", "Kiln Operator", "Core", relevance=0.9),
            PanelSeat("Cupcake", "Glaze Chemist", "Wildcard", relevance=0.3, focus="crazing"),
        ),
    )
    elsewhere = tmp_path / "panel.json"
    elsewhere.write_text(json.dumps(agents), encoding="utf-8")
    assert load_panel(elsewhere, 4).round == 4
    with pytest.raises(PanelError, match="round"):
        load_panel(elsewhere)


def test_panel_round_in_file_must_agree_with_argument(tmp_path: Path) -> None:
    path = tmp_path / "panel.json"
    path.write_text(
        json.dumps({"round": 2, "panel": [{"name": "Muffin", "role": "A", "tier": "core"}]}), encoding="utf-8"
    )
    assert load_panel(path, 2).round == 2
    with pytest.raises(PanelError):
        load_panel(path, 1)


@pytest.mark.parametrize(
    "content", ["[]", '{"x": 1}', "nope", '[{"name": "Muffin"}]', '[{"name": "Muffin", "role": "A", "tier": "top"}]']
)
def test_bad_panel_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "round-0" / "panel.json"
    path.parent.mkdir()
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PanelError, match="panel.json"):
        load_panel(path)


# --- inference and stability (pools.md §7.9) -------------------------------------------------


def _flagged(panels: list[Panel]) -> list[tuple[int, str]]:
    return [(issue.round, issue.name) for issue in check_stability(panels)]


@pytest.mark.corpus
def test_infer_round_zero_from_answers_and_prompts(d58: Path) -> None:
    pool = load_pool(d58 / "expert-pool.json")
    panel = infer_panel(d58 / "round-0", 0, pool)
    stems = sorted(
        p.name.removesuffix(".md") for p in (d58 / "round-0").glob("*.md") if not p.name.endswith(".prompt.md")
    )
    assert sorted(panel.names()) == sorted(s.capitalize() for s in stems)
    assert len(panel.members) == 10
    assert panel.names() == sorted(panel.names(), key=PASTRY_NAMES.index)
    assert all(pool.find_role(m.role) is not None for m in panel.members)
    assert _tier_counts(panel) == tier_split(10)


@pytest.mark.corpus
def test_infer_without_prompts_leaves_role_unknown(jira: Path) -> None:
    panel = infer_panel(jira / "round-2", 2, load_pool(jira / "expert-pool.json"))
    assert len(panel.members) == 12
    assert {(m.role, m.tier, m.relevance) for m in panel.members} == {("", "Adjacent", 0.0)}


def test_infer_reads_only_lowercase_answer_files_once_each(tmp_path: Path) -> None:
    for name in ("muffin.md", "Muffin.md", "cupcake.md", "cupcake.prompt.md", "CUPCAKE.md", "Scone.md", "notes.md"):
        (tmp_path / name).write_text("[PERSPECTIVE P01: x]\ny\n")
    panel = infer_panel(tmp_path, 1)
    assert [m.name for m in panel.members] == sorted(["Muffin", "Cupcake"], key=PASTRY_NAMES.index)


@pytest.mark.corpus
def test_stability_flags_d58_per_round_pair(d58: Path) -> None:
    pool = load_pool(d58 / "expert-pool.json")
    round0 = infer_panel(d58 / "round-0", 0, pool)  # roles read from the round-0 prompt files
    recorded = [load_panel(d58 / f"round-{n}" / "panel.json") for n in (1, 2, 3)]
    assert _flagged([round0, recorded[0]]) == [(1, "Macaron")]
    assert _flagged(recorded[0:2]) == [(2, "Tartlet")]
    assert _flagged(recorded[1:3]) == []
    assert _flagged([round0, *recorded]) == [(1, "Macaron"), (2, "Tartlet")]


@pytest.mark.corpus
def test_stability_flags_reused_name_in_local_prod_parity(lpp: Path) -> None:
    panels = [load_panel(p) for p in sorted(lpp.glob("round-*/panel.json"))]
    issues = check_stability(panels)
    assert [(i.round, i.name) for i in issues] == [(2, "Eclair")]
    assert "round 0" in issues[0].message


@pytest.mark.corpus
def test_stability_finds_nothing_in_ukfs_and_jira(ukfs: Path, jira: Path) -> None:
    assert check_stability([load_panel(p) for p in sorted(ukfs.glob("round-*/panel.json"))]) == []
    pool = load_pool(jira / "expert-pool.json")
    assert check_stability([infer_panel(jira / f"round-{n}", n, pool) for n in range(3)]) == []


def test_retained_expert_missing_from_last_round_is__flagged() -> None:
    before = Panel(0, (PanelSeat("Muffin", "A", "Core", relevance=0.9),))
    after = Panel(
        1, (PanelSeat("Muffin", "A", "Core", "retained", 0.9), PanelSeat("Scone", "B", "Core", "retained", 0.9))
    )
    assert _flagged([after, before]) == [(1, "Scone")]
