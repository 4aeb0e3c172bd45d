"""`concord run --provider replay`: every corpus dialogue, repair files, missing answers, answer-less directories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from concord.orchestrator.engine.providers import AgentFailed, Call, ReplayMissing, ReplayProvider
from concord.orchestrator.panel.panels import load_panel
from concord.store.errors import BadInput
from tests.conftest import CORPUS, corpus_path
from tests.services import run_cli

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
WAIT = 300
#: Corpus folders that record no expert answers (corpus README: pool, panels, summaries only).
ANSWERLESS = {"ukfs-spec-review", "local-prod-parity"}
CORPUS_DIALOGUES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else ["corpus-absent"]
ANSWER = "[PERSPECTIVE P01: Keep one store]\nOne store keeps the audit chain whole.\n\n[MOVE:CONVERGE]\n"
UNPARSABLE = "I agree with the others, broadly speaking.\n"


def replay(home: Path, out: Path, directory: Path, pool: Path = POOL) -> subprocess.CompletedProcess[str]:
    """`concord run --provider replay --replay DIRECTORY`, quiet, with --json."""
    return run_cli(
        home,
        "run",
        "--question",
        "Which store?",
        "--pool",
        str(pool),
        "--provider",
        "replay",
        "--replay",
        str(directory),
        "--out",
        str(out),
        "--quiet",
        "--json",
        timeout=WAIT,
    )


def only_output_dir(out: Path) -> Path:
    """The one dialogue directory a run wrote under `out`."""
    (directory,) = [p for p in out.iterdir() if p.is_dir()]
    return directory


def replayed_round(out: Path, number: int) -> dict[str, Any]:
    """Round `number` as the replayed dialogue's dialogue.json records it (panel, answered, absent)."""
    exported = json.loads((only_output_dir(out) / "dialogue.json").read_text(encoding="utf-8"))
    (found,) = [r for r in exported["rounds"] if r["round"] == number]
    return cast(dict[str, Any], found)


def recording(root: Path, rounds: dict[int, dict[str, str]]) -> Path:
    """A synthetic recorded dialogue: round-N/<file> holding the given texts."""
    for number, files in rounds.items():
        round_dir = root / f"round-{number}"
        round_dir.mkdir(parents=True)
        for name, text in files.items():
            (round_dir / name).write_text(text, encoding="utf-8")
    return root


def assert_one_line_refusal(ran: subprocess.CompletedProcess[str], out: Path, message: str) -> None:
    """Exit 2, one error line naming the problem, no traceback, and no dialogue written."""
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    error = json.loads(ran.stdout)["error"]
    assert message in error["message"] and "\n" not in error["message"]
    assert not out.exists()


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_DIALOGUES)
def test_replay_runs_every_corpus_dialogue_without_a_traceback(tmp_path: Path, name: str) -> None:
    recorded = corpus_path(name)
    out = tmp_path / "out"
    ran = replay(tmp_path / "home", out, recorded, recorded / "expert-pool.json")
    assert "Traceback" not in ran.stderr
    if name in ANSWERLESS:
        assert_one_line_refusal(ran, out, "records no expert answers")
        return
    assert ran.returncode in (0, 3), ran.stderr
    result = json.loads(ran.stdout)
    recorded_rounds = sorted(int(p.name.removeprefix("round-")) for p in recorded.glob("round-*") if p.is_dir())
    assert result["rounds"] == len(recorded_rounds) and result["tokens"] == 0
    replayed = only_output_dir(out)
    for number in recorded_rounds:
        answers = sorted((replayed / f"round-{number}").glob("*.md"))
        written = [p for p in answers if not p.name.endswith(".prompt.md") and ".repair" not in p.name]
        assert written, f"round {number} replayed no answer"
        for answer in written:
            assert answer.read_bytes() == (recorded / f"round-{number}" / answer.name).read_bytes()
        load_panel(replayed / f"round-{number}" / "panel.json", number)  # readable by a resumed run
        seated = {m["name"].lower() for m in replayed_round(out, number)["panel"]}
        assert seated == {p.stem for p in (recorded / f"round-{number}").glob("*.md") if "." not in p.stem}


def test_a_recorded_repair_file_answers_the_repair_prompt(tmp_path: Path) -> None:
    recorded = recording(
        tmp_path / "recorded",
        {0: {"muffin.md": UNPARSABLE, "muffin.repair.md": ANSWER, "scone.md": ANSWER}},
    )
    out = tmp_path / "out"
    ran = replay(tmp_path / "home", out, recorded)
    assert ran.returncode in (0, 3), ran.stderr
    round_0 = only_output_dir(out) / "round-0"
    assert (round_0 / "muffin.repair.prompt.md").is_file()
    assert (round_0 / "muffin.repair.md").read_text(encoding="utf-8") == ANSWER
    recorded_round = replayed_round(out, 0)
    assert recorded_round["answered"] == 2 and recorded_round["absent"] == []


def test_an_unparsable_answer_with_no_recorded_repair_leaves_the_expert_absent(tmp_path: Path) -> None:
    recorded = recording(tmp_path / "recorded", {0: {"muffin.md": UNPARSABLE, "scone.md": ANSWER}})
    out = tmp_path / "out"
    ran = replay(tmp_path / "home", out, recorded)
    assert ran.returncode in (0, 3), ran.stderr
    assert "Traceback" not in ran.stderr
    round_0 = only_output_dir(out) / "round-0"
    assert (round_0 / "muffin.repair.prompt.md").is_file()
    assert not (round_0 / "muffin.repair.md").exists()
    recorded_round = replayed_round(out, 0)
    assert recorded_round["answered"] == 1 and recorded_round["absent"] == ["muffin"]


async def test_an_expert_the_recorded_panel_seats_without_an_answer_is_absent(tmp_path: Path) -> None:
    recorded = recording(tmp_path / "recorded", {0: {"scone.md": ANSWER}})
    provider = ReplayProvider(recorded)
    assert (await provider.complete(Call("s", "p", "Scone", 0, "m"))).text == ANSWER
    with pytest.raises(AgentFailed, match="no answer for muffin in round 0"):
        await provider.complete(Call("s", "p", "Muffin", 0, "m"))
    with pytest.raises(AgentFailed, match="no repair answer for scone in round 0"):
        await provider.complete(Call("s", "p", "Scone", 0, "m", repair=True))
    with pytest.raises(AgentFailed, match="round 1"):
        await provider.complete(Call("s", "p", "Scone", 1, "m"))
    with pytest.raises(ReplayMissing, match="no round 1"):
        provider.panel(1)


def test_a_round_recorded_without_prompts_keeps_each_experts_earlier_role(tmp_path: Path) -> None:
    prompt = "You are Muffin 🧁, a Store Engineer in an ALIGNMENT-seeking dialogue.\n"
    recorded = recording(
        tmp_path / "recorded",
        {0: {"muffin.md": ANSWER, "muffin.prompt.md": prompt, "scone.md": ANSWER}, 1: {"muffin.md": ANSWER}},
    )
    provider = ReplayProvider(recorded)
    assert [m.role for m in provider.panel(0).members] == ["Store Engineer", ""]
    assert [(m.name, m.role) for m in provider.panel(1).members] == [("Muffin", "Store Engineer")]


def test_a_recorded_panel_member_with_no_answer_file_is_absent_in_the_run(tmp_path: Path) -> None:
    recorded = recording(tmp_path / "recorded", {0: {"scone.md": ANSWER, "muffin.md": ANSWER}})
    (recorded / "round-0" / "panel.json").write_text(
        json.dumps(
            {
                "round": 0,
                "agents": [
                    {"name": "Scone", "role": "Store engineer", "tier": "Core", "relevance": 0.9},
                    {"name": "Muffin", "role": "Auditor", "tier": "Core", "relevance": 0.8},
                    {"name": "Eclair", "role": "Skeptic", "tier": "Wildcard", "relevance": 0.3},
                ],
            }
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    ran = replay(tmp_path / "home", out, recorded)
    assert ran.returncode in (0, 3), ran.stderr
    round_0 = only_output_dir(out) / "round-0"
    assert (round_0 / "eclair.prompt.md").is_file()
    assert not (round_0 / "eclair.md").exists()
    assert (round_0 / "scone.md").read_text(encoding="utf-8") == ANSWER
    recorded_round = replayed_round(out, 0)
    assert [m["name"] for m in recorded_round["panel"]] == ["Scone", "Muffin", "Eclair"]
    assert recorded_round["answered"] == 2 and recorded_round["absent"] == ["eclair"]


@pytest.mark.parametrize(
    ("rounds", "message"),
    [
        ({}, "has no round-N directories"),
        ({0: {"panel.json": "{}", "summary.md": "# Round 0\n"}}, "records no expert answers"),
        ({0: {"muffin.prompt.md": "prompt"}, 1: {"muffin.md": ANSWER}}, "records no answers in round-0"),
        ({0: {"muffin.md": ANSWER, "panel.json": "{}"}}, "not a panel"),
    ],
    ids=["not-a-dialogue", "answer-less", "round-0-without-answers", "bad-panel"],
)
def test_a_directory_that_cannot_be_replayed_is_refused_in_one_line_before_anything_is_written(
    tmp_path: Path, rounds: dict[int, dict[str, str]], message: str
) -> None:
    recorded = recording(tmp_path / "recorded", rounds)
    recorded.mkdir(exist_ok=True)
    with pytest.raises(BadInput, match=message):
        ReplayProvider(recorded)
    out = tmp_path / "out"
    assert_one_line_refusal(replay(tmp_path / "home", out, recorded), out, message)


def test_a_missing_replay_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = replay(tmp_path / "home", out, tmp_path / "gone")
    assert_one_line_refusal(ran, out, f"no recorded dialogue directory at {tmp_path / 'gone'}")


def test_replay_directory_without_the_replay_provider_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = run_cli(
        tmp_path / "home",
        "run",
        "--question",
        "Q?",
        "--pool",
        str(POOL),
        "--replay",
        str(tmp_path),
        "--out",
        str(out),
        "--json",
    )
    assert_one_line_refusal(ran, out, "only with --provider replay")
