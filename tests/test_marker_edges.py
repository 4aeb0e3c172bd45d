"""Marker parser edge cases: prose between markers, id forms, text after brackets, headers that are prose."""

from __future__ import annotations

import pytest

from concord.orchestrator.judging.markers import Marker, Reference, parse_answer, parse_reference


def only(text: str) -> Marker:
    """The single marker of `text`."""
    markers = parse_answer(text).markers
    assert len(markers) == 1, markers
    return markers[0]


def targets(marker: Marker) -> list[tuple[str | None, int | None, str, int, bool]]:
    """(expert, round, kind, number, is_global) of each target."""
    return [(r.expert, r.round, r.kind, r.number, r.is_global) for r in marker.targets]


# --- bodies: prose between markers -----------------------------------------------------


def test_prose_before_a_marker_on_its_line_stays_in_the_previous_body() -> None:
    first, second = parse_answer(
        "[PERSPECTIVE P01: A]\nbody\nAs said above, see [TENSION T01: B]\ntension body"
    ).markers
    assert first.body == "body\nAs said above, see"
    assert second.body == "tension body"


def test_prose_lines_between_markers_belong_to_the_marker_above() -> None:
    text = "[PERSPECTIVE P01: A]\n\nfirst paragraph\n\nsecond paragraph\n[PERSPECTIVE P02: B]\nlast\n"
    first, second = parse_answer(text).markers
    assert first.body == "first paragraph\n\nsecond paragraph"
    assert second.body == "last"


def test_a_second_marker_on_the_same_line_ends_the_first_ones_text() -> None:
    first, second = parse_answer("[CONCESSION to Strudel on T01]: fair [MOVE:CONVERGE]").markers
    assert (first.kind, first.label, first.body) == ("concession", "fair", "fair")
    assert second.kind == "converge"


def test_crlf_answers_parse_like_lf_answers() -> None:
    parsed = parse_answer("[TENSION T01: crlf]\r\nline1\r\nline2\r\n---\r\n")
    assert parsed.markers[0].body == "line1\nline2"
    assert parsed.ends_with_rule


# --- text after the bracket --------------------------------------------------------------


def test_text_after_an_emphasised_bracket_is_the_label() -> None:
    marker = only("**[CONCESSION to Strudel on T01]**: the cap was arbitrary")
    assert (marker.label, marker.addressee) == ("the cap was arbitrary", "strudel")
    assert targets(marker) == [(None, None, "T", 1, False)]


def test_a_label_inside_the_bracket_wins_over_text_after_it() -> None:
    marker = only("[CONCESSION on T01: cap]: because")
    assert (marker.label, marker.body) == ("cap", "because")


def test_ids_in_a_trailing_label_are_targets_only_for_targeting_markers() -> None:
    concession = only("[CONCESSION to Strudel]: T0101 was right")
    assert targets(concession) == [(None, 1, "T", 1, True)]
    perspective = only("[PERSPECTIVE]: T0101 was right")
    assert (perspective.label, perspective.targets) == ("T0101 was right", ())


# --- headers: addressees, id lists, prose ------------------------------------------------


def test_concession_to_a_named_expert_without_a_target() -> None:
    marker = only("[CONCESSION to Strudel]")
    assert (marker.addressee, marker.label, marker.targets) == ("strudel", "", ())


def test_concession_to_a_named_expert_with_a_bare_id() -> None:
    marker = only("[CONCESSION to Strudel T01]")
    assert marker.addressee == "strudel"
    assert targets(marker) == [(None, None, "T", 1, False)]


def test_a_lowercase_addressee_makes_the_header_prose() -> None:
    marker = only("[CONCESSION to strudel on T01]")
    assert (marker.addressee, marker.label, marker.targets) == (None, "to strudel on T01", ())


def test_empty_pieces_of_an_id_list_are_skipped_and_duplicates_dropped() -> None:
    assert targets(only("[RESOLVED T01,, T02]")) == [(None, None, "T", 1, False), (None, None, "T", 2, False)]
    assert targets(only("[RESOLVED T01, T01]")) == [(None, None, "T", 1, False)]


@pytest.mark.parametrize("text", ["[CONCESSION to]", "[RESOLVED on]", "[RESOLVED to Strudel on]"])
def test_incomplete_headers_do_not_raise(text: str) -> None:
    assert only(text).targets == ()


# --- RE:, MOVE:, stance, dissent, verdict ------------------------------------------------


def test_ref_marker_keeps_its_text_and_finds_ids_among_prose() -> None:
    marker = only("[RE:SUPPORT T0101 because it is cheaper]")
    assert (marker.kind, marker.label) == ("ref", "T0101 because it is cheaper")
    assert targets(marker) == [(None, 1, "T", 1, True)]


def test_ref_marker_reads_a_namespaced_id_with_its_space() -> None:
    assert targets(only("[RE:SUPPORT STRUDEL R1-T01]")) == [("strudel", 1, "T", 1, False)]


def test_move_marker_keeps_its_text_as_context() -> None:
    marker = only("[MOVE:CHALLENGE T0101 the cap is arbitrary]")
    assert (marker.kind, marker.label) == ("move", "T0101 the cap is arbitrary")
    assert targets(marker) == [(None, 1, "T", 1, True)]


def test_converge_marker_keeps_its_text() -> None:
    marker = only("[MOVE:CONVERGE: ready to sign]")
    assert (marker.kind, marker.label) == ("converge", "ready to sign")


def test_stance_label_and_confidence_with_and_without_a_position() -> None:
    stance = only("[MUFFIN-S0101: APPROVE | 0.85]")
    assert (stance.kind, stance.label, stance.confidence) == ("stance", "APPROVE | 0.85", 0.85)
    blank = only("[MUFFIN-S0101: | 0.5]")
    assert (blank.kind, blank.confidence) == ("stance", 0.5)


def test_dissent_keeps_its_whole_text_as_the_label() -> None:
    marker = only("[DISSENT on T01 -- too early]")
    assert (marker.kind, marker.label, marker.targets) == ("dissent", "on T01 -- too early", ())


def test_only_minority_verdict_is_a_verdict_marker() -> None:
    assert only("[MINORITY VERDICT: keep SQLite]").kind == "minority_verdict"
    assert only("[FINAL VERDICT: adopt]").kind == "unknown"


# --- perspective and tension headers -----------------------------------------------------


def test_marker_with_a_local_id_and_no_label() -> None:
    marker = only("[PERSPECTIVE P01]\nbody")
    assert (marker.local_id, marker.label, marker.body) == ("P01", "", "body")


def test_a_leading_acronym_is_part_of_the_label_not_an_id() -> None:
    marker = only("[PERSPECTIVE API design first]\nbody")
    assert (marker.local_id, marker.label) == (None, "API design first")


def test_slash_after_a_local_id_separates_the_label() -> None:
    marker = only("[TENSION T01/Cost of joins]\nbody")
    assert (marker.local_id, marker.label) == ("T01", "Cost of joins")


# --- where markers are found -------------------------------------------------------------


def test_markdown_link_text_is_skipped_and_later_markers_on_the_line_are_found() -> None:
    marker = only("See [the spec](http://x) then [PERSPECTIVE P01: A]\nbody")
    assert (marker.kind, marker.label) == ("perspective", "A")


def test_an_indented_table_row_is_still_a_table_row() -> None:
    parsed = parse_answer("  | [MOVE:CONVERGE] | yes |\n")
    assert parsed.markers[0].in_table
    assert not parsed.converge


# --- id forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T0101", Reference("T0101", "T", 1, round=1, is_global=True)),
        ("C1", Reference("C1", "C", 1)),
    ],
)
def test_only_four_digits_make_a_global_id(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["T101", "P999", "MUFFIN-T101", "T01011", "T", "T-1", "MUFFIN-", "muffin T01"])
def test_id_forms_that_are_not_ids(text: str) -> None:
    assert parse_reference(text) is None


def test_ids_in_prose_are_four_digit_or_namespaced_only() -> None:
    assert only("[RESOLVED: as T101 shows]").targets == ()
    marker = only("[RESOLVED: see T0101 and MUFFIN-T0102]")
    assert targets(marker) == [(None, 1, "T", 1, True), ("muffin", 1, "T", 2, False)]
