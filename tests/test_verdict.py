"""The final verdict answers the question: fixed sections citing only stored ids, in verdict.md, the store and
GraphQL; the llm judge's verdict is structured output checked against the record, else the rules verdict."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from concord.orchestrator.blue.exporter import export_dialogue
from concord.orchestrator.blue.importer import import_dialogue
from concord.orchestrator.blue.judge_files import SIMULATED_NOTE
from concord.orchestrator.engine.providers import AnthropicProvider, Provider, SimProvider
from concord.orchestrator.engine.run import Orchestrator, RunResult, RunSettings
from concord.orchestrator.judging.verdict_builder import build_verdict
from concord.orchestrator.panel.pools import load_pool
from concord.store import codec
from concord.store.factory import Stores
from concord.store.ids import partition_key
from concord.store.model import RoundBatch, Verdict, VerdictDissent, VerdictReason, VerdictTension
from concord.store.snapshot import Snapshot
from tests.fake_anthropic import PHANTOM_ID, FakeAnthropic
from tests.graphql_helpers import Api

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
QUESTION = "How should a small team keep its deliberation records?"
SECTIONS = ["## Question", "## Recommendation", "## Reasons", "## Tensions", "## Dissent", "## Risks"]
DISPLAY_ID = re.compile(r"\b[PRTEC]\d{4}\b")
SECTION_FIELDS = ("question", "reasons", "tensions", "dissent", "risks", "notes")
VERDICT_FIELDS = """question recommendation notes risks reasons { text cites }
  tensions { id status how cites round } dissent { expert why cites }"""


async def run(
    stores: Stores, tmp_path: Path, agents: Provider, *, judge_provider: Provider | None = None, **overrides: object
) -> tuple[RunResult, Snapshot]:
    settings = RunSettings(**{"provider": "sim", "panel_size": 5, "seed": 3, "max_rounds": 5, **overrides})
    orchestrator = Orchestrator(stores.dialogues, agents, judge_provider=judge_provider)
    did = await orchestrator.create(QUESTION, load_pool(POOL), settings, tmp_path / "out")
    result = await orchestrator.run(did)
    return result, await stores.dialogues.load_partition(did)


def section(markdown: str, heading: str) -> str:
    """The text under one `## heading` of verdict.md, up to the next heading."""
    return markdown.split(heading + "\n", 1)[1].split("\n## ", 1)[0].strip()


def assert_cites_only_stored_ids(verdict: Verdict, snap: Snapshot) -> None:
    assert verdict.reasons and all(r.cites for r in verdict.reasons)
    assert set(verdict.cited_ids()) <= set(snap.entities)
    assert [t.id for t in verdict.tensions] == sorted(t.id for t in snap.of_kind("tension"))


async def test_sim_verdict_has_every_section_and_recommends_what_the_panel_said(stores: Stores, tmp_path: Path) -> None:
    result, snap = await run(stores, tmp_path, SimProvider(seed=3))
    assert result.status == "converged"
    text = (result.directory / "verdict.md").read_text(encoding="utf-8")
    assert [text.index(h) for h in SECTIONS] == sorted(text.index(h) for h in SECTIONS)
    assert section(text, "## Question") == QUESTION
    assert set(DISPLAY_ID.findall(text)) <= set(snap.entities)

    recommendation = section(text, "## Recommendation")
    assert "Panel converged after round" not in recommendation
    positions = [e for e in snap.entities.values() if e.kind in ("perspective", "recommendation")]
    headline = recommendation.split(" The panel also backs ")[0]
    (first,) = [e for e in positions if headline.endswith(f"({e.id}).") or f"({e.id}): " in headline]
    assert first.content.split(". ")[0] in recommendation  # its own words, not boilerplate

    (stored,) = await stores.dialogues.get_verdicts(snap.dialogue.id)
    assert stored.question == QUESTION and stored.recommendation == recommendation
    assert_cites_only_stored_ids(stored, snap)
    assert all(t.status == snap.entities[t.id].status for t in stored.tensions)
    assert stored.notes and "rules judge" in stored.notes[0]
    for reason in stored.reasons:
        assert f"{reason.text} [{', '.join(reason.cites)}]" in section(text, "## Reasons")


async def test_sim_files_say_simulated_and_live_files_do_not(stores: Stores, tmp_path: Path) -> None:
    simulated, _ = await run(stores, tmp_path / "sim", SimProvider(seed=3))
    for name in ("verdict.md", "scoreboard.md"):
        assert SIMULATED_NOTE in (simulated.directory / name).read_text(encoding="utf-8")
    with FakeAnthropic(seed=5) as fake:
        provider = AnthropicProvider(api_key="sk-test-not-a-real-key", base_url=fake.base_url, timeout=5.0)
        try:
            live, snap = await run(stores, tmp_path / "live", provider, provider="anthropic")
        finally:
            await provider.aclose()
    assert snap.dialogue.origin == "anthropic" and live.status == "converged"
    for name in ("verdict.md", "scoreboard.md"):
        assert "Simulated panel" not in (live.directory / name).read_text(encoding="utf-8")


async def test_stored_verdict_sections_read_back_over_graphql(api: Api, tmp_path: Path) -> None:
    _, snap = await run(api.stores, tmp_path, SimProvider(seed=4), seed=4)
    (stored,) = snap.verdicts
    data = await api.data(
        f"query($id: ID!) {{ dialogue(id: $id) {{ verdicts {{ {VERDICT_FIELDS} }} }} }}", {"id": snap.dialogue.id}
    )
    (verdict,) = data["dialogue"]["verdicts"]
    assert verdict["reasons"] and verdict["tensions"]
    assert verdict["question"] == QUESTION and verdict["recommendation"] == stored.recommendation
    assert verdict["reasons"] == [{"text": r.text, "cites": r.cites} for r in stored.reasons]
    assert verdict["tensions"] == [
        {"id": t.id, "status": t.status, "how": t.how, "cites": t.cites, "round": t.round} for t in stored.tensions
    ]
    assert verdict["dissent"] == [{"expert": d.expert, "why": d.why, "cites": d.cites} for d in stored.dissent]
    assert verdict["risks"] == stored.risks and verdict["notes"] == stored.notes
    cited = {i for r in verdict["reasons"] for i in r["cites"]} | {t["id"] for t in verdict["tensions"]}
    assert cited and cited <= set(snap.entities)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(seed=2) as server:
        yield server


async def llm_run(stores: Stores, tmp_path: Path, fake: FakeAnthropic) -> tuple[RunResult, Snapshot]:
    judge = AnthropicProvider(api_key="sk-test-not-a-real-key", base_url=fake.base_url, max_retries=0, timeout=5.0)
    try:
        return await run(stores, tmp_path, SimProvider(seed=2), judge_provider=judge, judge="llm", seed=2, panel_size=3)
    finally:
        await judge.aclose()


async def test_llm_verdict_citing_stored_ids_is_used(stores: Stores, tmp_path: Path, fake: FakeAnthropic) -> None:
    result, snap = await llm_run(stores, tmp_path, fake)
    (stored,) = snap.verdicts
    (asked,) = [r for r in fake.requests if r["expert"] == "verdict"]
    assert asked["structured"] and asked["status"] == 200 and asked["round"] == stored.round
    assert "The panel stands behind it" in stored.recommendation  # the fake model's wording, not the rules'
    assert stored.notes == [
        "Written by the llm judge (claude-sonnet-4-6) as structured output; "
        "every cited id was checked against the dialogue."
    ]
    assert_cites_only_stored_ids(stored, snap)
    answer = next(t for t in snap.texts if t.expert == "verdict" and t.kind == "answer")
    assert (result.directory / f"round-{stored.round}" / "verdict.prompt.md").exists()
    assert (result.directory / answer.path).read_text(encoding="utf-8") == answer.text
    assert answer.input_tokens == asked["input_tokens"] and answer.output_tokens == asked["output_tokens"]
    assert result.tokens == sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer")
    assert stored.recommendation in (result.directory / "verdict.md").read_text(encoding="utf-8")


async def test_llm_verdict_citing_unknown_ids_falls_back_to_the_rules_verdict(
    stores: Stores, tmp_path: Path, fake: FakeAnthropic
) -> None:
    fake.script_expert("verdict", "phantom")
    result, snap = await llm_run(stores, tmp_path, fake)
    (stored,) = snap.verdicts
    rules = build_verdict(snap, converged=True)
    assert stored.recommendation == rules.recommendation and stored.reasons == rules.reasons
    assert PHANTOM_ID not in stored.cited_ids()
    assert stored.notes[-1] == (
        f"the llm judge's verdict was rejected (cites ids the dialogue does not hold: {PHANTOM_ID}); "
        "this is the rules verdict"
    )
    assert "was rejected" in (result.directory / "verdict.md").read_text(encoding="utf-8")


async def test_an_llm_verdict_that_never_comes_leaves_the_rules_verdict(
    stores: Stores, tmp_path: Path, fake: FakeAnthropic
) -> None:
    fake.script_expert("verdict", "500")
    _, snap = await llm_run(stores, tmp_path, fake)
    (stored,) = snap.verdicts
    assert stored.recommendation == build_verdict(snap, converged=True).recommendation
    assert stored.notes[-1] == "the llm judge did not answer; this is the rules verdict"


async def test_verdict_sections_are_sealed_and_old_verdicts_still_decode(stores: Stores) -> None:
    store = stores.dialogues
    did = await store.create_dialogue("Queues", QUESTION)
    await store.register_round(did, RoundBatch(round=0, answered=["muffin"], open_tensions=0, new_perspectives=0))
    sections = Verdict(
        "final",
        "final",
        0,
        "Adopt the managed queue.",
        question=QUESTION,
        reasons=[VerdictReason("Secret reason text", ["P0001"])],
        tensions=[VerdictTension("T0001", "resolved", "Secret resolution text", ["P0002"], 0)],
        dissent=[VerdictDissent("scone", "Secret dissent text", ["P0003"])],
        risks=["Secret risk text"],
        notes=["Secret note text"],
    )
    stored = await store.register_verdict(did, sections, force=True)
    (item,) = await stores.backend.query(partition_key(did), "verdict#", consistent=True)
    assert item["content_encrypted"] and "Secret" not in repr(item) and "reasons" not in repr(item)
    (read,) = await store.get_verdicts(did)
    assert read == stored and read.tensions[0].round == 0 and read.dissent[0].cites == ["P0003"]

    record = codec.encode_verdict(did, Verdict("v0", "interim", 0, "Old one-line verdict."))
    old_secret = {k: v for k, v in record.secret.items() if k not in SECTION_FIELDS}
    old = codec.decode_verdict({"sk": record.sk, **record.clear}, old_secret)
    assert old.recommendation == "Old one-line verdict." and old.reasons == [] and old.question == ""


async def test_an_exported_verdict_imports_with_its_sections(stores: Stores, tmp_path: Path) -> None:
    _, snap = await run(stores, tmp_path, SimProvider(seed=3))
    await export_dialogue(stores.dialogues, snap.dialogue.id, tmp_path / "exported")
    copy = await import_dialogue(stores.dialogues, tmp_path / "exported", dialogue_id="verdict-copy-aaaaaa")
    assert copy.verdict is not None
    (original,) = snap.verdicts
    assert (copy.verdict.reasons, copy.verdict.tensions, copy.verdict.dissent) == (
        original.reasons,
        original.tensions,
        original.dissent,
    )
    assert copy.verdict.question == QUESTION and copy.verdict.recommendation == original.recommendation
