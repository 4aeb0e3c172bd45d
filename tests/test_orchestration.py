"""End-to-end runs: a sim panel converges with every file audited; the anthropic path through the real
SDK and a fake Messages API exercises repair, absent experts and the token budget."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from concord.orchestrator.engine.providers import AnthropicProvider, SimProvider
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.judging.entity_plan import plan_entities
from concord.orchestrator.judging.llm_judge import parse_assessment
from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.panel.pools import load_pool
from concord.orchestrator.progress.bus import ProgressBus
from concord.store.errors import BadInput
from concord.store.factory import Stores
from tests.fake_anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
QUESTION = "How should a small team store deliberation records?"


async def collect(bus: ProgressBus, dialogue_id: str, sink: list) -> None:
    async for event in bus.subscribe(dialogue_id):
        sink.append(event)


async def test_sim_dialogue_of_eight_converges_with_every_file_audited(stores: Stores, tmp_path: Path) -> None:
    import asyncio

    bus = ProgressBus()
    orchestrator = Orchestrator(stores.dialogues, SimProvider(seed=3), bus=bus)
    settings = RunSettings(provider="sim", panel_size=8, seed=3, max_rounds=6)
    did = await orchestrator.create(QUESTION, load_pool(POOL), settings, tmp_path / "out")
    events: list = []
    watcher = asyncio.create_task(collect(bus, did, events))
    await asyncio.sleep(0)
    result = await orchestrator.run(did)
    await asyncio.wait_for(watcher, 5)

    assert result.status == "converged" and result.verdict is not None and not result.verdict.forced
    assert result.simulated and 2 <= result.rounds <= 4
    snap = await stores.dialogues.load_partition(did)
    assert len(snap.rounds[0].panel) == 8

    texts = snap.texts
    assert texts, "prompts and answers are stored as write-once records"
    for record in texts:
        path = result.directory / record.path
        assert path.read_text(encoding="utf-8") == record.text
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
    report = await stores.dialogues.verify_audit(did, files_root=result.directory)
    assert report.ok, report.problem
    assert report.files_checked == len(texts)

    for rnd in snap.rounds.values():
        expected = set()
        for t in texts:
            if t.kind == "answer" and t.round == rnd.number:
                expected |= {(p.kind, p.local_id) for p in plan_entities(t.expert, t.round, parse_answer(t.text))}
        stored = {(e.kind, e.local_id) for e in snap.entities.values() if e.round == rnd.number}
        assert stored == expected and expected
    kinds = [e.kind for e in events]
    assert kinds[0] == "round_started" and kinds[-1] == "verdict"
    assert kinds.count("round_closed") == result.rounds
    closed = [e for e in events if e.kind == "round_closed"][-1]
    assert closed.data["velocity"] == 0 and closed.data["converge_percent"] == 100


@pytest.fixture
def fake() -> FakeAnthropic:
    with FakeAnthropic(seed=5) as server:
        yield server


async def run_live(stores: Stores, tmp_path: Path, fake: FakeAnthropic, **overrides: object):
    provider = AnthropicProvider(api_key="sk-test-not-a-real-key", base_url=fake.base_url, max_retries=2, timeout=2.0)
    settings = RunSettings(**{"provider": "anthropic", "panel_size": 4, "seed": 5, "max_rounds": 4, **overrides})
    orchestrator = Orchestrator(stores.dialogues, provider)
    try:
        did = await orchestrator.create(QUESTION, load_pool(POOL), settings, tmp_path / "out")
        return did, await orchestrator.run(did)
    finally:
        await provider.aclose()


async def test_live_path_retries_repairs_and_records_absent(
    stores: Stores, tmp_path: Path, fake: FakeAnthropic
) -> None:
    fake.script_expert("muffin", "429:0.01", "529:0.01", "normal", round=0)
    fake.script_expert("cupcake", "malformed", "normal", round=0)
    fake.script_expert("scone", "500:0.01", "500:0.01", "500:0.01", round=0)
    did, result = await run_live(stores, tmp_path, fake)
    snap = await stores.dialogues.load_partition(did)
    round0 = snap.rounds[0]
    assert "scone" in round0.absent and round0.answered == 3
    repaired = [t for t in snap.texts if t.expert == "cupcake" and t.round == 0 and t.kind == "answer"]
    assert sorted(t.repair for t in repaired) == [False, True]
    assert (result.directory / "round-0" / "cupcake.repair.prompt.md").exists()
    assert not [e for e in snap.entities.values() if "scone" in e.contributors and e.round == 0]
    served = {(r["expert"], r["round"], r["repair"]): r for r in fake.requests if r["status"] == 200}
    for record in (t for t in snap.texts if t.kind == "answer" and t.model):
        logged = served[(record.expert, record.round, record.repair)]
        assert (record.input_tokens, record.output_tokens) == (logged["input_tokens"], logged["output_tokens"])
    muffin0 = [r for r in fake.requests if r["expert"] == "muffin" and r["round"] == 0]
    assert [r["status"] for r in muffin0] == [429, 529, 200]
    assert result.status == "converged"


async def test_timeout_makes_an_expert_absent(stores: Stores, tmp_path: Path, fake: FakeAnthropic) -> None:
    fake.script_expert("cupcake", "hang:5", "hang:5", "hang:5", round=0)
    did, _ = await run_live(stores, tmp_path, fake, max_rounds=1)
    round0 = (await stores.dialogues.load_partition(did)).rounds[0]
    assert round0.absent == ["cupcake"]


async def test_token_budget_stops_cleanly(stores: Stores, tmp_path: Path, fake: FakeAnthropic) -> None:
    did, result = await run_live(stores, tmp_path, fake, budget_tokens=3000)
    assert result.status == "budget_exceeded"
    snap = await stores.dialogues.load_partition(did)
    assert snap.dialogue.status == "budget_exceeded"
    spent = sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer")
    assert spent >= 3000
    report = await stores.dialogues.verify_audit(did, files_root=result.directory)
    assert report.ok


async def test_llm_judge_scores_are_validated_and_summed_in_code(
    stores: Stores, tmp_path: Path, fake: FakeAnthropic
) -> None:
    judge = AnthropicProvider(api_key="sk-test-not-a-real-key", base_url=fake.base_url, max_retries=0, timeout=5.0)
    fake.script_expert("judge", "normal", "malformed", round=None)
    settings = RunSettings(provider="sim", judge="llm", panel_size=3, seed=2, max_rounds=2)
    orchestrator = Orchestrator(stores.dialogues, SimProvider(seed=2), judge_provider=judge)
    try:
        did = await orchestrator.create(QUESTION, load_pool(POOL), settings, tmp_path / "out")
        result = await orchestrator.run(did)
    finally:
        await judge.aclose()
    snap = await stores.dialogues.load_partition(did)
    judged = next(t for t in snap.texts if t.kind == "answer" and t.expert == "judge" and t.round == 0)
    assessment = parse_assessment(judged.text, list(snap.rounds[0].scores))
    assert snap.rounds[0].scores == assessment.scores  # round 0: the model's scores, validated
    assert snap.dialogue.total_alignment == sum(r.totals.total for r in snap.rounds.values())
    assert any(n.startswith("scores by the llm judge") for n in snap.rounds[0].notes)
    assert any("rejected" in n and "rules scores kept" in n for n in snap.rounds[1].notes)  # round 1: malformed reply
    assert (result.directory / "round-0" / "judge.prompt.md").exists()
    assert "judge" not in {s.name.lower() for r in snap.rounds.values() for s in r.panel}


async def test_a_tension_changed_through_the_api_mid_round_does_not_break_the_run(
    stores: Stores, tmp_path: Path
) -> None:
    import asyncio

    bus = ProgressBus()
    orchestrator = Orchestrator(stores.dialogues, SimProvider(seed=3, latency=0.2), bus=bus)
    settings = RunSettings(provider="sim", panel_size=4, seed=3, max_rounds=5, concurrency=2)
    did = await orchestrator.create(QUESTION, load_pool(POOL), settings, tmp_path / "out")
    changed: list[str] = []

    async def meddle() -> None:
        async for event in bus.subscribe(did):
            if event.kind == "round_started" and event.round == 1:
                open_tensions = [
                    t for t in (await stores.dialogues.load_partition(did)).of_kind("tension") if t.status == "open"
                ]
                for tension in open_tensions:
                    await stores.dialogues.update_entity_status(did, tension.id, "resolved", actors=["operator"])
                    changed.append(tension.id)
                return

    watcher = asyncio.create_task(meddle())
    await asyncio.sleep(0)
    result = await orchestrator.run(did)
    await watcher
    assert changed and result.status == "converged"
    snap = await stores.dialogues.load_partition(did)
    assert all(snap.entities[t].status == "resolved" for t in changed)
    assert (await stores.dialogues.verify_audit(did, files_root=result.directory)).ok


async def test_a_round_prompt_file_that_is_no_prompt_stops_the_run_naming_it(stores: Stores, tmp_path: Path) -> None:
    orchestrator = Orchestrator(stores.dialogues, SimProvider(seed=3))
    settings = RunSettings(provider="sim", panel_size=3, seed=3, max_rounds=2)
    did = await orchestrator.create(QUESTION, load_pool(POOL), settings, tmp_path / "out")
    directory = Path((await stores.dialogues.load_partition(did)).dialogue.output_dir or "")
    (directory / "round-0").mkdir()
    (directory / "round-0" / "muffin.prompt.md").write_text("edited by hand\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"round-0/muffin\.prompt\.md is not this dialogue's"):
        await orchestrator.run(did)
    assert not (directory / "round-0" / "muffin.md").exists()
