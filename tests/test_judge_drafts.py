"""What the rules judge drafts from one round: local ids, derived labels, new experts, mentions, the summary."""

from __future__ import annotations

from concord.store.model import Expert, PanelSeat
from tests.judged_rounds import PANEL, judge


def drafted(answer: str) -> list[tuple[str, str, str, str]]:
    """(kind, local id, label, content) of what muffin's answer becomes."""
    return [(d.kind, d.local_id, d.label, d.content) for d in judge({"muffin": answer}).batch.entities]


def test_written_numbers_are_kept_and_the_rest_take_the_lowest_free_number() -> None:
    answer = (
        "[MOVE:CONVERGE]\n[PERSPECTIVE P02: a]\nb\n[PERSPECTIVE: c]\nd\n[PERSPECTIVE P02: e]\nf\n"
        "[PERSPECTIVE P00: g]\nh\n[PERSPECTIVE P100: i]\nj\n[TENSION P03: k]\nl\n---\n"
    )
    assert [(local_id, label) for _, local_id, label, _ in drafted(answer)] == [
        ("MUFFIN-P0102", "a"),
        ("MUFFIN-P0101", "c"),
        ("MUFFIN-P0103", "e"),
        ("MUFFIN-P0104", "g"),
        ("MUFFIN-P0105", "i"),
        ("MUFFIN-T0101", "k"),
    ]


def test_a_marker_with_only_a_label_makes_an_entity_whose_content_is_the_label() -> None:
    assert drafted("[PERSPECTIVE P01: Only a label]\n---\n") == [
        ("perspective", "MUFFIN-P0101", "Only a label", "Only a label")
    ]


def test_a_missing_label_is_the_bodys_first_sentence_without_decoration() -> None:
    [(_, _, label, content)] = drafted("[PERSPECTIVE]\n\n## **Queues** keep order. Then more.\n---\n")
    assert (label, content) == ("Queues keep order.", "## **Queues** keep order. Then more.")


def test_a_long_label_is_cut_at_a_word_before_120_characters() -> None:
    [(_, _, label, _)] = drafted("[PERSPECTIVE]\n" + "word " * 40 + "\n---\n")
    assert label == " ".join(["word"] * 24) + "…"
    exact = "x" * 120
    assert drafted(f"[PERSPECTIVE P01: {exact}]\nb\n---\n")[0][2] == exact


def test_a_body_of_decoration_only_falls_back_to_the_marker_text() -> None:
    [(kind, _, label, content)] = drafted("[REFINEMENT on T0002]\n**\n---\n")
    assert (kind, label, content) == ("perspective", "REFINEMENT on T0002", "**")


def test_seats_new_to_the_dialogue_are_recorded_as_experts_of_this_round() -> None:
    eclair = PanelSeat("Eclair", "Ops", "Wildcard", "created", 0.75, "latency")
    judged = judge({"muffin": "[PERSPECTIVE P01: a]\nb\n---\n"}, panel=[*PANEL, eclair])
    assert judged.batch.experts == [Expert("eclair", "Ops", "Wildcard", "created", 0.75, 1, focus="latency")]
    assert judged.batch.absent == ["cupcake", "scone", "eclair"]


def test_a_label_naming_an_earlier_id_builds_on_it_and_three_digit_ids_do_not() -> None:
    judged = judge(
        {"muffin": "[PERSPECTIVE P01: T01 needs a queue]\nb\n[PERSPECTIVE P02: P101 and Q0001 are new]\nd\n---\n"}
    )
    first, second = judged.batch.entities
    assert first.parameters is not None and first.parameters["builds_on"] == ["T0002"]
    assert second.parameters is not None and second.parameters["builds_on"] == []


def test_summary_states_the_round_in_the_judges_words() -> None:
    judged = judge(
        {
            "muffin": "[PERSPECTIVE P01: Order within a tenant]\nThat settles it.\n\n[RESOLVED T0002]\n---\n",
            "cupcake": "[PERSPECTIVE P01: Sign checkpoints]\nStops rollback.\n[TENSION T01: Key custody]\nWho holds it.\n---\n",
        }
    )
    assert judged.batch.summary.splitlines() == [
        "Round 1: 2 of 3 experts answered; absent: scone.",
        "Perspectives 2 (1 new), tensions raised 1.",
        "Open tensions 2, velocity 3, converge 0% (0/3 seated).",
        "ALIGNMENT 8 (W:6 C:2 T:0 R:0).",
        "T0002 -> resolved: resolved by muffin, its author (line 4)",
        "Authority: a RESOLVED from a tension's author resolves it; anyone else's marks it addressed, "
        "and it is resolved once a round passes with no one re-opening or opposing it, or the whole panel "
        "signals converge.",
    ]


def test_summary_of_a_full_round_has_no_absent_list() -> None:
    answers = {seat.name.lower(): "[PERSPECTIVE P01: a]\nb\n[MOVE:CONVERGE]\n---\n" for seat in PANEL}
    assert judge(answers).batch.summary.splitlines()[:3] == [
        "Round 1: 3 of 3 experts answered.",
        "Perspectives 3 (0 new), tensions raised 0.",
        "Open tensions 2, velocity 2, converge 100% (3/3 seated).",
    ]
