"""What real runs put in their prompts: entities with global ids across rounds, grounding files (copied, HMAC-recorded
in the audit chain, checked by `audit verify`), anonymous peers, and a shared part identical for the whole round."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
from pathlib import Path

import pytest

from concord.orchestrator.engine.grounding import collect_grounding
from concord.orchestrator.engine.prompts import RenderedPrompt
from concord.orchestrator.engine.providers import SimProvider
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.panel.pools import load_pool
from concord.store.config import Settings
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.factory import Stores, open_stores
from concord.store.grounding import grounding_mac
from tests.services import run_cli

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
NOTES = "Invoices are issued monthly and kept for seven years.\n"
POLICY = "Every export is reviewed by the data protection officer.\n"
SEAT = "## Your seat on the panel"
BRIEF = "## Context for Round"


def run(home: Path, out: Path, *extra: str) -> dict:
    """`concord run` of a sim panel of four; its JSON result."""
    done = run_cli(
        home, "run", "--question", "How should we keep billing records?", "--pool", str(POOL), "--panel-size", "4",
        "--out", str(out), "--quiet", "--json", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def grounded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(home, dialogue folder, dialogue.json) of a run grounded on a directory and a file."""
    base = tmp_path_factory.mktemp("grounded")
    docs = base / "docs"
    (docs / "legal").mkdir(parents=True)
    (docs / "notes.md").write_text(NOTES, encoding="utf-8")
    (docs / "legal" / "policy.txt").write_text(POLICY, encoding="utf-8")
    (docs / ".hidden").write_text("never read", encoding="utf-8")
    single = base / "brief.txt"
    single.write_text("Budget: small.\n", encoding="utf-8")
    result = run(base / "home", base / "out", "--ground", str(docs), str(single))
    folder = Path(result["directory"])
    return base / "home", folder, json.loads((folder / "dialogue.json").read_text(encoding="utf-8"))


def prompts(folder: Path, number: int) -> dict[str, RenderedPrompt]:
    """The expert prompts of one round, by slug."""
    files = sorted((folder / f"round-{number}").glob("*.prompt.md"))
    return {
        f.name.removesuffix(".prompt.md"): RenderedPrompt.from_markdown(f.read_text(encoding="utf-8")) for f in files
    }


def test_grounding_files_are_copied_and_inlined_in_every_prompt(grounded: tuple[Path, Path, dict]) -> None:
    _, folder, _ = grounded
    assert (folder / "grounding" / "docs" / "notes.md").read_text(encoding="utf-8") == NOTES
    assert (folder / "grounding" / "docs" / "legal" / "policy.txt").read_text(encoding="utf-8") == POLICY
    assert not (folder / "grounding" / "docs" / ".hidden").exists()
    for number in (0, 1, 2):
        for prompt in prompts(folder, number).values():
            assert "`docs/legal/policy.txt`, `docs/notes.md`, `brief.txt`" in prompt.user
            assert NOTES.strip() in prompt.user and POLICY.strip() in prompt.user and "never read" not in prompt.user


def test_grounding_is_sealed_with_hmacs_in_the_audit_chain(grounded: tuple[Path, Path, dict]) -> None:
    home, folder, _ = grounded
    stored = b"".join(p.read_bytes() for p in home.glob("concord.db*"))
    secret = asyncio.run(LocalKeyProvider(home / "umk.key").tenant_secret("local", 1, "grounding"))
    for name, text in (("docs/notes.md", NOTES), ("docs/legal/policy.txt", POLICY)):
        plain = hashlib.sha256(text.encode()).hexdigest()
        assert plain.encode() not in stored and name.encode() not in stored
        assert grounding_mac(secret, name, text.encode()).encode() not in stored  # sealed, not in any attribute
    assert b"policy" not in stored and b"notes.md" not in stored

    async def recorded() -> tuple[dict[str, str], list]:
        async with await open_stores(Settings(home=home)) as stores:
            dialogue_id = folder.name.rsplit("-", 1)[-1]
            (did,) = [d for d in await stores.analytics.dialogue_ids() if d.endswith(dialogue_id)]
            return await stores.dialogues.grounding(did), (await stores.dialogues.load_partition(did)).audit

    macs, audit = asyncio.run(recorded())
    names = ("brief.txt", "docs/legal/policy.txt", "docs/notes.md")
    files = {name: (folder / "grounding" / name).read_bytes() for name in names}
    # HMAC-SHA256 under the tenant's grounding secret, of the name, a NUL and the bytes: computed here independently.
    assert macs == {
        name: hmac.new(secret, name.encode() + b"\x00" + data, "sha256").hexdigest() for name, data in files.items()
    }
    assert not set(macs.values()) & {hashlib.sha256(data).hexdigest() for data in files.values()}
    (entry,) = [a for a in audit if a.operation == "record_grounding"]
    assert entry.keys == ["grounding"] and entry.seq == 2 and not entry.files


def test_audit_verify_names_an_edited_or_missing_grounding_file(
    grounded: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    home, folder, _ = grounded
    notes = folder / "grounding" / "docs" / "notes.md"
    assert run_cli(home, "audit", "verify").returncode == 0
    notes.write_text(NOTES + "One more line.\n", encoding="utf-8")
    try:
        edited = run_cli(home, "audit", "verify", "--json")
        assert edited.returncode == 1
        (report,) = json.loads(edited.stdout)["dialogues"]
        assert report["problem"] == "grounding/docs/notes.md: grounding file changed since it was recorded"
        notes.unlink()
        missing = run_cli(home, "audit", "verify")
        assert missing.returncode == 1 and "grounding/docs/notes.md: grounding file missing" in missing.stdout
    finally:
        notes.write_text(NOTES, encoding="utf-8")
    assert run_cli(home, "audit", "verify").returncode == 0


def test_round_two_carries_round_zero_perspectives_with_ids_authors_and_bodies(
    grounded: tuple[Path, Path, dict],
) -> None:
    _, folder, dialogue = grounded
    round_zero = [e for e in dialogue["entities"] if e["round"] == 0 and e["kind"] == "perspective"]
    assert round_zero
    for prompt in prompts(folder, 2).values():
        for entity in round_zero:
            author = entity["contributors"][0].capitalize()
            assert (
                f"- **{entity['id']}** (perspective, {entity['status']}, by {author}): {entity['label']}" in prompt.user
            )
            assert entity["content"][:200] in prompt.user
    for slug, prompt in prompts(folder, 1).items():
        assert "**P0001** (perspective" in prompt.user
        mine = [e["id"] for e in dialogue["entities"] if e["round"] == 0 and slug in e["contributors"]]
        assert f"**Your earlier markers**: {', '.join(mine)}." in prompt.user[prompt.user.index(SEAT) :]


def test_a_rounds_prompts_share_the_system_part_and_everything_before_the_expert_part(
    grounded: tuple[Path, Path, dict],
) -> None:
    _, folder, _ = grounded
    for number in (1, 2):
        round_prompts = prompts(folder, number)
        assert len(round_prompts) >= 3
        assert len({p.system for p in round_prompts.values()}) == 1
        shared = {p.user[: min(p.user.index(h) for h in (BRIEF, SEAT) if h in p.user)] for p in round_prompts.values()}
        assert len(shared) == 1
        (prefix,) = shared
        answers = (folder / f"round-{number - 1}").glob("*.md")
        for answer in (a for a in answers if not a.name.endswith(".prompt.md")):
            assert answer.read_text(encoding="utf-8").strip() in prefix
        assert "Where the panel stands after round" in prefix and NOTES.strip() in prefix
        assert "your own" not in prefix
        for slug in round_prompts:
            assert f"round-{number}/{slug}.md" not in prefix


def test_anonymous_run_hides_peer_names_and_roles(tmp_path: Path) -> None:
    folder = Path(run(tmp_path / "home", tmp_path / "out", "--anonymous")["directory"])
    dialogue = json.loads((folder / "dialogue.json").read_text(encoding="utf-8"))
    experts = {e["slug"]: e["role"] for e in dialogue["experts"]}
    for number in (1, 2):
        round_prompts = prompts(folder, number)
        for slug, prompt in round_prompts.items():
            shared = prompt.user[: min(prompt.user.index(h) for h in (BRIEF, SEAT) if h in prompt.user)]
            for other, role in experts.items():
                assert not re.search(rf"\b{other}\b", shared, re.I), (slug, other)
                assert role not in shared and role not in prompt.system
            assert "#### 🧁 Expert A\n" in shared and "by Expert " in shared
            assert "this dialogue is anonymous" in prompt.user[len(shared) :]
        assert len({p.user[: p.user.index(SEAT)].split(BRIEF)[0] for p in round_prompts.values()}) == 1
    rerun = run_cli(tmp_path / "home", "show", dialogue["dialogue"]["id"], "--json")
    assert rerun.returncode == 0


@pytest.mark.parametrize("case", ["missing", "binary", "empty directory"])
def test_bad_grounding_exits_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    target = tmp_path / "ground"
    if case == "binary":
        target.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    elif case == "empty directory":
        target.mkdir()
    done = run_cli(
        tmp_path / "home", "run", "--question", "Q?", "--pool", str(POOL), "--out", str(tmp_path / "out"),
        "--ground", str(target), "--json",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "bad_input" and str(target) in error["message"]
    assert not (tmp_path / "out").exists() and not os.path.exists(tmp_path / "home" / "concord.db")


async def test_a_run_reads_its_grounding_from_the_dialogue_folder_only(stores: Stores, tmp_path: Path) -> None:
    original = tmp_path / "ground.md"
    original.write_text(NOTES, encoding="utf-8")
    creator = Orchestrator(stores.dialogues, SimProvider())
    grounding = collect_grounding([str(original)])
    did = await creator.create("Q?", load_pool(POOL), RunSettings(panel_size=3), tmp_path / "out", grounding=grounding)
    original.unlink()
    dialogue = await stores.dialogues.get_dialogue(did)
    assert RunSettings.from_json(dialogue.settings).grounding == ("ground.md",)
    result = await Orchestrator(stores.dialogues, SimProvider()).run(did)  # as `resume` does: no flags, no originals
    assert result.status == "converged"
    for number in range(result.rounds):
        for prompt in prompts(result.directory, number).values():
            assert "`ground.md`" in prompt.user and NOTES.strip() in prompt.user
    assert (await stores.dialogues.verify_audit(did, files_root=result.directory)).ok
