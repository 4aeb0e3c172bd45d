"""The real `concord` command in a subprocess: exit codes, --json errors, --version, list, completion, bad input."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from concord.orchestrator.cli.command import ExitCode
from concord.store.config import Settings
from concord.store.factory import open_stores
from tests.fake_anthropic import fake_server_process
from tests.services import concord, environment, run_cli

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
WAIT = 120


def sim_run(home: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """A quiet simulated run with --json."""
    return run_cli(
        home, "run", "--question", "Which store?", "--pool", str(POOL), "--out", str(out), "--quiet", "--json", *extra
    )


def test_version_is_the_installed_distributions() -> None:
    shown = run_cli(Path("/nonexistent"), "--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"concord {version('concord')}"


@pytest.mark.parametrize(
    ("extra", "code", "status", "forced"),
    [
        ((), 0, "converged", False),
        (("--max-rounds", "1"), 3, "converged", True),
        (("--budget-tokens", "1"), 4, "budget_exceeded", None),
    ],
    ids=["converged", "forced-at-cap", "budget"],
)
def test_run_exit_code_says_how_the_dialogue_ended(
    tmp_path: Path, extra: tuple[str, ...], code: int, status: str, forced: bool | None
) -> None:
    ran = sim_run(tmp_path / "home", tmp_path / "out", *extra)
    assert ran.returncode == code, ran.stderr
    result = json.loads(ran.stdout)
    assert result["status"] == status
    assert (result["verdict"] or {}).get("forced") == forced


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("**Exit codes.**", 1)[1].split("\n\n")[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", readme, re.MULTILINE)}
    assert documented == {code.value for code in ExitCode}
    assert (ExitCode.OK, ExitCode.FORCED, ExitCode.BUDGET_STOPPED, ExitCode.PAUSED) == (0, 3, 4, 5)


def test_resume_of_a_budget_stopped_run_exits_4_again_and_0_once_converged(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dialogue_id = json.loads(sim_run(home, tmp_path / "out", "--budget-tokens", "1").stdout)["dialogue_id"]
    again = run_cli(home, "resume", dialogue_id, "--quiet", "--json")
    assert again.returncode == 4 and json.loads(again.stdout)["status"] == "budget_exceeded", again.stderr
    finished = sim_run(home, tmp_path / "out2")
    assert finished.returncode == 0
    resumed = run_cli(home, "resume", json.loads(finished.stdout)["dialogue_id"], "--quiet", "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["status"] == "converged", resumed.stderr


def test_an_error_exits_1_with_one_line_or_one_json_object(tmp_path: Path) -> None:
    home = tmp_path / "home"
    text = run_cli(home, "show", "nosuchdialogue")
    assert text.returncode == 1 and text.stdout == ""
    assert text.stderr.startswith("concord: ") and text.stderr.count("\n") == 1, text.stderr
    as_json = run_cli(home, "show", "nosuchdialogue", "--json")
    assert as_json.returncode == 1 and as_json.stderr == ""
    error = json.loads(as_json.stdout)
    assert list(error) == ["error"] and error["error"]["code"] == "not_found"
    assert error["error"]["message"] == text.stderr.removeprefix("concord: ").strip()


def test_an_os_error_exits_1_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "cp.json"
    made = run_cli(tmp_path / "home", "audit", "checkpoint", "--out", str(target))
    assert made.returncode == 1
    assert made.stderr == f"concord: No such file or directory: {target}\n"


def test_bad_command_line_exits_2_with_usage_or_one_json_object(tmp_path: Path) -> None:
    text = run_cli(tmp_path / "home", "run", "--pool", str(POOL))
    assert text.returncode == 2
    assert text.stderr.startswith("usage: concord run")
    assert text.stderr.splitlines()[-1] == (
        "concord: the following arguments are required: --question (see `concord run --help`)"
    )
    as_json = run_cli(tmp_path / "home", "run", "--pool", str(POOL), "--json")
    assert as_json.returncode == 2 and as_json.stderr == ""
    assert json.loads(as_json.stdout) == {
        "error": {
            "code": "usage",
            "message": "the following arguments are required: --question (see `concord run --help`)",
        }
    }


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    broken_pool = tmp_path / "broken-pool.json"
    broken_pool.write_text('{"domain": "x", "experts": [{"role": "r", "tier": "Nope", "relevance": 2}]}')
    invalid = run_cli(home, "run", "--question", "Q?", "--pool", str(broken_pool), "--out", str(out), "--json")
    assert invalid.returncode == 2, invalid.stderr
    assert json.loads(invalid.stdout)["error"]["code"] == "bad_input"
    bad_store = run_cli(home, "list", env={**environment(home, "http://127.0.0.1:9"), "CONCORD_STORE": "postgres"})
    assert bad_store.returncode == 2 and "CONCORD_STORE" in bad_store.stderr, bad_store.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-pool.json"], "no home, no output directory"


def test_a_malformed_dialogue_id_exits_2_with_one_line(tmp_path: Path) -> None:
    shown = run_cli(tmp_path / "home", "show", "NOT AN ID")
    assert shown.returncode == 2
    assert shown.stderr == "concord: 'NOT AN ID' is not a dialogue id (lowercase letters, digits and single dashes)\n"
    rotated = run_cli(tmp_path / "home", "keys", "rotate", "--dialogue", "x#y", "--json")
    assert rotated.returncode == 2 and json.loads(rotated.stdout)["error"]["code"] == "invalid_argument"


def test_ctrl_c_exits_130_and_says_how_to_continue(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with fake_server_process(log=tmp_path / "requests.jsonl", latency=2.0) as fake:
        process = subprocess.Popen(
            concord(
                "run", "--question", "Q?", "--pool", str(POOL), "--provider", "anthropic", "--out", str(out), "--quiet"
            ),
            env=environment(tmp_path / "home", fake.base_url),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + WAIT
            while not list(out.glob("*/round-0/*.prompt.md")):  # a model call is in flight
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the run never sent a prompt"
                time.sleep(0.05)
            os.kill(process.pid, signal.SIGINT)
            _, stderr = process.communicate(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "concord: interrupted; a dialogue can be continued with `concord resume`"


async def seed_dialogues(home: Path) -> dict[str, str]:
    """Three dialogues, one of them abandoned; their ids mapped to their titles."""
    async with await open_stores(Settings(home=home)) as stores:
        titles = {}
        for title in ("First", "Second", "Third"):
            titles[await stores.dialogues.create_dialogue(title, f"{title} question?")] = title
        await stores.dialogues.set_dialogue_status(next(iter(titles)), "abandoned")
        return titles


def test_list_shows_every_dialogue_or_those_of_one_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    titles = asyncio.run(seed_dialogues(home))
    abandoned = next(iter(titles))
    everything = json.loads(run_cli(home, "list", "--json").stdout)
    assert everything["count"] == 3
    assert {d["id"]: d["title"] for d in everything["dialogues"]} == titles
    only = json.loads(run_cli(home, "list", "--status", "abandoned", "--json").stdout)
    assert [(d["id"], d["status"]) for d in only["dialogues"]] == [(abandoned, "abandoned")]
    table = run_cli(home, "list", "--status", "open")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "ROUNDS", "UPDATED", "TITLE"]
    assert sorted(row.split()[0] for row in rows) == sorted(set(titles) - {abandoned})
    assert all(row.split()[1] == "open" and row.split()[-1] == titles[row.split()[0]] for row in rows)
    assert run_cli(home, "list", "--status", "converged").stdout == "no dialogues\n"


@pytest.mark.parametrize(
    ("shell", "marker", "words"),
    [
        ("bash", "-F _shtab_concord concord", ("--budget-tokens", "budget_exceeded")),
        ("zsh", "#compdef concord", ("--budget-tokens", "budget_exceeded")),
        ("tcsh", "complete concord", ()),  # shtab's tcsh script completes commands, not options
    ],
)
def test_completion_covers_the_whole_command_tree(
    tmp_path: Path, shell: str, marker: str, words: tuple[str, ...]
) -> None:
    script = run_cli(tmp_path / "home", "completion", shell)
    assert script.returncode == 0, script.stderr
    assert marker in script.stdout
    for word in ("resume", "checkpoint", "sweep", "completion", *words):
        assert word in script.stdout, (shell, word)
    assert not (tmp_path / "home").exists()
