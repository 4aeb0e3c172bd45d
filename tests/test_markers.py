"""Tests for the tolerant marker parser: synthetic variants plus recorded-corpus checks."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concord.orchestrator.judging.markers import Marker, ParsedAnswer, parse_answer
from concord.orchestrator.judging.written_ids import Reference, ids_in_prose, parse_reference
from concord.store.model import MOVE_TYPES
from concord.store.rules import REF_TYPES
from tests.conftest import corpus_dialogue


def _d58() -> Path:
    return corpus_dialogue("2026-02-06T1839Z-rfc-0058-")


def _jira() -> Path:
    return corpus_dialogue("2026-03-11T1341Z-jira-")


def _answers(folder: Path) -> list[Path]:
    """Expert answer files of one round folder (prompts left out)."""
    return sorted(p for p in folder.glob("*.md") if not p.name.endswith(".prompt.md"))


def _answers_of(dialogue: Path) -> list[Path]:
    """Expert answer files of every round of a dialogue."""
    return [p for folder in sorted(dialogue.glob("round-*")) if folder.is_dir() for p in _answers(folder)]


def _parse(path: Path) -> ParsedAnswer:
    return parse_answer(path.read_text(encoding="utf-8"))


def _one(text: str) -> Marker:
    """Parse text that holds exactly one marker and return it."""
    markers = parse_answer(text).markers
    assert len(markers) == 1, markers
    return markers[0]


def _target_ids(marker: Marker) -> list[tuple[str | None, int | None, str, int]]:
    return [(r.expert, r.round, r.kind, r.number) for r in marker.targets]


# --- canonical answer ---------------------------------------------------------------------------

CANONICAL = """[PERSPECTIVE P01: Caching belongs at the edge]
Edge caches cut the round trips in half.
They also hide origin outages.

[PERSPECTIVE P02: Invalidation stays the hard part]
Purging by tag keeps it manageable.

[TENSION T01: Freshness vs. cost]
Shorter lifetimes raise the bill.

---
"""


def test_canonical_answer_parses_into_markers_with_labels_and_bodies() -> None:
    parsed = parse_answer(CANONICAL)
    assert [m.kind for m in parsed.markers] == ["perspective", "perspective", "tension"]
    first, second, tension = parsed.markers
    assert (first.local_id, first.label, first.line) == ("P01", "Caching belongs at the edge", 1)
    assert first.body == "Edge caches cut the round trips in half.\nThey also hide origin outages."
    assert first.raw == "[PERSPECTIVE P01: Caching belongs at the edge]"
    assert second.body == "Purging by tag keeps it manageable."
    assert (tension.local_id, tension.label) == ("T01", "Freshness vs. cost")
    assert tension.body == "Shorter lifetimes raise the bill."
    assert parsed.ends_with_rule
    assert parsed.has_content
    assert not parsed.converge
    assert parsed.word_count == len(CANONICAL.split())
    assert parsed.of("perspective") == [first, second]
    assert parsed.unknown == []


def test_body_stops_at_rule_and_keeps_text_after_the_bracket() -> None:
    text = "[TENSION T02: Latency]  shows up under load\nmore detail\n---\nafter the rule\n"
    marker = _one(text)
    assert marker.body == "shows up under load\nmore detail"


def test_body_leaves_the_heading_prefix_to_the_next_marker() -> None:
    text = "[PERSPECTIVE P01: One]\nfirst body\n## [TENSION T01: Two]\nsecond body\n"
    first, second = parse_answer(text).markers
    assert first.body == "first body"
    assert second.body == "second body"


def test_answer_without_trailing_rule() -> None:
    parsed = parse_answer("[PERSPECTIVE P01: Alone]\nno rule here\n--- \nstill more\n")
    assert not parsed.ends_with_rule
    assert parse_answer("[PERSPECTIVE P01: x]\nbody\n---\n\n  \n").ends_with_rule


@pytest.mark.parametrize(
    "line",
    [
        "# [PERSPECTIVE P01: Decorated]",
        "## [PERSPECTIVE P01: Decorated]",
        "**[PERSPECTIVE P01: Decorated]**",
        "- [PERSPECTIVE P01: Decorated]",
        "> [PERSPECTIVE P01: Decorated]",
        "1. [PERSPECTIVE P01: Decorated]",
        "[ PERSPECTIVE P01: Decorated ]",
        "[PERSPECTIVE P01:Decorated]",
    ],
)
def test_marker_prefixes_and_spacing(line: str) -> None:
    marker = _one(line + "\nbody text\n")
    assert (marker.kind, marker.local_id, marker.label) == ("perspective", "P01", "Decorated")
    assert marker.body == "body text"


def test_perspective_numbering_carried_over_and_missing_id() -> None:
    assert _one("[PERSPECTIVE P04: Carried on]").local_id == "P04"
    marker = _one("[PERSPECTIVE: No number given]")
    assert (marker.local_id, marker.label) == (None, "No number given")


@pytest.mark.parametrize("local_id", ["T01", "T04-R1", "T01-RESPONSE", "T-NEW", "T12"])
def test_tension_local_id_variants(local_id: str) -> None:
    marker = _one(f"[TENSION {local_id}: Something unresolved]\nwhy it matters")
    assert (marker.kind, marker.local_id, marker.label) == ("tension", local_id, "Something unresolved")


def test_tension_label_may_contain_dashes_and_colons() -> None:
    marker = _one("[TENSION T03: Speed -- safety: pick one]")
    assert marker.label == "Speed -- safety: pick one"


# --- refinement / concession / resolved ---------------------------------------------------------

REFINEMENT_CASES = [
    ("[REFINEMENT: Narrowing the earlier claim]", "Narrowing the earlier claim", []),
    ("[REFINEMENT on T01]", "", [(None, None, "T", 1)]),
    ("[REFINEMENT on T02: Scope it to reads]", "Scope it to reads", [(None, None, "T", 2)]),
    ("[REFINEMENT T01: Sharper wording]", "Sharper wording", [(None, None, "T", 1)]),
    ("[REFINEMENT T03]", "", [(None, None, "T", 3)]),
    ("[REFINEMENT on T01 — Keys and rotation]", "Keys and rotation", [(None, None, "T", 1)]),
    ("[REFINEMENT on T04 -- narrower now]", "narrower now", [(None, None, "T", 4)]),
    ("[REFINEMENT on T05 / former Scone T02]", "former Scone T02", [(None, None, "T", 5)]),
    (
        "[REFINEMENT: Sharpening DONUT R1-T01 into a gate]",
        "Sharpening DONUT R1-T01 into a gate",
        [("donut", 1, "T", 1)],
    ),
    ("[REFINEMENT: Restating CUPCAKE-T01]", "Restating CUPCAKE-T01", [("cupcake", None, "T", 1)]),
]


@pytest.mark.parametrize(("text", "label", "targets"), REFINEMENT_CASES)
def test_refinement_variants(text: str, label: str, targets: list[tuple[object, ...]]) -> None:
    marker = _one(text + "\nwhy\n")
    assert marker.kind == "refinement"
    assert marker.label == label
    assert _target_ids(marker) == targets
    assert marker.body == "why"


CONCESSION_CASES = [
    ("[CONCESSION: The cost argument holds]", "The cost argument holds", [], None),
    ("[CONCESSION on T06]", "", [(None, None, "T", 6)], None),
    ("[CONCESSION on T02: Scone is right]", "Scone is right", [(None, None, "T", 2)], None),
    ("[CONCESSION on T03 -- adopting the queue]", "adopting the queue", [(None, None, "T", 3)], None),
    ("[CONCESSION to Donut on T04]", "", [(None, None, "T", 4)], "donut"),
    ("[CONCESSION to Expert B on T0105: fair]", "fair", [(None, 1, "T", 5)], "expert b"),
]


@pytest.mark.parametrize(("text", "label", "targets", "addressee"), CONCESSION_CASES)
def test_concession_variants(text: str, label: str, targets: list[tuple[object, ...]], addressee: str | None) -> None:
    marker = _one(text + "\nbecause\n")
    assert marker.kind == "concession"
    assert (marker.label, marker.addressee) == (label, addressee)
    assert _target_ids(marker) == targets


def test_concession_with_its_text_after_the_bracket() -> None:
    text = "[CONCESSION to Eclair on T01]: The join key matters more than I said.\nMore prose.\n"
    marker = _one(text)
    assert marker.label == "The join key matters more than I said."
    assert marker.addressee == "eclair"
    assert _target_ids(marker) == [(None, None, "T", 1)]
    assert marker.body == "The join key matters more than I said.\nMore prose."


RESOLVED_CASES = [
    ("[RESOLVED T01]", "", [(None, None, "T", 1)]),
    ("[RESOLVED T1]", "", [(None, None, "T", 1)]),
    ("[RESOLVED T02: Queue ownership]", "Queue ownership", [(None, None, "T", 2)]),
    ("[RESOLVED SCONE R1-T01]", "", [("scone", 1, "T", 1)]),
    ("[RESOLVED SCONE R2-T01: Retry budget]", "Retry budget", [("scone", 2, "T", 1)]),
    (
        "[RESOLVED DONUT R1-T01, SCONE R1-T02, CUPCAKE R1-T01]",
        "",
        [("donut", 1, "T", 1), ("scone", 1, "T", 2), ("cupcake", 1, "T", 1)],
    ),
    ("[RESOLVED on T02]", "", [(None, None, "T", 2)]),
    ("[RESOLVED on T03: Keychain first]", "Keychain first", [(None, None, "T", 3)]),
    ("[RESOLVED on T07 -- if the lint rule lands]", "if the lint rule lands", [(None, None, "T", 7)]),
    ("[RESOLVED on T01 — by the split]", "by the split", [(None, None, "T", 1)]),
    ("[RESOLVED: The schema question (judge's leftover)]", "The schema question (judge's leftover)", []),
    ("[RESOLVED -- accepting the two-step import]", "accepting the two-step import", []),
    (
        "[RESOLVED: DONUT R1-T01 (retry storms)]",
        "DONUT R1-T01 (retry storms)",
        [("donut", 1, "T", 1)],
    ),
    ("[RESOLVED T01, T02 and T03]", "", [(None, None, "T", 1), (None, None, "T", 2), (None, None, "T", 3)]),
    ("[RESOLVED T0103]", "", [(None, 1, "T", 3)]),
]


@pytest.mark.parametrize(("text", "label", "targets"), RESOLVED_CASES)
def test_resolved_variants(text: str, label: str, targets: list[tuple[object, ...]]) -> None:
    marker = _one(text)
    assert marker.kind == "resolved"
    assert marker.label == label
    assert _target_ids(marker) == targets


def test_resolved_keeps_the_leading_target_and_the_id_in_its_label() -> None:
    marker = _one("[RESOLVED T01: SCONE-T01 (missing fallback)]")
    assert marker.label == "SCONE-T01 (missing fallback)"
    assert [r.raw for r in marker.targets] == ["T01", "SCONE-T01"]
    assert _target_ids(marker) == [(None, None, "T", 1), ("scone", None, "T", 1)]


# --- convergence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[MOVE:CONVERGE]",
        "## [MOVE:CONVERGE]",
        "**[MOVE:CONVERGE]**",
        "**Moves**: [MOVE:CONVERGE]",
        "I am ready, so I signal **[MOVE:CONVERGE]** now.",
        "[MOVE: CONVERGE]",
    ],
)
def test_converge_signal_forms(text: str) -> None:
    parsed = parse_answer(f"Some prose.\n{text}\nmore prose\n")
    assert parsed.converge
    assert [m.kind for m in parsed.markers] == ["converge"]


def test_converge_in_table_rows_is_not_a_signal() -> None:
    parsed = parse_answer("| Move | Note |\n|---|---|\n| **[MOVE:CONVERGE]** | ok |\n")
    assert not parsed.converge
    (marker,) = parsed.markers
    assert (marker.kind, marker.in_table) == ("converge", True)
    assert parse_answer("| MOVE | 1 | CONVERGE |\n").markers == []
    assert not parse_answer("| MOVE | 1 | CONVERGE |\n").converge


def test_bold_converge_line_counts_and_marker_variants_map_to_their_kinds() -> None:
    text = "**[MOVE:CONVERGE]**\n[ACCEPT]\n[DEFER] for later\n[CONCEDE-WITH-SCOPE: reads only]\n[SHRUG]\n"
    parsed = parse_answer(text)
    assert parsed.converge
    assert [(m.kind, m.name, m.line) for m in parsed.markers[1:]] == [
        ("concession", "accept", 2),
        ("defer", "defer", 3),
        ("concession", "concede-with-scope", 4),
        ("unknown", "shrug", 5),
    ]
    assert parsed.markers[3].label == "reads only"


@pytest.mark.parametrize(
    ("text", "kind", "name", "number"),
    [
        ("[RESOLUTION T03: Use a queue]", "resolved", "resolution", 3),
        ("[ACKNOWLEDGED T09: Fair point]", "concession", "acknowledged", 9),
        ("[DEFER T04: after the pilot]", "defer", "defer", 4),
    ],
)
def test_marker_variants_keep_their_targets(text: str, kind: str, name: str, number: int) -> None:
    (marker,) = parse_answer(text).markers
    assert (marker.kind, marker.name) == (kind, name)
    assert [(r.kind, r.number) for r in marker.targets] == [("T", number)]


# --- extended vocabulary ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local_id", "kind"),
    [
        ("MUFFIN-P0101", "perspective"),
        ("MUFFIN-T0102", "tension"),
        ("SCONE-R0201", "recommendation"),
        ("DONUT-E0103", "evidence"),
        ("PASTRY21-C0301", "claim"),
    ],
)
def test_extended_local_ids(local_id: str, kind: str) -> None:
    marker = _one(f"[{local_id}: A labelled entity]\ndetails")
    assert (marker.kind, marker.local_id, marker.label, marker.body) == (
        kind,
        local_id,
        "A labelled entity",
        "details",
    )


def test_stance_marker() -> None:
    marker = _one("[MUFFIN-S0101: CONDITIONAL | 0.85]")
    assert (marker.kind, marker.local_id, marker.name, marker.confidence) == (
        "stance",
        "MUFFIN-S0101",
        "conditional",
        0.85,
    )
    assert _one("[SCONE-S0201: APPROVE]").confidence is None


@pytest.mark.parametrize(
    "ref_type", ["SUPPORT", "OPPOSE", "REFINE", "ADDRESS", "RESOLVE", "REOPEN", "QUESTION", "DEPEND"]
)
def test_ref_markers(ref_type: str) -> None:
    marker = _one(f"[RE:{ref_type} P0101]")
    assert (marker.kind, marker.name) == ("ref", ref_type.lower())
    assert marker.targets == (Reference("P0101", "P", 1, round=1, is_global=True),)


@pytest.mark.parametrize("move", ["DEFEND", "CHALLENGE", "BRIDGE", "REQUEST", "CONCEDE"])
def test_move_markers(move: str) -> None:
    marker = _one(f"[MOVE:{move} DONUT-T0102]")
    assert (marker.kind, marker.name) == ("move", move.lower())
    assert _target_ids(marker) == [("donut", 1, "T", 2)]


def test_verdict_markers() -> None:
    dissent, minority = parse_answer("[DISSENT]\nI disagree.\n[MINORITY VERDICT: Keep the old store]\n").markers
    assert (dissent.kind, dissent.body) == ("dissent", "I disagree.")
    assert (minority.kind, minority.label) == ("minority_verdict", "Keep the old store")


# --- unknown and non-markers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "targets"),
    [
        ("[NOTED T09: Fair point]", "noted", [(None, None, "T", 9)]),
        ("[MOVE:CONDITIONAL-CONVERGE]", "move:conditional-converge", []),
        ("[RE:ENDORSE P0101]", "re:endorse", [(None, 1, "P", 1)]),
        ("[PERSPECTIV P01: typo]", "perspectiv", [(None, None, "P", 1)]),
        ("[CONVERGENCE CONFIRMED]", "convergence", []),
    ],
)
def test_unknown_markers_are_kept_with_their_name(text: str, name: str, targets: list[tuple[object, ...]]) -> None:
    parsed = parse_answer(f"intro\n{text}\n")
    (marker,) = parsed.unknown
    assert (marker.kind, marker.name, marker.line) == ("unknown", name, 2)
    assert _target_ids(marker) == targets
    assert not parsed.has_content


@pytest.mark.parametrize(
    "text",
    [
        "See [the RFC](https://example.org/rfc) for details.",
        "See [RFC 0058](https://example.org/rfc).",
        "- [x] done\n- [ ] open",
        "A [lowercase aside] in prose.",
        "The regex `[A-Za-z0-9]` matches ids.",
        "A [T01] reference and [P0101] in brackets.",
        "Unclosed [PERSPECTIVE P01: never ends",
        "[Perspective P01: wrong case]",
    ],
)
def test_not_markers(text: str) -> None:
    assert parse_answer(text).markers == []


# --- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T02", Reference("T02", "T", 2)),
        ("P0102", Reference("P0102", "P", 2, round=1, is_global=True)),
        ("T0215", Reference("T0215", "T", 15, round=2, is_global=True)),
        ("MACARON-T01", Reference("MACARON-T01", "T", 1, expert="macaron")),
        ("STRUDEL R1-T01", Reference("STRUDEL R1-T01", "T", 1, expert="strudel", round=1)),
        ("STRUDEL-R1-T01", Reference("STRUDEL-R1-T01", "T", 1, expert="strudel", round=1)),
        ("MUFFIN-P0101", Reference("MUFFIN-P0101", "P", 1, expert="muffin", round=1)),
        ("T04-R1", Reference("T04-R1", "T", 4, round=1)),
        ("R1-T03", Reference("R1-T03", "T", 3, round=1)),
        ("E07", Reference("E07", "E", 7)),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["", "T-NEW", "T01-RESPONSE", "on T01", "X01", "t01", "T", "the T01"])
def test_parse_reference_rejects_non_ids(text: str) -> None:
    assert parse_reference(text) is None


@pytest.mark.parametrize("text", ["T012", "P123", "MUFFIN-T012", "STRUDEL R1-T012", "T012-R1", "T01234"])
def test_three_digit_ids_are_refused_not_read_as_global(text: str) -> None:
    assert parse_reference(text) is None
    assert ids_in_prose(f"as {text} says") == []


@pytest.mark.parametrize(
    ("text", "is_global"),
    [("T0103", True), ("P0001", True), ("T01", False), ("T1", False), ("T04-R1", False), ("MUFFIN-P0101", False)],
)
def test_only_a_bare_four_digit_id_is_global(text: str, is_global: bool) -> None:
    ref = parse_reference(text)
    assert ref is not None and ref.is_global is is_global


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("T01 resolves with Muffin's three-tier policy", [(None, None, "T", 1)]),
        ("Verdict immutability dissolves MUFFIN R1-T01 but", [("muffin", 1, "T", 1)]),
        ("as STRUDEL-R1-T02 and MACARON-T01 said", [("strudel", 1, "T", 2), ("macaron", None, "T", 1)]),
        ("P0102 and T0215 both", [(None, 1, "P", 2), (None, 2, "T", 15)]),
        ("See P01", [(None, None, "P", 1)]),  # a capitalised word before a bare id names no expert
        ("in R1 we said P1 and T3", []),  # one-digit bare ids are words in prose (R1 is round 1)
        ("XT0101 and T0101x and t0101", []),  # only whole words
    ],
)
def test_ids_in_prose(text: str, found: list[tuple[object, ...]]) -> None:
    assert [(r.expert, r.round, r.kind, r.number) for r in ids_in_prose(text)] == found


def test_marker_names_are_lowercase_words_of_the_store_vocabulary() -> None:
    text = (
        "[RE:SUPPORT P0101]\n[MOVE:DEFEND P0101]\n[MOVE:CONVERGE]\n[MUFFIN-S0101: APPROVE | 0.9]\n[ACKNOWLEDGED T09]\n"
    )
    markers = parse_answer(text).markers
    assert [m.name for m in markers] == ["support", "defend", "converge", "approve", "acknowledged"]
    assert markers[0].name in REF_TYPES and markers[1].name in MOVE_TYPES and markers[2].name in MOVE_TYPES


# --- robustness ---------------------------------------------------------------------------------

NASTY_INPUTS = [
    "",
    "\n\n\n",
    "[",
    "]",
    "[]",
    "[[PERSPECTIVE P01: nested]]",
    "[PERSPECTIVE P01: unbalanced",
    "]]]] [[[[ [RESOLVED on] [RESOLVED to] [CONCESSION to]",
    "[MUFFIN-S0101: | ]",
    "[RE:SUPPORT]",
    "[MOVE:]",
    "\r\n[TENSION T01: crlf]\r\nbody\r\n---\r\n",
    "\x00[\x00PERSPECTIVE\x00]",
    "[RESOLVED T٣]",
    "[" * 200_000,
    "[A" * 100_000,
    "[RESOLVED " + " " * 200_000 + "]",
    "[RESOLVED " + "T01, " * 40_000 + "]",
    "[MUFFIN-S0101: APPROVE | " + "1" * 100_000 + "x]",
    "[RESOLVED: " + "Scone " * 50_000 + "]",
    "[PERSPECTIVE P01: x]\n" * 20_000,
]


@pytest.mark.parametrize("text", NASTY_INPUTS, ids=range(len(NASTY_INPUTS)))
def test_parse_never_raises_and_stays_fast(text: str) -> None:
    started = time.perf_counter()
    parsed = parse_answer(text)
    assert time.perf_counter() - started < 2.0
    assert isinstance(parsed.markers, list)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]:-— \n|*#PTRECS0123456789ONVERGMUFINacdeo")), max_size=300))
def test_parse_never_raises_on_marker_soup(text: str) -> None:
    parsed = parse_answer(text)
    for marker in parsed.markers:
        assert marker.raw.startswith("[") and marker.raw.endswith("]")
        assert 1 <= marker.line <= text.count("\n") + 1


# --- recorded corpus (protocol.md §9) -----------------------------------------------------------


@pytest.mark.corpus
def test_check1_round0_answer_labels_bodies_and_rule() -> None:
    path = _d58() / "round-0" / "croissant.md"
    parsed = _parse(path)
    assert len(parsed.of("perspective")) == 2
    assert len(parsed.of("tension")) == 1
    assert parsed.ends_with_rule
    source = path.read_text(encoding="utf-8").split("\n")
    for marker in parsed.markers:
        assert marker.body
        line = source[marker.line - 1]
        assert marker.label == line[line.index(": ") + 2 : line.rindex("]")].strip()


@pytest.mark.corpus
def test_check2_round0_totals() -> None:
    files = _answers(_d58() / "round-0")
    assert len(files) == 10
    parsed = [_parse(p) for p in files]
    assert sum(len(p.of("perspective")) for p in parsed) == 20
    assert sum(len(p.of("tension")) for p in parsed) == 10


@pytest.mark.corpus
def test_check3_multi_target_resolved() -> None:
    (resolved,) = _parse(_d58() / "round-2" / "cannoli.md").of("resolved")
    assert _target_ids(resolved) == [
        ("muffin", 1, "T", 1),
        ("macaron", 1, "T", 1),
        ("eclair", 1, "T", 1),
    ]


@pytest.mark.corpus
def test_check5_final_round_signals_once_per_expert() -> None:
    files = _answers(_d58() / "round-3")
    assert len(files) == 6
    for path in files:
        parsed = _parse(path)
        signals = [m for m in parsed.of("converge") if not m.in_table]
        assert parsed.converge and len(signals) == 1, path.name
    assert sum(_parse(p).converge for p in files) / len(files) == 1.0


@pytest.mark.corpus
def test_check6_all_jira_final_answers_signal_and_table_rows_do_not() -> None:
    folder = _jira() / "round-2"
    files = _answers(folder)
    assert len(files) == 12
    assert all(_parse(p).converge for p in files)
    for name in ("eclair", "strudel"):
        path = folder / f"{name}.md"
        source = path.read_text(encoding="utf-8").split("\n")
        signals = [m for m in _parse(path).of("converge") if not m.in_table]
        assert signals and all(source[m.line - 1].startswith("#") for m in signals)
        rows = [line for line in source if line.startswith("|") and "MOVE" in line and "CONVERGE" in line]
        assert rows, f"{name}: expected a MOVE/CONVERGE table row"
        for row in rows:
            assert not parse_answer(row).converge
        without_headings = "\n".join(line for line in source if not line.startswith("#"))
        assert not parse_answer(without_headings).converge


@pytest.mark.corpus
def test_check8_jira_round1_variants() -> None:
    brioche = _parse(_jira() / "round-1" / "brioche.md")
    assert {"T-NEW", "T01-RESPONSE"} <= {m.local_id for m in brioche.of("tension")}
    beignet = _parse(_jira() / "round-1" / "beignet.md")
    expected = {"refinement": 1, "resolved": 2, "concession": 6}
    for kind, number in expected.items():
        matching = [m for m in beignet.of(kind) if _target_ids(m) == [(None, None, "T", number)]]
        assert matching, f"no {kind} on T{number:02d}"
        assert matching[0].raw == f"[{kind.upper()} on T{number:02d}]"


# An independent notion of "marker-like": an uppercase word of two or more letters right after "[".
_MARKER_LIKE = re.compile(r"\[\s*[A-Z]{2}[A-Z0-9:_-]*(?=[\s:,\]])[^\[\]\n]*\](?!\()")
_KEYWORD_KIND = {
    "PERSPECTIVE": "perspective",
    "TENSION": "tension",
    "REFINEMENT": "refinement",
    "CONCESSION": "concession",
    "RESOLVED": "resolved",
    "MOVE:CONVERGE": "converge",
}


@pytest.mark.corpus
def test_check9_every_corpus_bracket_marker_is_classified() -> None:
    totals: Counter[str] = Counter()
    files = [p for dialogue in (_d58(), _jira()) for p in _answers_of(dialogue)]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        parsed = parse_answer(text)
        totals.update(m.kind for m in parsed.markers)
        seen = {(m.line, m.raw) for m in parsed.markers}
        for number, line in enumerate(text.split("\n"), start=1):
            for match in _MARKER_LIKE.finditer(line):
                assert (number, match.group(0)) in seen, f"{path}:{number} dropped {match.group(0)}"
                keyword = match.group(0)[1:].split(" ")[0].rstrip(":]")
                if keyword in _KEYWORD_KIND:
                    kinds = {m.kind for m in parsed.markers if (m.line, m.raw) == (number, match.group(0))}
                    assert kinds == {_KEYWORD_KIND[keyword]}, f"{path}:{number}"
    print("\nmarker totals over the recorded answers:", dict(sorted(totals.items())))
    assert totals["perspective"] and totals["tension"] and totals["resolved"]
