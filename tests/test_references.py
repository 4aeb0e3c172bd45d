"""Tests for resolving marker references to global display ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from concord.orchestrator.judging.markers import Marker, parse_answer
from concord.orchestrator.judging.references import IdRegistry, resolve_all
from concord.orchestrator.judging.written_ids import Reference, parse_reference
from tests.conftest import corpus_dialogue


def _ref(text: str) -> Reference:
    ref = parse_reference(text)
    assert ref is not None, text
    return ref


def _marker(text: str) -> Marker:
    (marker,) = parse_answer(text).markers
    return marker


@pytest.fixture
def registry() -> IdRegistry:
    reg = IdRegistry()
    reg.add("T0001", author="scone", round=0, local_id="T01")
    reg.add("T0002", author="donut", round=0, local_id="T01")
    reg.add("P0001", author="scone", round=0, local_id="P01")
    reg.add("T0101", author="scone", round=1, local_id="T01")
    reg.add("T0102", author="donut", round=1, local_id="T04-R1")
    reg.add("T0103", author="donut", round=1, local_id="T-NEW")
    reg.add("P0101", author="muffin", round=1, local_id="MUFFIN-P0101")
    return reg


def test_exact_display_id(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("T0002"), author="scone", round=2) == "T0002"
    assert "T0002" in registry and "T0999" not in registry


def test_unknown_display_id_does_not_fall_back_to_local_ids(registry: IdRegistry) -> None:
    # T0199 looks like scone's round-1 T99 but is a display id nobody registered.
    registry.add("T0104", author="scone", round=1, local_id="T99")
    assert registry.resolve(_ref("T0199"), author="scone", round=2) is None


def test_namespaced_with_round(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("SCONE R1-T01"), author="donut", round=2) == "T0101"
    assert registry.resolve(_ref("SCONE-R0-T01"), author="donut", round=2) == "T0001"
    assert registry.resolve(_ref("DONUT R1-T04"), author="scone", round=2) == "T0102"


def test_namespaced_without_round_takes_the_latest_earlier_round(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("DONUT-T01"), author="scone", round=1) == "T0002"
    assert registry.resolve(_ref("SCONE-T01"), author="donut", round=1) == "T0001"
    assert registry.resolve(_ref("SCONE-T01"), author="donut", round=3) == "T0101"


def test_recorded_namespaced_alias_is_an_exact_match(registry: IdRegistry) -> None:
    registry.add_alias("T0001", "SCONE-T01")
    assert registry.resolve(_ref("SCONE-T01"), author="donut", round=3) == "T0001"


def test_extended_local_id(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("MUFFIN-P0101"), author="scone", round=2) == "P0101"


def test_own_prior_local_id(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("T01"), author="scone", round=1) == "T0001"
    assert registry.resolve(_ref("T01"), author="scone", round=2) == "T0101"
    assert registry.resolve(_ref("T01"), author="donut", round=1) == "T0002"
    assert registry.resolve(_ref("P01"), author="scone", round=1) == "P0001"


def test_own_local_id_of_the_current_round_is_not_a_prior_id(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("T01"), author="scone", round=0) is None
    assert registry.resolve(_ref("T04"), author="donut", round=1) is None


def test_local_id_with_round_suffix(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("T04-R1"), author="donut", round=2) == "T0102"
    assert registry.resolve(_ref("T04"), author="donut", round=2) == "T0102"
    assert registry.resolve(_ref("R1-T04"), author="donut", round=2) == "T0102"


def test_judge_alias_beats_the_authors_own_local_id(registry: IdRegistry) -> None:
    registry.add("T0105", author="judge", round=1, local_id=None, aliases=["T01"])
    assert registry.resolve(_ref("T01"), author="scone", round=2) == "T0105"
    registry.add_alias("T0103", "T07")
    assert registry.resolve(_ref("T07"), author="muffin", round=2) == "T0103"


def test_unresolvable_references_return_none(registry: IdRegistry) -> None:
    assert registry.resolve(_ref("T05"), author="scone", round=2) is None
    assert registry.resolve(_ref("CUPCAKE R1-T01"), author="scone", round=2) is None


def test_invalid_registrations_raise_value_error(registry: IdRegistry) -> None:
    with pytest.raises(ValueError):
        registry.add("T1", author="scone", round=0, local_id="T01")
    with pytest.raises(ValueError):
        registry.add_alias("T0999", "T09")
    with pytest.raises(ValueError):
        registry.add_alias("T0001", "not an id")


def test_resolve_all_deduplicates_and_warns(registry: IdRegistry) -> None:
    marker = _marker("[RESOLVED T01: SCONE-T01 (same thing)]")
    assert resolve_all(marker, author="scone", round=1, registry=registry) == (["T0001"], [])
    assert resolve_all(marker, author="scone", round=2, registry=registry) == (["T0101"], [])
    marker = _marker("[RESOLVED DONUT R1-T04, CUPCAKE R1-T09]")
    resolved, warnings = resolve_all(marker, author="scone", round=2, registry=registry)
    assert resolved == ["T0102"]
    (warning,) = warnings
    assert "CUPCAKE R1-T09" in warning and "scone" in warning and "round 2" in warning
    assert warning.endswith(".")


def test_resolve_all_without_targets(registry: IdRegistry) -> None:
    marker = _marker("[RESOLVED: nothing to point at]")
    assert resolve_all(marker, author="scone", round=1, registry=registry) == ([], [])


# --- recorded corpus ----------------------------------------------------------------------------


def _register_round(registry: IdRegistry, folder: Path, number: int) -> dict[str, str]:
    """Give every tension of a round the next free display id; return {expert: its last id}."""
    ids: dict[str, str] = {}
    answers = sorted(p for p in folder.glob("*.md") if not p.name.endswith(".prompt.md"))
    for path in answers:
        for marker in parse_answer(path.read_text(encoding="utf-8")).of("tension"):
            seq = next(s for s in range(1, 100) if f"T{number:02d}{s:02d}" not in registry)
            global_id = f"T{number:02d}{seq:02d}"
            registry.add(global_id, author=path.stem, round=number, local_id=marker.local_id)
            ids[path.stem] = global_id
    return ids


@pytest.mark.corpus
def test_check4_resolved_points_at_own_earlier_tension_not_the_new_one() -> None:
    d58 = corpus_dialogue("2026-02-06T1839Z-rfc-0058-")
    registry = IdRegistry()
    round0 = _register_round(registry, d58 / "round-0", 0)
    answer = parse_answer((d58 / "round-1" / "macaron.md").read_text(encoding="utf-8"))
    (resolved,) = answer.of("resolved")
    assert resolve_all(resolved, author="macaron", round=1, registry=registry) == ([round0["macaron"]], [])
    round1 = _register_round(registry, d58 / "round-1", 1)
    (new_tension,) = answer.of("tension")
    assert new_tension.local_id == "T01"
    assert round1["macaron"] != round0["macaron"]
    assert resolve_all(resolved, author="macaron", round=1, registry=registry) == ([round0["macaron"]], [])


@pytest.mark.corpus
def test_check3_namespaced_targets_resolve_to_round1_tensions() -> None:
    d58 = corpus_dialogue("2026-02-06T1839Z-rfc-0058-")
    registry = IdRegistry()
    _register_round(registry, d58 / "round-0", 0)
    round1 = _register_round(registry, d58 / "round-1", 1)
    (resolved,) = parse_answer((d58 / "round-2" / "cannoli.md").read_text(encoding="utf-8")).of("resolved")
    ids, warnings = resolve_all(resolved, author="cannoli", round=2, registry=registry)
    assert ids == [round1["muffin"], round1["macaron"], round1["eclair"]]
    assert warnings == []


_JUDGE_ROW = re.compile(r"^\|\s*(T[0-9]{2})\s*\|")


@pytest.mark.corpus
def test_check8_bare_ids_resolve_through_the_recorded_judge_aliases() -> None:
    jira = corpus_dialogue("2026-03-11T1341Z-jira-")
    registry = IdRegistry()
    judge_ids = {}
    rows = (jira / "tensions.md").read_text(encoding="utf-8").split("\n")
    for seq, match in enumerate(filter(None, map(_JUDGE_ROW.match, rows)), start=1):
        judge_ids[match.group(1)] = f"T00{seq:02d}"
        registry.add(f"T00{seq:02d}", author="judge", round=0, local_id=None, aliases=[match.group(1)])
    assert judge_ids, "tensions.md has no | Tnn | rows"
    own = _register_round(registry, jira / "round-0", 0)
    answer = parse_answer((jira / "round-1" / "beignet.md").read_text(encoding="utf-8"))
    for kind, alias in (("refinement", "T01"), ("resolved", "T02"), ("concession", "T06")):
        marker = next(m for m in answer.of(kind) if [r.raw for r in m.targets] == [alias])
        ids, warnings = resolve_all(marker, author="beignet", round=1, registry=registry)
        assert ids == [judge_ids[alias]] and warnings == []
    assert own["beignet"] != judge_ids["T01"]
    unmatched = _marker("[RESOLVED on T42]")
    ids, warnings = resolve_all(unmatched, author="beignet", round=1, registry=registry)
    assert ids == [] and len(warnings) == 1 and "T42" in warnings[0]
