"""Moderator in the loop: pause after each round, add a note the next round carries, resume (issue 16, item 5)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from concord.store.config import Settings
from concord.store.factory import open_stores
from concord.store.model import TextRecord
from tests.services import run_cli

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
NOTE = "Weigh the migration cost against the zebra-crossing audit before anything else."


def run_paused(home: Path, out: Path) -> str:
    """Start a sim dialogue that pauses after every round; its id, once it paused after round 0."""
    result = run_cli(
        home,
        "run",
        "--question",
        "Should the team move its records to DynamoDB?",
        "--pool",
        str(POOL),
        "--panel-size",
        "3",
        "--max-rounds",
        "4",
        "--out",
        str(out),
        "--pause-after-round",
        "--json",
    )
    assert result.returncode == 5, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "paused" and data["rounds"] == 1
    return str(data["dialogue_id"])


def audit_operations(home: Path, dialogue_id: str) -> list[str]:
    """The operations of the dialogue's audit chain, oldest first."""

    async def read() -> list[str]:
        async with await open_stores(Settings(home=home)) as stores:
            snap = await stores.dialogues.load_partition(dialogue_id)
            return [entry.operation for entry in sorted(snap.audit, key=lambda a: a.seq)]

    return asyncio.run(read())


def test_pause_note_resume_carries_the_note_into_the_next_round(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    dialogue_id = run_paused(home, out)
    listed = json.loads(run_cli(home, "list", "--status", "paused", "--json").stdout)
    assert [d["id"] for d in listed["dialogues"]] == [dialogue_id]

    added = run_cli(home, "note", dialogue_id, NOTE, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"dialogue_id": dialogue_id, "round": 1, "seq": 1}
    assert audit_operations(home, dialogue_id)[-1] == "add_note"
    stored = b"".join(path.read_bytes() for path in home.rglob("*.db*"))
    assert b"zebra-crossing" not in stored, "the note is sealed, never in clear in the backend"

    resumed = run_cli(home, "resume", dialogue_id, "--json")
    assert resumed.returncode == 5, resumed.stderr
    assert json.loads(resumed.stdout)["rounds"] == 2, "a paused dialogue pauses again after the next round"
    directory = next(out.iterdir())
    round_zero = [p.read_text(encoding="utf-8") for p in sorted(directory.glob("round-0/*.prompt.md"))]
    round_one = [p.read_text(encoding="utf-8") for p in sorted(directory.glob("round-1/*.prompt.md"))]
    assert round_zero and not any(NOTE in text for text in round_zero)
    assert round_one and all(NOTE in text for text in round_one), "every round-1 prompt carries the note"

    finished = run_cli(home, "resume", dialogue_id, "--no-pause", "--json")
    assert finished.returncode in (0, 3), finished.stderr
    assert json.loads(finished.stdout)["status"] == "converged"
    verified = run_cli(home, "audit", "verify", dialogue_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_bad_note_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    dialogue_id = run_paused(home, out)
    before = audit_operations(home, dialogue_id)
    for text in ("   ", "x" * 4001):
        refused = run_cli(home, "note", dialogue_id, text)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith("concord: a moderator note") and refused.stderr.count("\n") == 1
    assert audit_operations(home, dialogue_id) == before

    assert run_cli(home, "resume", dialogue_id, "--no-pause").returncode in (0, 3)
    before = audit_operations(home, dialogue_id)
    closed = run_cli(home, "note", dialogue_id, NOTE)
    assert closed.returncode == 2
    assert "is converged" in closed.stderr
    assert audit_operations(home, dialogue_id) == before


def test_a_note_never_changes_prompts_already_recorded(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[int, int]]:
        async with await open_stores(Settings(home=tmp_path / "home")) as stores:
            store = stores.dialogues
            dialogue_id = await store.create_dialogue("Notes", "Which store?")
            first = await store.add_note(dialogue_id, "before any prompt")
            await store.record_text(dialogue_id, TextRecord("prompt", 0, "cupcake", "the round-0 prompt"))
            second = await store.add_note(dialogue_id, "while round 0 runs")
            third = await store.add_note(dialogue_id, "also while round 0 runs")
            snap = await store.load_partition(dialogue_id)
            assert [n.text for n in snap.notes] == [
                "before any prompt",
                "while round 0 runs",
                "also while round 0 runs",
            ]
            return [(n.round, n.seq) for n in (first, second, third)]

    assert asyncio.run(scenario()) == [(0, 1), (1, 1), (1, 2)]
