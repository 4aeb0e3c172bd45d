"""The rules judge's tension lifecycle: who moves a tension where, with which reason, reference and aliases."""

from __future__ import annotations

from concord.store.model import Move, PanelSeat, Recommendation, StatusChange, Tension
from tests.judged_rounds import EARLIER, entity, judge, snapshot


def test_acts_apply_in_panel_order_with_actor_reason_and_source() -> None:
    judged = judge(
        {
            "muffin": (
                "[PERSPECTIVE P01: Order within a tenant]\nThat settles it.\n\n"
                "[RESOLVED T01]\n[CONCESSION on T0001: fair]\n---\n"
            ),
            "cupcake": "[REFINEMENT on MUFFIN-T01]\nPartial order is enough.\n\n[RE:REOPEN T0001]\n---\n",
            "scone": "[PERSPECTIVE P01: Watch it]\nx\n[RE:ADDRESS T0002]\n[RE:OPPOSE T0001]\n---\n",
        }
    )
    assert judged.batch.status_changes == [
        StatusChange("T0002", "resolved", ["muffin"], "MUFFIN-P0101", "resolved by muffin, its author (line 4)"),
        StatusChange("T0001", "addressed", ["muffin"], "MUFFIN-P0101", "conceded by muffin (line 5)"),
        StatusChange("T0001", "open", ["cupcake"], "CUPCAKE-P0101", "re-opened by cupcake, its author (line 4)"),
    ]
    assert judged.batch.moves == [Move(1, "muffin", 1, "concede", ["T0001"], "fair")]
    assert judged.warnings == []


def test_a_refinement_addresses_the_tension_it_names_and_refines_a_perspective() -> None:
    judged = judge({"scone": "[PERSPECTIVE P01: a]\nb\n[REFINEMENT on P0001, T0001: both]\nnarrower\n---\n"})
    refinement = judged.batch.entities[1]
    assert [(r.ref_type, r.target) for r in refinement.references] == [("refine", "P0001"), ("address", "T0001")]
    assert judged.batch.status_changes == [
        StatusChange("T0001", "addressed", ["scone"], "SCONE-P0102", "addressed by scone (line 3)")
    ]


def test_a_refinement_of_another_kind_depends_on_it() -> None:
    earlier = snapshot(*EARLIER.entities.values(), entity(Recommendation, "R0001", "SCONE-R0001", "Ship reads first"))
    judged = judge({"muffin": "[REFINEMENT on R0001: reads behind a flag]\nflagged\n---\n"}, earlier=earlier)
    assert [(r.ref_type, r.target) for r in judged.batch.entities[0].references] == [("depend", "R0001")]
    assert judged.batch.status_changes == []


def test_a_bare_refinement_still_addresses_the_tensions_it_names() -> None:
    judged = judge({"cupcake": "[PERSPECTIVE P01: a]\nb\n[REFINEMENT on T0002]\n[REFINEMENT on P0002]\n---\n"})
    assert judged.batch.status_changes == [
        StatusChange("T0002", "addressed", ["cupcake"], "CUPCAKE-P0101", "addressed by cupcake (line 3)")
    ]
    assert "cupcake's refinement marker on line 3 has no text; no entity made" in judged.batch.entities[0].warnings
    assert any("names P0002, which is not a tension" in w for w in judged.warnings)


def test_the_author_conceding_a_tension_resolves_it_and_a_reopen_reopens_a_resolved_one() -> None:
    earlier = snapshot(
        entity(Tension, "T0001", "CUPCAKE-T0001", "Audit depth", "open"),
        entity(Tension, "T0002", "MUFFIN-T0001", "Ordering", "resolved"),
    )
    judged = judge(
        {"cupcake": "[PERSPECTIVE P01: a]\nb\n[CONCESSION on T0001: it was not worth it]\n[RE:REOPEN T0002]\n---\n"},
        earlier=earlier,
    )
    assert [(c.id, c.status, c.reason) for c in judged.batch.status_changes] == [
        ("T0001", "resolved", "conceded by cupcake, its author (line 3)"),
        ("T0002", "reopened", "re-opened by cupcake (line 4)"),
    ]


def test_addressed_tensions_are_confirmed_unless_disputed() -> None:
    earlier = snapshot(
        entity(Tension, "T0001", "CUPCAKE-T0001", "x", "addressed"),
        entity(Tension, "T0002", "MUFFIN-T0001", "y", "addressed"),
        entity(Tension, "T0003", "MUFFIN-T0002", "z", "resolved"),
    )
    judged = judge(
        {"muffin": "[PERSPECTIVE P01: a]\nb\n---\n", "cupcake": "[PERSPECTIVE P01: c]\nd\n[RE:OPPOSE T0002]\n---\n"},
        earlier=earlier,
    )
    assert judged.batch.status_changes == [
        StatusChange("T0001", "resolved", [], None, "confirmed: no one re-opened or opposed it in round 1")
    ]
    assert judged.batch.open_tensions == 1


def test_recorded_judge_aliases_resolve_earlier_ids_and_attach_to_new_drafts() -> None:
    judged = judge(
        {"cupcake": "[PERSPECTIVE P01: a]\nb\n[RESOLVED T01]\n[TENSION T01: new one]\nwhy\n---\n"},
        aliases={"T01": "T0002", "MACARON-T01": "CUPCAKE-T0101", "first tension": "T0001", "T05": "T0099"},
    )
    assert judged.batch.status_changes == [
        StatusChange("T0002", "addressed", ["cupcake"], "CUPCAKE-P0101", "resolved by cupcake (line 3)")
    ]
    tension = next(d for d in judged.batch.entities if d.kind == "tension")
    assert (tension.local_id, tension.aliases) == ("CUPCAKE-T0101", ["MACARON-T01"])
    assert judged.warnings == [
        "alias 'first tension' ignored: alias 'first tension' is not shaped like an id (T01, MACARON-T01, ...)"
    ]


def test_an_authors_own_earlier_local_id_is_known_by_the_local_id_not_the_first_contributor() -> None:
    merged = Tension("T0001", 0, 1, "Merged", "Two authors.", "open", ["cupcake", "muffin"], local_id="MUFFIN-T0001")
    bare = Tension("T0002", 0, 2, "Imported", "No namespace.", "open", ["scone", "cupcake"], local_id="T02")
    judged = judge(
        {
            "muffin": "[PERSPECTIVE P01: a]\nb\n[RESOLVED T01]\n---\n",
            "scone": "[PERSPECTIVE P01: c]\nd\n[RESOLVED T02]\n---\n",
        },
        earlier=snapshot(merged, bare),
    )
    assert [(c.id, c.actors) for c in judged.batch.status_changes] == [("T0001", ["muffin"]), ("T0002", ["scone"])]
    assert judged.warnings == []


def test_experts_named_count_even_when_not_seated_this_round() -> None:
    judged = judge(
        {"muffin": "[PERSPECTIVE P01: As Eclair and Donut said]\nEclair measured it.\n---\n"},
        earlier=snapshot(experts=("eclair",)),
        panel=[PanelSeat("Muffin", "Storage"), PanelSeat("Donut", "Ops")],
    )
    assert judged.per_expert["muffin"].r == 2
