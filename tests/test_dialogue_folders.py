"""One folder per dialogue, bound to it: the directory carries the id's suffix, and only this dialogue's own
prompt and answer files are ever reused (issue 16, item 1)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concord.orchestrator.blue.layout import dialogue_dir_name, dialogue_suffix
from concord.orchestrator.engine import run as run_module
from concord.orchestrator.engine.exchange import ForeignFile
from concord.orchestrator.engine.providers import Answer, Call, SimProvider
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.panel.panels import sample_panel
from concord.orchestrator.panel.pools import load_pool
from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.serving.starter import BackgroundStarter
from concord.resolvers.ports import StartRequest
from concord.store.config import Settings
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import ValidationFailed
from concord.store.factory import Stores, open_stores
from tests.services import run_cli

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
TITLE = "Which store"
QUESTIONS = ("Should the team keep its records in SQLite?", "Should the team move its records to DynamoDB?")
SETTINGS = RunSettings(provider="sim", panel_size=3, seed=3, max_rounds=2, concurrency=1)


def wait_for_a_fresh_minute() -> None:
    """Sleep past the next minute boundary when too little of this minute is left for both runs."""
    now = datetime.now(UTC)
    if now.second >= 40:
        time.sleep(60 - now.second + 0.5)


async def settle() -> None:
    """Let the seats a refused round left running finish, so the next step sees a quiet store."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others, timeout=30)


def stamp_and_slug(directory: Path) -> str:
    """`{stamp}-{slug}` of a dialogue directory name, without the id's suffix."""
    return directory.name.rsplit("-", 1)[0]


async def assert_bound(store: DialogueStore, dialogue_id: str, question: str, other: str) -> Path:
    """The dialogue's directory carries its suffix, its prompts its own question, and every file is its record."""
    snap = await store.load_partition(dialogue_id)
    directory = Path(snap.dialogue.output_dir or "")
    assert directory.name.endswith(f"-{dialogue_suffix(dialogue_id)}")
    prompts = sorted(directory.glob("round-*/*.prompt.md"))
    assert prompts, "the run wrote prompts"
    for path in prompts:
        text = path.read_text(encoding="utf-8")
        assert question in text and other not in text, path
    report = await store.verify_audit(dialogue_id, files_root=directory)
    assert report.ok, report.problem
    assert report.files_checked == len(snap.texts) > 0
    assert sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer") > 0, "paid, not reused"
    return directory


def test_same_title_twice_in_one_minute_through_the_cli(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    wait_for_a_fresh_minute()
    results = []
    for question in QUESTIONS:
        args = ["run", "--title", TITLE, "--question", question, "--pool", str(POOL), "--out", str(out)]
        args += ["--panel-size", "3", "--max-rounds", "2", "--quiet", "--json"]
        done = run_cli(home, *args, timeout=120)
        assert done.returncode in (0, 3), done.stderr
        results.append(json.loads(done.stdout))
    first, second = (Path(r["directory"]) for r in results)
    assert first != second and stamp_and_slug(first) == stamp_and_slug(second), "same minute, same slug"
    assert sorted(p.name for p in out.iterdir()) == sorted([first.name, second.name])
    assert all(r["tokens"] > 0 for r in results)

    async def check() -> None:
        stores = await open_stores(Settings(home=home))
        try:
            for result, question, other in zip(results, QUESTIONS, reversed(QUESTIONS), strict=True):
                await assert_bound(stores.dialogues, result["dialogue_id"], question, other)
        finally:
            await stores.close()

    asyncio.run(check())


async def test_same_title_twice_through_start_dialogue_under_two_tenants(stores: Stores, tmp_path: Path) -> None:
    wait_for_a_fresh_minute()
    starter = BackgroundStarter(SimProvider(seed=0), ProgressBus(), tmp_path / "dialogues", SETTINGS)
    tenants = [
        DialogueStore(stores.backend, stores.keys, tenant=name, principal="api", clock=stores.dialogues.clock)
        for name in ("acme", "globex")
    ]
    pool = json.loads(POOL.read_text(encoding="utf-8"))
    ids = [
        await starter(StartRequest(TITLE, question, pool, None, 2, 3, store))
        for question, store in zip(QUESTIONS, tenants, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*starter.tasks), 60)
    first, second = [
        await assert_bound(store, did, question, other)
        for store, did, question, other in zip(tenants, ids, QUESTIONS, reversed(QUESTIONS), strict=True)
    ]
    assert first != second and first.parent == second.parent
    assert stamp_and_slug(first) == stamp_and_slug(second), "same minute, same slug"


@pytest.fixture
def scripted_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The dialogue ids `Orchestrator.create` draws, in order, instead of random ones."""
    queue: list[str] = []
    monkeypatch.setattr(run_module, "new_dialogue_id", lambda title: queue.pop(0))
    yield queue


async def test_an_existing_directory_or_a_taken_id_makes_create_draw_a_fresh_id(
    stores: Stores, tmp_path: Path, scripted_ids: list[str]
) -> None:
    out = tmp_path / "out"
    now = datetime.now(UTC)
    squatted = [
        out / dialogue_dir_name(TITLE, moment, "which-store-aaaaaa") for moment in (now, now + timedelta(minutes=1))
    ]
    for directory in squatted:
        directory.mkdir(parents=True)
    await stores.dialogues.create_dialogue(TITLE, QUESTIONS[0], dialogue_id="which-store-cccccc")
    scripted_ids.extend(["which-store-aaaaaa", "which-store-cccccc", "which-store-dddddd"])
    did = await Orchestrator(stores.dialogues, SimProvider(seed=3)).create(
        QUESTIONS[1], load_pool(POOL), SETTINGS, out, title=TITLE
    )
    assert did == "which-store-dddddd" and not scripted_ids
    directory = Path((await stores.dialogues.load_partition(did)).dialogue.output_dir or "")
    assert directory.name.endswith("-which-store-dddddd") and (directory / "expert-pool.json").exists()
    assert all(not any(d.iterdir()) for d in squatted), "a directory that already existed is left untouched"
    assert not list(out.glob("*-cccccc")), "no directory is left for the id that was taken"


async def test_a_dialogue_that_is_not_created_leaves_no_folder(stores: Stores, tmp_path: Path) -> None:
    out = tmp_path / "not" / "yet" / "there"
    with pytest.raises(ValidationFailed):
        await Orchestrator(stores.dialogues, SimProvider(seed=3)).create(" ", load_pool(POOL), SETTINGS, out)
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize("copied", [("prompt.md", "md"), ("md",)], ids=["prompt-and-answer", "answer-only"])
async def test_another_dialogues_files_in_the_folder_are_refused_never_adopted(
    stores: Stores, tmp_path: Path, copied: tuple[str, ...]
) -> None:
    orchestrator = Orchestrator(stores.dialogues, SimProvider(seed=3))
    first = await orchestrator.run(
        await orchestrator.create(QUESTIONS[0], load_pool(POOL), SETTINGS, tmp_path / "out", title=TITLE)
    )
    seat = sample_panel(load_pool(POOL), SETTINGS.panel_size, seed=SETTINGS.seed).members[0].slug
    did = await orchestrator.create(QUESTIONS[1], load_pool(POOL), SETTINGS, tmp_path / "out", title=TITLE)
    directory = Path((await stores.dialogues.load_partition(did)).dialogue.output_dir or "")
    (directory / "round-0").mkdir()
    for ending in copied:
        shutil.copy(first.directory / "round-0" / f"{seat}.{ending}", directory / "round-0" / f"{seat}.{ending}")
    named = directory / "round-0" / f"{seat}.{copied[0]}"
    with pytest.raises(ForeignFile, match=f"^{named} is not this dialogue's"):
        await orchestrator.run(did)
    await settle()
    for ending in copied:
        assert (directory / "round-0" / f"{seat}.{ending}").read_bytes() == (
            first.directory / "round-0" / f"{seat}.{ending}"
        ).read_bytes(), "the stranger's file is left as it was"
    texts = (await stores.dialogues.load_partition(did)).texts
    assert not [t for t in texts if t.expert == seat and t.kind == "answer"], "its answer is not adopted"


class CrashingSim(SimProvider):
    """The sim panel, except that one seat's round-0 call crashes the run; counts every call."""

    def __init__(self, seed: int, crash: str | None) -> None:
        super().__init__(seed)
        self.crash = crash
        self.calls: list[tuple[str, int]] = []

    async def complete(self, call: Call) -> Answer:
        """Crash on the chosen seat, else answer like the sim."""
        if (call.expert, call.round) == (self.crash, 0):
            raise RuntimeError("the process dies here")
        self.calls.append((call.expert, call.round))
        return await super().complete(call)


async def test_resume_reuses_this_dialogues_own_files_and_refuses_an_edited_one(stores: Stores, tmp_path: Path) -> None:
    seats = [m.slug for m in sample_panel(load_pool(POOL), SETTINGS.panel_size, seed=SETTINGS.seed).members]
    crashing = Orchestrator(stores.dialogues, CrashingSim(3, seats[-1]))
    did = await crashing.create(QUESTIONS[0], load_pool(POOL), SETTINGS, tmp_path / "out", title=TITLE)
    with pytest.raises(RuntimeError):
        await crashing.run(did)
    directory = Path((await stores.dialogues.load_partition(did)).dialogue.output_dir or "")
    answered = directory / "round-0" / f"{seats[0]}.md"
    own = answered.read_text(encoding="utf-8")
    answered.write_text(own + "\n[MOVE:CONVERGE]\n", encoding="utf-8")
    resumed = CrashingSim(3, None)
    with pytest.raises(ForeignFile, match=f"^{answered} is not this dialogue's: it differs from the answer stored"):
        await Orchestrator(stores.dialogues, resumed).run(did)
    await settle()
    assert answered.read_text(encoding="utf-8") != own, "the edited file is refused, not overwritten"
    answered.write_text(own, encoding="utf-8")
    result = await Orchestrator(stores.dialogues, resumed).run(did)
    assert [seat for seat, number in resumed.calls if number == 0] == [seats[-1]], (
        "only the crashed seat is asked, once"
    )
    assert result.rounds >= 1
    await assert_bound(stores.dialogues, did, QUESTIONS[0], QUESTIONS[1])
