"""Novelty without the corpus: content words, Jaccard, novelty, and the judge's NEW_PERSPECTIVE_NOVELTY threshold."""

from __future__ import annotations

import pytest

from concord.orchestrator.judging.new_perspectives import NEW_PERSPECTIVE_NOVELTY
from concord.orchestrator.judging.similarity import STEM_LENGTH, content_words, jaccard, novelty
from tests.judged_rounds import judge


def test_content_words_lowercase_stem_and_drop_stop_words_and_single_letters() -> None:
    words = content_words("The Denormalization of a Table, denormalize it: x 42 and TABLE")
    assert words == frozenset({"denorm", "table", "42"})
    assert STEM_LENGTH == 6


def test_jaccard_is_shared_over_union_and_zero_for_two_empty_sets() -> None:
    assert jaccard(frozenset({"a", "b", "c"}), frozenset({"b", "c", "d"})) == 0.5
    assert jaccard(frozenset(), frozenset()) == 0.0


@pytest.mark.parametrize(
    ("words", "known", "expected"),
    [
        ({"queue", "order", "tenant", "zebra"}, {"queue", "order", "tenant"}, 0.25),
        ({"queue"}, set(), 1.0),
        ({"queue"}, {"queue"}, 0.0),
        (set(), {"queue"}, 0.0),
    ],
)
def test_novelty_is_the_share_of_words_not_known(words: set[str], known: set[str], expected: float) -> None:
    assert novelty(frozenset(words), frozenset(known)) == expected


def new_flags(*perspectives: tuple[str, str]) -> list[tuple[bool, float]]:
    """(new, novelty) of muffin's round-1 perspectives (label, body), against the round-0 snapshot."""
    answer = "".join(f"[PERSPECTIVE P{n:02d}: {label}]\n{body}\n\n" for n, (label, body) in enumerate(perspectives, 1))
    drafts = judge({"muffin": answer + "---\n"}).batch.entities
    return [(d.parameters["new"], d.parameters["novelty"]) for d in drafts if d.parameters is not None]


def test_a_perspective_exactly_at_the_threshold_is_new_and_just_below_is_not() -> None:
    assert NEW_PERSPECTIVE_NOVELTY == 0.25
    # Round 0 already said "rotate", "data", "keys" and "monthly"; "zebra" is the only new word.
    assert new_flags(("Rotate data keys", "zebra"), ("Rotate data keys monthly", "zebra")) == [
        (True, 0.25),
        (False, 0.2),
    ]


def test_a_round_one_perspective_is_compared_with_earlier_rounds_only() -> None:
    same = ("Zebra crossings", "Giraffes everywhere")
    assert new_flags(same, same) == [(True, 1.0), (True, 1.0)]
