"""Each W/C/T/R term of the rules judge (protocol §5, rules_judge docstring), pinned by its weight."""

from __future__ import annotations

from concord.store.model import Score
from tests.judged_rounds import judge


def test_wisdom_is_three_per_perspective_and_two_per_refinement() -> None:
    judged = judge(
        {
            "muffin": (
                "[PERSPECTIVE P01: Queue the writes]\nA queue keeps order.\n\n"
                "[PERSPECTIVE P02: Shard by tenant]\nTenants rarely share rows.\n\n"
                "[REFINEMENT on T0002: order only within a tenant]\nGlobal order is not needed.\n---\n"
            ),
            "cupcake": "[PERSPECTIVE P01: Sign every checkpoint]\nSigned heads stop rollback.\n---\n",
            "scone": "[SCONE-R0101: Ship the read path first]\nReaders decide adoption.\n---\n",
        }
    )
    assert judged.per_expert == {
        "muffin": Score(w=3 * 2 + 2 * 1),
        "cupcake": Score(w=3),
        "scone": Score(w=3),
    }


def test_an_empty_refinement_or_perspective_earns_no_wisdom() -> None:
    judged = judge({"muffin": "[PERSPECTIVE P01: ]\n\n[REFINEMENT on T0001]\n---\n"})
    assert judged.per_expert["muffin"].w == 0


def test_consistency_is_two_per_resolution_and_one_per_concession() -> None:
    judged = judge(
        {
            "muffin": (
                "[PERSPECTIVE P01: Order within a tenant]\nThat settles it.\n\n"
                "[RESOLVED T0002]\n"
                "[CONCESSION on T0001: the audit cost is real]\n"
                "[MOVE:CONCEDE P0001]\n---\n"
            ),
            "cupcake": "[PERSPECTIVE P01: Audit prompts only]\nPrompts are small.\n\n[RE:RESOLVE T0002]\n---\n",
            "scone": (
                "[PERSPECTIVE P01: Both are settled]\nNothing is left.\n\n"
                "[RESOLVED T0099]\n[RESOLVED T0001, T0002]\n---\n"
            ),
        }
    )
    muffin, cupcake, scone = (judged.per_expert[name] for name in ("muffin", "cupcake", "scone"))
    assert muffin.c == 2 * 1 + 1 * 2
    assert cupcake.c == 2
    assert scone.c == 2  # the unknown T0099 resolves nothing; one marker naming two tensions is one resolution
    assert any("T0099" in warning for warning in judged.warnings)


def test_a_resolution_naming_only_non_tensions_earns_no_consistency() -> None:
    judged = judge({"muffin": "[PERSPECTIVE P01: Done]\nAll good.\n\n[RESOLVED P0001]\n---\n"})
    assert judged.per_expert["muffin"].c == 0


def test_truth_is_two_per_evidence_one_per_claim_and_one_per_grounded_entity() -> None:
    judged = judge(
        {
            "muffin": (
                "[MUFFIN-E0101: Benchmarks]\nMeasured 40 ms at the median.\n\n"
                "[MUFFIN-E0102: Profiles]\nFlame graphs show the lock.\n\n"
                "[MUFFIN-C0101: Reads dominate]\nMost traffic reads.\n\n"
                "[PERSPECTIVE P01: Cache the reads]\nSee `cache.py` for the layer.\n---\n"
            ),
            "cupcake": (
                "[PERSPECTIVE P01: Follow the spec]\nhttps://example.org/spec says so.\n\n"
                "[PERSPECTIVE P02: Budget the audit]\nIt costs about 12 percent.\n\n"
                "[PERSPECTIVE P03: Keep it small]\nIt costs about 7 percent.\n---\n"
            ),
            "scone": "[SCONE-C0101: Users want history]\nThey asked for it.\n---\n",
        }
    )
    assert judged.per_expert["muffin"] == Score(w=3, t=2 * 2 + 1 * 1 + 1)
    assert judged.per_expert["cupcake"] == Score(w=9, t=2)  # a link and a two-digit number; one digit is not grounded
    assert judged.per_expert["scone"] == Score(t=1)


def test_relationships_count_distinct_entities_of_others_and_distinct_experts_named() -> None:
    judged = judge(
        {
            "muffin": (
                "[PERSPECTIVE P01: Build on the others]\nAs Cupcake and Scone said, twice over: Cupcake, Scone. "
                "Muffin agrees with Muffin, and Strudel is not on the panel.\n\n"
                "[RE:SUPPORT T0001]\n[RE:SUPPORT T0001]\n[RE:DEPEND P0001]\n[RE:SUPPORT P0002]\n---\n"
            ),
            "cupcake": "[PERSPECTIVE P01: On my own]\nNothing borrowed.\n---\n",
        }
    )
    assert judged.per_expert["muffin"] == Score(w=3, r=2 + 2)
    assert judged.per_expert["cupcake"] == Score(w=3)
    assert "scone" not in judged.per_expert


def test_round_totals_are_the_sum_of_the_experts_scores() -> None:
    judged = judge(
        {
            "muffin": "[MUFFIN-E0101: Benchmarks]\nMeasured.\n\n[RE:SUPPORT P0001]\n---\n",
            "cupcake": "[PERSPECTIVE P01: Sign checkpoints]\nStops rollback.\n\n[RESOLVED T0001]\n---\n",
        }
    )
    assert judged.batch.scores == judged.per_expert == {"muffin": Score(t=2, r=1), "cupcake": Score(w=3, c=2)}
    assert "ALIGNMENT 8 (W:3 C:2 T:2 R:1)." in judged.batch.summary.splitlines()
