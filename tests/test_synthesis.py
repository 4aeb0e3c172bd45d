"""The synthesis of a dialogue's rounds: agreed and contested ids, computed from the snapshot alone."""

from __future__ import annotations

from concord.orchestrator.judging.synthesis import MOST_SUPPORTED, synthesise
from concord.store.model import Dialogue, Move, Perspective, Ref, Tension
from concord.store.snapshot import Snapshot


def snapshot() -> Snapshot:
    """Two rounds: P0001 backed by a ref and a concession, P0002 opposed, T0001 resolved, T0002 addressed."""
    entities = [
        Perspective("P0001", 0, 1, "staged rollout", "Roll out in stages.", "open", ["muffin"]),
        Perspective("P0002", 0, 2, "big bang", "Switch everything at once.", "open", ["scone"]),
        Tension("T0001", 0, 1, "speed versus safety", "x", "resolved", ["muffin"]),
        Tension("T0002", 0, 2, "cost versus upkeep", "y", "addressed", ["scone"]),
        Perspective("P0101", 1, 1, "stages per team", "z", "open", ["cupcake"]),
        Tension("T0101", 1, 1, "later tension", "w", "open", ["cupcake"]),
    ]
    return Snapshot(
        dialogue=Dialogue("d-abc", "local", "t", "q"),
        entities={e.id: e for e in entities},
        refs=[Ref("P0101", "support", "P0001"), Ref("P0101", "oppose", "P0002"), Ref("P0101", "address", "T0002")],
        moves=[Move(1, "scone", 1, "concede", ["P0001"]), Move(1, "cupcake", 2, "challenge", ["P0002"])],
    )


def test_agreed_and_contested_name_their_ids() -> None:
    synthesis = synthesise(snapshot(), 1)
    assert [s.id for s in synthesis.resolved] == ["T0001"]
    (top,) = synthesis.supported
    assert (top.id, top.count, top.by) == ("P0001", 2, ("P0101",))
    assert [(s.id, s.status) for s in synthesis.open] == [("T0002", "addressed"), ("T0101", "open")]
    (opposed,) = synthesis.opposed
    assert (opposed.id, opposed.count, opposed.by) == ("P0002", 2, ("P0101",))


def test_a_synthesis_sees_only_the_rounds_it_covers() -> None:
    synthesis = synthesise(snapshot(), 0)
    assert [s.id for s in synthesis.open] == ["T0002"]
    assert not synthesis.supported and not synthesis.opposed  # the backing came in round 1


def test_most_supported_are_capped_and_ordered() -> None:
    snap = snapshot()
    for i in range(2, 9):
        snap.entities[f"P01{i:02d}"] = Perspective(f"P01{i:02d}", 1, i, f"p{i}", "b", "open", ["eclair"])
        snap.refs += [Ref("P0101", "support", f"P01{i:02d}")] * (i % 3 + 1)
    supported = synthesise(snap, 1).supported
    assert len(supported) == MOST_SUPPORTED
    counts = [s.count for s in supported]
    assert counts == sorted(counts, reverse=True)
    assert synthesise(snap, 1) == synthesise(snap, 1)
