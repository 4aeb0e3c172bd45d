"""The convergence gate over the seated panel: absent experts, quorum, CONVERGE-only answers, rotation, `seated`."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

import pytest

from concord.orchestrator.cli.parser import share
from concord.orchestrator.engine.providers import AgentFailed, Answer, Call, SimProvider, Usage
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.panel.panels import Panel, sample_panel
from concord.orchestrator.panel.pools import load_pool
from concord.orchestrator.panel.rotation import next_panel
from concord.store import codec
from concord.store.backends.base import Put
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import BadInput, InvalidArgument
from concord.store.factory import Stores
from concord.store.model import Dialogue, PanelSeat, Round, RoundBatch, Score
from concord.store.rules import gate
from concord.store.snapshot import Snapshot
from tests.test_cli import sim_run
from tests.test_hostile_input import RecordingBus

DEMO_POOL = load_pool(Path(str(resources.files("concord.orchestrator") / "demo-pool.json")))
NINE = [
    PanelSeat(name, "Expert")
    for name in ("Muffin", "Cupcake", "Scone", "Eclair", "Strudel", "Tart", "Bun", "Pie", "Flan")
]
CONVERGE_ONLY = "[MOVE:CONVERGE]\n---\n"


def nine_round(answered: int, **fields: object) -> RoundBatch:
    """Round 0 of the nine-seat panel: the first `answered` answered and signalled, nothing left open."""
    slugs = [seat.slug for seat in NINE]
    batch = RoundBatch(
        round=0,
        panel=list(NINE),
        answered=slugs[:answered],
        absent=slugs[answered:],
        signals=slugs[:answered],
        scores={slug: Score(1, 0, 0, 0) for slug in slugs[:answered]},
        open_tensions=0,
        new_perspectives=0,
    )
    for name, value in fields.items():
        setattr(batch, name, value)
    return batch


async def test_two_of_nine_answering_is_not_converged_and_the_blockers_name_the_absent(stores: Stores) -> None:
    did = await stores.dialogues.create_dialogue("Gate", "Who is seated?")
    await stores.dialogues.register_round(did, nine_round(2))
    ok, blockers, state = await stores.dialogues.can_converge(did)
    assert not ok
    assert "converge_percent=22% (2/9)" in blockers
    assert "quorum not met: 2/9 answered, 6 needed" in blockers
    assert "absent (not signalled): Bun, Eclair, Flan, Pie, Scone, Strudel, Tart" in blockers
    assert state["panel_size"] == 9 and not state["quorate"]


async def test_the_whole_seated_panel_signalling_converges(stores: Stores) -> None:
    did = await stores.dialogues.create_dialogue("Gate", "Who is seated?")
    await stores.dialogues.register_round(did, nine_round(9))
    ok, blockers, state = await stores.dialogues.can_converge(did)
    assert ok and blockers == [] and state["converge_percent"] == 100.0


async def test_the_stored_round_item_carries_seated(stores: Stores) -> None:
    did = await stores.dialogues.create_dialogue("Gate", "Who is seated?")
    await stores.dialogues.register_round(did, nine_round(2))
    (item,) = [i for i in await stores.backend.query(f"dialogue#{did}") if i["sk"].startswith("round#")]
    assert item["seated"] == sorted(seat.slug for seat in NINE)
    (stored,) = await stores.dialogues.get_rounds(did)
    assert stored.seated == sorted(seat.slug for seat in NINE) and stored.converge_percent == pytest.approx(200 / 9)


async def test_an_older_stored_round_item_without_seated_still_loads_and_gates(stores: Stores) -> None:
    did = await stores.dialogues.create_dialogue("Gate", "Who is seated?")
    await stores.dialogues.register_round(did, nine_round(2))
    (item,) = [i for i in await stores.backend.query(f"dialogue#{did}") if i["sk"].startswith("round#")]
    older = await stores.dialogues.items.sign({k: v for k, v in item.items() if k != "seated"})
    await stores.backend.transact([Put(older, None)])
    (stored,) = await stores.dialogues.get_rounds(did)
    assert stored.seated == sorted(seat.slug for seat in NINE)  # from the round's sealed panel
    ok, blockers, _ = await stores.dialogues.can_converge(did)
    assert not ok and "converge_percent=22% (2/9)" in blockers


def test_an_older_round_item_without_seated_falls_back_to_its_panel_then_scored_plus_absent() -> None:
    old = Round(0, answered=2, signals=2, panel=list(NINE[:3]), absent=["scone"], scores={"muffin": Score()})
    record = codec.encode_round("d1", old)
    item = {k: v for k, v in record.clear.items() if k != "seated"}
    assert codec.decode_round(item, {"panel": [vars(s) for s in NINE[:3]]}).seated == ["cupcake", "muffin", "scone"]
    assert codec.decode_round(item, {}).seated == ["muffin", "scone"]


def test_quorum_is_configurable() -> None:
    seated = [seat.slug for seat in NINE]
    last = Round(3, answered=5, signals=5, seated=seated, absent=seated[5:], panel=list(NINE))
    assert "quorum not met: 5/9 answered, 6 needed" in gate(last)[1]
    assert not any(b.startswith("quorum") for b in gate(last, quorum=0.5)[1])
    assert gate(last, quorum=0.5)[2]["quorate"]
    ten = [f"expert{n}" for n in range(10)]
    assert gate(Round(3, answered=7, signals=7, seated=ten, absent=ten[7:]), quorum=0.7)[2]["quorate"]
    assert not gate(Round(3, answered=6, signals=6, seated=ten, absent=ten[6:]), quorum=0.7)[2]["quorate"]


@pytest.mark.parametrize("quorum", [0.0, -0.5, 1.5])
def test_a_quorum_outside_zero_to_one_is_refused(quorum: float) -> None:
    with pytest.raises(InvalidArgument, match="quorum must be"):
        gate(Round(0, seated=["muffin"]), quorum)
    with pytest.raises(BadInput):
        RunSettings(quorum=quorum)


def test_the_cli_quorum_is_a_share_of_the_panel() -> None:
    assert share("0.5") == 0.5
    for bad in ("0", "2", "half"):
        with pytest.raises(argparse.ArgumentTypeError, match="not"):
            share(bad)


def test_concord_run_refuses_a_bad_quorum_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    refused = sim_run(tmp_path / "home", tmp_path / "out", "--quorum", "0")
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["error"]["message"].startswith("argument --quorum: 0.0 is not in (0, 1]")
    assert not (tmp_path / "out").exists() and not (tmp_path / "home").exists()
    accepted = sim_run(tmp_path / "home", tmp_path / "out", "--quorum", "1")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["status"] == "converged"


def test_a_converge_only_answer_is_valid() -> None:
    parsed = parse_answer(CONVERGE_ONLY)
    assert parsed.is_valid and parsed.converge and not parsed.has_content
    assert not parse_answer("I agree with everyone.\n---\n").is_valid


class Scripted(SimProvider):
    """Experts in `converge` answer only `[MOVE:CONVERGE]`; every other expert fails (is absent)."""

    def __init__(self, converge: set[str]) -> None:
        super().__init__(7)
        self.converge = converge
        self.calls: list[Call] = []

    async def complete(self, call: Call) -> Answer:
        """A CONVERGE-only answer, or an AgentFailed."""
        self.calls.append(call)
        if call.expert not in self.converge:
            raise AgentFailed(f"{call.expert} is away")
        return Answer(CONVERGE_ONLY, Usage(1, 1), "sim", 0.0, simulated=True)


async def run_nine(store: DialogueStore, tmp_path: Path, answering: int) -> tuple[Scripted, RecordingBus, str]:
    """A one-round run of the nine-expert demo pool in which the first `answering` experts answer CONVERGE only."""
    slugs = [m.slug for m in sample_panel(DEMO_POOL, 9, seed=7).members]
    provider, bus = Scripted(set(slugs[:answering])), RecordingBus()
    orchestrator = Orchestrator(store, provider, bus=bus)
    did = await orchestrator.create(
        "Who is seated?", DEMO_POOL, RunSettings(panel_size=9, max_rounds=1, seed=7), tmp_path
    )
    await orchestrator.run(did)
    return provider, bus, did


async def test_two_of_nine_converge_only_answers_count_but_do_not_converge(
    store: DialogueStore, tmp_path: Path
) -> None:
    provider, bus, did = await run_nine(store, tmp_path, 2)
    snap = await store.load_partition(did)
    last = snap.last_round
    assert last is not None and last.velocity == 0
    assert (last.answered, last.signals, len(last.seated), len(last.absent)) == (2, 2, 9, 7)
    assert not any(call.repair for call in provider.calls if call.expert in provider.converge)
    answered = {e.expert for e in bus.events if e.kind == "expert_answered"}
    assert answered == provider.converge
    (verdict,) = [v for v in snap.verdicts if v.verdict_type == "final"]
    assert verdict.forced and verdict.warning is not None
    assert "converge_percent=22% (2/9)" in verdict.warning and "quorum not met" in verdict.warning
    absent_names = sorted(seat.name for seat in last.panel if seat.slug in last.absent)
    assert f"absent (not signalled): {', '.join(absent_names)}" in verdict.warning


async def test_nine_of_nine_converge_only_answers_converge(store: DialogueStore, tmp_path: Path) -> None:
    _, _, did = await run_nine(store, tmp_path, 9)
    snap = await store.load_partition(did)
    (verdict,) = [v for v in snap.verdicts if v.verdict_type == "final"]
    assert not verdict.forced and snap.dialogue.status == "converged"


def rotation_snapshot(absent_by_round: dict[int, list[str]], panel: Panel) -> Snapshot:
    """A dialogue whose rounds seated `panel` and recorded these experts absent (everyone else scored)."""
    rounds = {
        n: Round(
            n,
            panel=list(panel.members),
            absent=absent,
            scores={m.slug: Score(3, 0, 0, 0) for m in panel.members if m.slug not in absent},
        )
        for n, absent in absent_by_round.items()
    }
    return Snapshot(Dialogue("d1", "local", "Rotation", "Who stays?", total_rounds=len(rounds)), rounds=rounds)


def test_rotation_replaces_an_expert_absent_two_rounds_running_and_keeps_one_absent_once() -> None:
    first = sample_panel(DEMO_POOL, 4, seed=7)
    twice, once = first.members[0], first.members[1]
    previous = Panel(1, first.members)
    snap = rotation_snapshot({0: [twice.slug], 1: [twice.slug, once.slug]}, previous)
    nxt = next_panel(DEMO_POOL, snap, previous, used_names={m.name for m in first.members})
    names = nxt.names()
    assert twice.name not in names and once.name in names
    assert len(names) == len(first.members)
    newcomers = [m for m in nxt.members if m.source == "pool"]
    assert len(newcomers) == 1 and newcomers[0].role not in {m.role for m in first.members}
