"""The rules judge on synthetic answers: entities, refs, authority rule, new perspectives, scores, gate."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from concord.orchestrator.blue.round_figures import parse_scoreboard
from concord.orchestrator.judging.new_perspectives import NEW_PERSPECTIVE_NOVELTY
from concord.orchestrator.judging.rules_judge import (
    ExpertAnswer,
    JudgedRound,
    build_registry,
    judge_round,
)
from concord.orchestrator.judging.scoring import Tally
from concord.orchestrator.judging.written_ids import parse_reference
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import ConvergenceBlocked
from concord.store.model import PanelSeat, Round, Score, Verdict
from concord.store.rules import gate
from concord.store.snapshot import Snapshot
from tests.conftest import FakeClock, corpus_dialogue

PANEL = [
    PanelSeat("Muffin", "Storage engineer"),
    PanelSeat("Cupcake", "Security lead"),
    PanelSeat("Scone", "Product owner"),
]

ROUND0 = {
    "muffin": (
        "[PERSPECTIVE P01: Keep one writer per partition]\n"
        "A single writer removes lost updates; the queue holds 200 requests at most.\n\n"
        "[PERSPECTIVE P02: Batch the nightly export]\n"
        "Exports run once a night, so batching them costs nothing visible.\n\n"
        "[TENSION T01: Throughput against strict ordering]\n"
        "Ordering every write slows the busiest tenants.\n\n---\n"
    ),
    "cupcake": (
        "[PERSPECTIVE P01: Rotate data keys on a schedule]\n"
        "Use `keys rotate` monthly and sweep old items afterwards.\n\n"
        "[TENSION T01: Audit depth against storage cost]\n"
        "Hashing every prompt doubles what the audit table keeps.\n\n---\n"
    ),
    "scone": (
        "[PERSPECTIVE P01: Ship the read path first]\n"
        "Readers outnumber writers, so the read path decides adoption.\n\n---\n"
    ),
}


@pytest.fixture
async def store(sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock) -> DialogueStore:
    """A DialogueStore on SQLite only (the judge is backend-agnostic; import tests cover both)."""
    return DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)


async def play(
    store: DialogueStore, rounds: list[dict[str, str | None]], panel: list[PanelSeat] = PANEL
) -> tuple[str, list[JudgedRound]]:
    """Create a dialogue and judge + register each round of answers; return the id and the judged rounds."""
    did = await store.create_dialogue("Judge test", "How should we store dialogues?")
    judged = []
    for number, answers in enumerate(rounds):
        snap = await store.load_partition(did)
        result = judge_round(
            snap, number, panel, [ExpertAnswer(s.name.lower(), answers.get(s.name.lower())) for s in panel]
        )
        await store.register_round(did, result.batch)
        judged.append(result)
    return did, judged


def global_id(snap: Snapshot, local_id: str) -> str:
    """The display id the store gave to a local id."""
    return next(e.id for e in snap.entities.values() if e.local_id == local_id)


async def test_round0_entities_metrics_and_scores(store: DialogueStore) -> None:
    did, (judged,) = await play(store, [dict(ROUND0)])
    batch = judged.batch
    assert [d.local_id for d in batch.entities] == [
        "MUFFIN-P0001",
        "MUFFIN-P0002",
        "MUFFIN-T0001",
        "CUPCAKE-P0001",
        "CUPCAKE-T0001",
        "SCONE-P0001",
    ]
    assert batch.new_perspectives == 4 and batch.open_tensions == 2 and judged.velocity == 6
    assert judged.converge_percent == 0.0 and batch.absent == []
    # W = 3 per perspective; T = 1 per entity citing a specific (a number of 2+ digits, a code span).
    assert judged.per_expert["muffin"].w == 6 and judged.per_expert["muffin"].t == 1
    assert judged.per_expert["cupcake"].w == 3 and judged.per_expert["cupcake"].t == 1
    assert judged.per_expert["scone"].total == 3
    snap = await store.load_partition(did)
    rnd = snap.rounds[0]
    assert rnd.totals.total == sum(s.total for s in judged.per_expert.values())
    assert rnd.velocity == judged.velocity and len(snap.of_kind("perspective")) == 4


async def test_judging_is_deterministic(store: DialogueStore) -> None:
    did = await store.create_dialogue("Judge test", "Same input twice?")
    snap = await store.load_partition(did)
    answers = [ExpertAnswer(k, v) for k, v in ROUND0.items()]
    assert asdict(judge_round(snap, 0, PANEL, answers).batch) == asdict(judge_round(snap, 0, PANEL, answers).batch)


async def test_authority_rule_and_confirmation(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                # The author resolves her own tension; muffin's is only marked addressed by cupcake.
                "cupcake": "[PERSPECTIVE P01: Sampling keeps the audit small]\nHash a sample.\n\n"
                "[RESOLVED T01]\n[RESOLVED MUFFIN-T01: ordering per tenant only]\n---\n",
                "muffin": "[PERSPECTIVE P01: Per-tenant queues]\nOne queue per tenant keeps order where it matters.\n---\n",
                "scone": None,
            },
            {"muffin": "[PERSPECTIVE P01: Nothing to add]\nThe plan holds.\n---\n", "cupcake": None, "scone": None},
        ],
    )
    snap = await store.load_partition(did)
    mine, theirs = global_id(snap, "CUPCAKE-T0001"), global_id(snap, "MUFFIN-T0001")
    round1 = {c.id: c.status for c in judged[1].batch.status_changes}
    assert round1 == {mine: "resolved", theirs: "addressed"}
    assert judged[1].batch.open_tensions == 1
    # Round 2: nobody re-opened or opposed it, so the judge confirms the addressed tension.
    (confirm,) = judged[2].batch.status_changes
    assert (confirm.id, confirm.status, confirm.actors) == (theirs, "resolved", [])
    assert snap.entities[theirs].status == "resolved" and judged[2].batch.open_tensions == 0
    assert [e.event_type for e in snap.events_of(theirs)] == ["created", "addressed", "resolved"]


async def test_dispute_blocks_confirmation_and_reopen_reopens(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                "cupcake": "[PERSPECTIVE P01: Order per tenant]\nEnough ordering.\n[RESOLVED MUFFIN-T01]\n---\n",
                "muffin": None,
                "scone": None,
            },
            {
                "scone": "[PERSPECTIVE P01: Global order still matters]\nReports need it.\n[RE:OPPOSE MUFFIN-T01]\n---\n",
                "muffin": None,
                "cupcake": None,
            },
        ],
    )
    snap = await store.load_partition(did)
    tension = global_id(snap, "MUFFIN-T0001")
    assert judged[2].batch.status_changes == [] and snap.entities[tension].status == "addressed"
    assert "oppose" in {r.ref_type for r in snap.refs if r.target == tension}


async def test_whole_panel_converge_confirms_addressed_in_the_same_round(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                name: f"[PERSPECTIVE P01: {name} agrees]\nAgreed.\n[RESOLVED CUPCAKE-T01]\n[MOVE:CONVERGE]\n---\n"
                for name in ("muffin", "scone")
            }
            | {"cupcake": "[MOVE:CONVERGE]\n---\n"},
        ],
    )
    snap = await store.load_partition(did)
    tension = global_id(snap, "CUPCAKE-T0001")
    assert [c.status for c in judged[1].batch.status_changes if c.id == tension] == ["addressed", "resolved"]
    assert judged[1].converge_percent == 100.0 and snap.entities[tension].status == "resolved"


async def test_absent_experts_keep_the_few_who_answered_from_closing_their_tensions(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                "muffin": "[PERSPECTIVE P01: Settled]\nAgreed.\n[RESOLVED CUPCAKE-T01]\n[MOVE:CONVERGE]\n---\n",
                "cupcake": None,
                "scone": None,
            },
        ],
    )
    snap = await store.load_partition(did)
    tension = global_id(snap, "CUPCAKE-T0001")
    assert judged[1].converge_percent == pytest.approx(100 / 3)  # of the seated panel: the absent have not signalled
    assert snap.entities[tension].status == "addressed"


async def test_new_perspective_rule(store: DialogueStore) -> None:
    restated = ROUND0["muffin"].split("[PERSPECTIVE P02")[0]
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                "muffin": restated + "[PERSPECTIVE P02: Tenant quotas decouple noisy neighbours]\n"
                "Quotas bound each tenant's share of throughput during incidents.\n---\n",
                "cupcake": "[PERSPECTIVE P01: Envelope versions allow crypto agility]\nVersioned envelopes let algorithms change.\n"
                "[RE:REFINE MUFFIN-P01]\n---\n",
                "scone": "[PERSPECTIVE P01: MUFFIN-T01 fades with tenant queues]\nQueues per tenant answer it.\n\n"
                "[REFINEMENT on SCONE-P01: read path first, writes behind a flag]\nFlags limit the blast radius.\n---\n",
            },
        ],
    )
    drafts = {d.local_id: d for d in judged[1].batch.entities}
    restate, fresh = drafts["MUFFIN-P0101"].parameters, drafts["MUFFIN-P0102"].parameters
    assert restate is not None and fresh is not None
    assert restate["new"] is False and restate["novelty"] < NEW_PERSPECTIVE_NOVELTY
    assert fresh["new"] is True and fresh["novelty"] >= NEW_PERSPECTIVE_NOVELTY
    assert drafts["CUPCAKE-P0101"].parameters["new"] is False  # refines an earlier perspective
    assert drafts["CUPCAKE-P0101"].parameters["builds_on"]
    assert drafts["SCONE-P0101"].parameters["new"] is False  # its label names an earlier tension
    refinement = drafts["SCONE-P0102"].parameters
    assert refinement is not None and refinement["new"] is False and refinement["refinement"] is True
    assert judged[1].batch.new_perspectives == 1
    snap = await store.load_partition(did)
    assert ("refine", global_id(snap, "SCONE-P0001")) in {(r.ref_type, r.target) for r in snap.refs}


async def test_absent_expert_gets_nothing_invented(store: DialogueStore) -> None:
    did, (judged,) = await play(store, [{"muffin": ROUND0["muffin"] + "[MOVE:CONVERGE]\n", "cupcake": None}])
    batch = judged.batch
    assert batch.answered == ["muffin"] and batch.absent == ["cupcake", "scone"]
    assert set(judged.per_expert) == {"muffin"} and judged.converge_percent == pytest.approx(100 / 3)
    assert all(d.contributors == ["muffin"] for d in batch.entities)
    snap = await store.load_partition(did)
    assert snap.rounds[0].answered == 1 and snap.rounds[0].absent == ["cupcake", "scone"]


async def test_unresolvable_and_invalid_references_are_warnings(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                "muffin": "[REFINEMENT on T09: no such tension]\nA refinement of nothing known.\n\n[NOTED]\n---\n",
                "cupcake": "[PERSPECTIVE P01: Keys per tenant]\nSeparate keys.\n[RE:REFINE MUFFIN-T01]\n---\n",
                "scone": "[RESOLVED: everything is fine]\n---\n",
            },
        ],
    )
    batch = judged[1].batch
    drafts = {d.local_id: d for d in batch.entities}
    assert any("'T09'" in w for w in drafts["MUFFIN-P0101"].warnings)
    assert any("refine joins entities of the same kind" in w for w in drafts["CUPCAKE-P0101"].warnings)
    assert drafts["MUFFIN-P0101"].references == [] and drafts["CUPCAKE-P0101"].references == []
    assert any("[NOTED]" in w for w in judged[1].warnings)
    assert any("names no tension" in w for w in judged[1].warnings)
    snap = await store.load_partition(did)
    assert snap.rounds[1].notes == batch.notes and batch.status_changes == []


async def test_concessions_and_moves_are_stored(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                "cupcake": "[PERSPECTIVE P01: Fine]\nOk.\n[CONCESSION to Muffin on MUFFIN-T01: ordering per tenant is enough]\n"
                "[MOVE:BRIDGE MUFFIN-P01]\n---\n",
                "muffin": None,
                "scone": None,
            },
        ],
    )
    snap = await store.load_partition(did)
    moves = sorted((m.move_type, tuple(m.targets)) for m in snap.moves)
    assert moves == [("bridge", (global_id(snap, "MUFFIN-P0001"),)), ("concede", (global_id(snap, "MUFFIN-T0001"),))]
    assert snap.entities[global_id(snap, "MUFFIN-T0001")].status == "addressed"
    score = judged[1].per_expert["cupcake"]
    assert score.c == 1 and score.r == 3  # one concession; two of muffin's entities plus muffin named


async def test_build_registry_reads_local_ids_and_aliases(store: DialogueStore) -> None:
    did, _ = await play(store, [dict(ROUND0)])
    snap = await store.load_partition(did)
    registry = build_registry(snap)
    tension = global_id(snap, "CUPCAKE-T0001")
    ref = parse_reference("T01")
    assert ref is not None and registry.resolve(ref, author="cupcake", round=1) == tension
    namespaced = parse_reference("CUPCAKE-T01")
    assert namespaced is not None and registry.resolve(namespaced, author="muffin", round=1) == tension


async def test_aliases_attach_to_drafts_and_resolve_later(store: DialogueStore) -> None:
    did = await store.create_dialogue("Alias test", "Do recorded ids resolve?")
    answers = [ExpertAnswer(k, v) for k, v in ROUND0.items()]
    snap = await store.load_partition(did)
    first = judge_round(snap, 0, PANEL, answers, aliases={"T02": "CUPCAKE-T0001"})
    assert next(d for d in first.batch.entities if d.local_id == "CUPCAKE-T0001").aliases == ["T02"]
    await store.register_round(did, first.batch)
    snap = await store.load_partition(did)
    later = judge_round(snap, 1, PANEL, [ExpertAnswer("scone", "[PERSPECTIVE P01: x]\ny\n[RESOLVED on T02]\n---\n")])
    assert [(c.id, c.status) for c in later.batch.status_changes] == [(global_id(snap, "CUPCAKE-T0001"), "addressed")]


# --- protocol §9 check 11: the gate ---------------------------------------------------------


def test_check11_gate_on_recorded_figures() -> None:
    jira = parse_scoreboard((corpus_dialogue("jira-cloud") / "scoreboard.md").read_text(encoding="utf-8"))
    d58 = parse_scoreboard((corpus_dialogue("rfc-0058") / "scoreboard.md").read_text(encoding="utf-8"))
    last_jira, last_d58 = jira[-1], d58[-1]
    assert last_jira.velocity > 0 and last_jira.converge_percent == 100.0
    ok, blockers, _ = gate(
        Round(
            last_jira.round,
            open_tensions=last_jira.open_tensions,
            new_perspectives=last_jira.new_perspectives,
            answered=12,
            signals=12,
            seated=[f"expert{n}" for n in range(12)],
        )
    )
    assert not ok and blockers == [
        f"velocity={last_jira.velocity} (open_tensions={last_jira.open_tensions}, "
        f"new_perspectives={last_jira.new_perspectives})"
    ]
    assert last_d58.velocity == 0
    seated = [f"expert{n}" for n in range(6)]
    ok, blockers, _ = gate(
        Round(last_d58.round, open_tensions=0, new_perspectives=0, answered=6, signals=6, seated=seated)
    )
    assert ok and blockers == []


async def test_check11_unconverged_at_round_index_9_is_forced_with_warning(store: DialogueStore) -> None:
    stubborn = {
        "muffin": "[PERSPECTIVE P01: Still unsure]\nNot yet.\n[TENSION T01: Still open]\nOpen.\n---\n",
        "cupcake": "[PERSPECTIVE P01: Agree]\nFine.\n[MOVE:CONVERGE]\n---\n",
        "scone": None,
    }
    did, judged = await play(store, [dict(stubborn) for _ in range(10)])
    assert (await store.load_partition(did)).last_round.number == 9  # type: ignore[union-attr]
    verdict = Verdict("final", "final", 9, "Stop at the cap.")
    with pytest.raises(ConvergenceBlocked):
        await store.register_verdict(did, verdict)
    forced = await store.register_verdict(did, verdict, force=True)
    assert forced.forced and forced.warning is not None and forced.warning.startswith("FORCED CONVERGENCE")
    assert f"velocity={judged[-1].velocity}" in forced.warning and "converge_percent=33% (1/3)" in forced.warning
    assert "absent (not signalled): Scone" in forced.warning


@pytest.mark.parametrize(
    ("count", "one"),
    [
        ("perspectives", Score(w=3)),
        ("refinements", Score(w=2)),
        ("resolutions", Score(c=2)),
        ("concessions", Score(c=1)),
        ("evidence", Score(t=2)),
        ("claims", Score(t=1)),
        ("grounded", Score(t=1)),
        ("others", Score(r=1)),
        ("named", Score(r=1)),
    ],
)
def test_each_scoring_term_weighs_its_own_count(count: str, one: Score) -> None:
    def tally(n: int) -> Tally:
        value: object = {f"e{i}" for i in range(n)} if count in ("others", "named") else n
        return Tally(**{count: value})

    assert tally(1).score() == one
    assert tally(3).score() == Score(*(3 * part for part in one.to_list()))


async def test_marker_variants_act_as_the_markers_they_stand_for(store: DialogueStore) -> None:
    did, judged = await play(
        store,
        [
            dict(ROUND0),
            {
                "muffin": "[PERSPECTIVE P01: Order per tenant only]\nStrict order inside a tenant.\n"
                "[ACKNOWLEDGED T01: ordering costs the busiest tenants]\n---\n",
                "cupcake": "[PERSPECTIVE P01: Hash prompts, not answers]\nHalve the audit size.\n"
                "[DEFER T01: after the pilot]\n---\n",
            },
        ],
    )
    snap = await store.load_partition(did)
    cupcake_t, muffin_t = (t.id for t in sorted(snap.of_kind("tension", 0), key=lambda t: t.local_id or ""))
    assert snap.entities[cupcake_t].status == "open"
    assert snap.entities[muffin_t].status == "resolved"  # its author's acknowledgement concedes it
    assert [m.move_type for m in snap.moves if m.round == 1] == ["concede"]
    assert f"cupcake defers {cupcake_t} on line 3 (it stays open): after the pilot" in judged[1].batch.notes
