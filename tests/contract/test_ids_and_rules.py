"""Pure rules: display ids, slugs, dialogue ids, ref endpoint rules, transition matrix (checks 1, 5, 7)."""

from __future__ import annotations

import re

import pytest

from concord.store.ids import canonical_address, display_id, new_dialogue_id, parse_display_id, parse_local_id, slugify
from concord.store.rules import ref_target_problem, transition_allowed


def test_display_id_round_trip() -> None:
    assert display_id("P", 1, 2) == "P0102"
    assert display_id("perspective", 1, 2) == "P0102"
    assert parse_display_id("T0215") == ("T", 2, 15)


@pytest.mark.parametrize("bad", ["P101", "X0101", "MUFFIN-P0101", "P0100", "p0101", "", "P01023"])
def test_parse_display_id_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_display_id(bad)


def test_hundredth_item_refused() -> None:
    assert display_id("T", 3, 99) == "T0399"
    with pytest.raises(ValueError, match="at most 99"):
        display_id("T", 3, 100)


def test_local_id() -> None:
    assert parse_local_id("MUFFIN-P0101") == ("muffin", "P", 1, 1)
    assert parse_local_id("Pastry21-T0203") == ("pastry21", "T", 2, 3)
    assert parse_local_id("P0101") is None


def test_slug_and_dialogue_id() -> None:
    title = "RFC 0058 Supersession: Hybrid Relational + DynamoDB Architecture"
    assert slugify(title) == "rfc-0058-supersession-hybrid-relational-dynamodb-architecture"
    ids = {new_dialogue_id("Test") for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"test-[a-z2-7]{6}", i) for i in ids)


def test_canonical_address() -> None:
    assert (
        canonical_address("dialogue#nvidia-analysis", "perspective#01#02")
        == "dialogue:nvidia-analysis/entity:perspective/01#02"
    )
    assert canonical_address("dialogue#x", "meta") == "dialogue:x/entity:meta/"


@pytest.mark.parametrize(
    ("ref_type", "source", "target", "ok"),
    [
        ("resolve", "perspective", "perspective", False),
        ("resolve", "perspective", "tension", True),
        ("refine", "perspective", "recommendation", False),
        ("refine", "perspective", "perspective", True),
        ("support", "evidence", "tension", True),
        ("address", "claim", "tension", True),
        ("reopen", "claim", "evidence", False),
        ("depend", "claim", "evidence", True),
    ],
)
def test_ref_endpoint_rules(ref_type: str, source: str, target: str, ok: bool) -> None:
    assert (ref_target_problem(ref_type, source, target) is None) is ok


def test_tension_transition_matrix() -> None:
    allowed = {
        ("open", "addressed"),
        ("open", "resolved"),
        ("addressed", "resolved"),
        ("addressed", "open"),
        ("resolved", "reopened"),
        ("reopened", "addressed"),
        ("reopened", "resolved"),
    }
    statuses = ["open", "addressed", "resolved", "reopened"]
    for current in statuses:
        for new in statuses:
            assert transition_allowed("tension", current, new) is ((current, new) in allowed), (current, new)
