"""The CLI's parts in-process: the help of the whole parser tree, the error mapping, outcomes, paging, schema export."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import concord.resolvers.schema as resolvers_schema
from concord.orchestrator.cli import dialogues
from concord.orchestrator.cli.api import checkout_sdl_path
from concord.orchestrator.cli.dialogues import dialogues_with, outcome
from concord.orchestrator.cli.main import build_parser, main
from concord.orchestrator.engine.run import RunResult
from concord.resolvers.schema import sdl
from concord.store.config import Settings
from concord.store.errors import BadInput, ConcordError, NotFound, Problem, ValidationFailed
from concord.store.factory import open_stores
from concord.store.model import Verdict

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"


def parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree under `parser`, with its prog."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def test_every_command_and_option_has_help_text() -> None:
    tree = dict(parsers(build_parser()))
    assert {"concord run", "concord list", "concord audit verify", "concord keys sweep", "concord completion"} <= set(
        tree
    )
    for prog, parser in tree.items():
        assert parser.description, f"{prog} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest: choice.help for choice in action._choices_actions}
                assert set(listed) == set(action.choices), prog
                assert all(listed.values()), f"{prog}: a subcommand without help: {listed}"
            else:
                assert action.help and action.help != argparse.SUPPRESS, f"{prog} {action.dest} has no help"


def test_help_shows_the_defaults_it_promises(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "round cap; a verdict at the cap is forced (default: 10)" in shown


@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("blank question", ["--question", "  ", "--pool", str(POOL)]),
        ("missing pool", ["--question", "Q?", "--pool", "missing.json"]),
        ("zero rounds", ["--question", "Q?", "--pool", str(POOL), "--max-rounds", "0"]),
        ("negative budget", ["--question", "Q?", "--pool", str(POOL), "--budget-tokens", "-5"]),
        ("zero budget", ["--question", "Q?", "--pool", str(POOL), "--budget-tokens", "0"]),
        ("empty panel", ["--question", "Q?", "--pool", str(POOL), "--panel-size", "0"]),
        ("no concurrency", ["--question", "Q?", "--pool", str(POOL), "--concurrency", "0"]),
        ("negative concurrency", ["--question", "Q?", "--pool", str(POOL), "--concurrency", "-2"]),
        ("unknown provider", ["--question", "Q?", "--pool", str(POOL), "--provider", "gpt"]),
        ("replay without a directory", ["--question", "Q?", "--pool", str(POOL), "--provider", "replay"]),
        ("anthropic without a key", ["--question", "Q?", "--pool", str(POOL), "--provider", "anthropic"]),
        ("llm judge without a key", ["--question", "Q?", "--pool", str(POOL), "--judge", "llm"]),
    ],
)
def test_bad_run_input_exits_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCORD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["run", *args, "--out", str(tmp_path / "out"), "--json"]) == 2, case
    assert json.loads(capsys.readouterr().out)["error"]["code"] in ("usage", "bad_input")
    assert list(tmp_path.iterdir()) == [], "no home, no output directory"


def failing_list(error: BaseException) -> object:
    """A stand-in for `concord list` that raises `error`."""

    def command(args: argparse.Namespace) -> int:
        raise error

    return command


@pytest.mark.parametrize(
    ("error", "code", "exit_code"),
    [
        (BadInput("the pool is empty"), "bad_input", 2),
        (NotFound("no dialogue d-1"), "not_found", 1),
        (ConcordError("it broke"), "concord_error", 1),
        (FileNotFoundError(2, "No such file or directory", "/x/y"), "os_error", 1),
        (KeyboardInterrupt(), "interrupted", 130),
    ],
)
def test_known_errors_map_to_exit_codes_and_one_json_object(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: str,
    exit_code: int,
) -> None:
    monkeypatch.setattr(dialogues, "list_command", failing_list(error))
    assert main(["list"]) == exit_code
    text = capsys.readouterr()
    assert text.out == "" and text.err.startswith("concord: ") and text.err.count("\n") == 1, text
    assert main(["list", "--json"]) == exit_code
    as_json = capsys.readouterr()
    assert as_json.err == ""
    assert json.loads(as_json.out) == {"error": {"code": code, "message": text.err.removeprefix("concord: ").strip()}}


def test_an_os_error_names_its_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(dialogues, "list_command", failing_list(PermissionError(13, "Permission denied", "/x/y")))
    assert main(["list"]) == 1
    assert capsys.readouterr().err == "concord: Permission denied: /x/y\n"


def test_validation_errors_carry_their_problems(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = Problem("invalid_status", "unknown dialogue status 'x'", "status", "one of open, converged")
    monkeypatch.setattr(dialogues, "list_command", failing_list(ValidationFailed([problem])))
    assert main(["list", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "validation_failed" and error["problems"] == [problem.to_json()]


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug"), RuntimeError("a bug")])
def test_a_bug_is_not_reported_as_an_error_but_raised(monkeypatch: pytest.MonkeyPatch, bug: Exception) -> None:
    monkeypatch.setattr(dialogues, "list_command", failing_list(bug))
    with pytest.raises(type(bug)):
        main(["list", "--json"])


def result(status: str, forced: bool | None) -> RunResult:
    verdict = (
        None
        if forced is None
        else Verdict(id="final", verdict_type="final", round=1, recommendation="r", forced=forced)
    )
    return RunResult("d-1", status, 2, Path("."), verdict)


@pytest.mark.parametrize(
    ("status", "forced", "code"),
    [
        ("converged", False, 0),
        ("converged", True, 3),
        ("budget_exceeded", None, 4),
        ("abandoned", None, 1),
        ("failed", None, 1),
    ],
)
def test_a_runs_exit_code_follows_its_end(status: str, forced: bool | None, code: int) -> None:
    assert outcome(result(status, forced)) == code


async def test_listing_pages_through_the_status_index(tmp_path: Path) -> None:
    async with await open_stores(Settings(home=tmp_path)) as stores:
        created = {await stores.dialogues.create_dialogue(f"D{n}", f"Question {n}?") for n in range(5)}
        listed = [d.id async for d in dialogues_with(stores.analytics, ["open", "converged"], page_size=2)]
    assert sorted(listed) == sorted(created)


def test_schema_export_writes_where_it_is_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "api.graphql"
    assert main(["schema", "export", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(out)}
    assert out.read_text() == sdl()


def test_schema_export_defaults_to_the_checkout_only(tmp_path: Path) -> None:
    assert checkout_sdl_path(resolvers_schema.SDL_PATH) == ROOT / "schema" / "schema.graphql"
    installed = tmp_path / "site-packages" / "concord" / "schema" / "schema.graphql"
    assert checkout_sdl_path(installed) is None
    (tmp_path / "site-packages" / "pyproject.toml").parent.mkdir(parents=True)
    (tmp_path / "site-packages" / "pyproject.toml").write_text("")  # beside concord/, not beside schema/
    assert checkout_sdl_path(installed) is None


def test_schema_export_outside_a_checkout_needs_out_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = tmp_path / "site-packages" / "concord" / "schema"
    installed.mkdir(parents=True)
    monkeypatch.setattr(resolvers_schema, "SDL_PATH", installed / "schema.graphql")
    assert main(["schema", "export"]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert list(tmp_path.rglob("*.graphql")) == []
