"""Judge files in our format, the recorded-scoreboard reader, layout names and round_verify."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from concord.orchestrator.blue.judge_files import (
    render_rounds_table,
    render_scoreboard,
    render_tensions,
    render_verdict,
    verify_round,
    write_judge_files,
)
from concord.orchestrator.blue.layout import DIR_NAME, dialogue_dir_name, imported_dialogue_id
from concord.orchestrator.blue.round_figures import figures_of, parse_scoreboard
from concord.orchestrator.engine.sim import read_tensions
from concord.orchestrator.judging.rules_judge import ExpertAnswer, judge_round
from concord.orchestrator.judging.scoring import scoring_rule
from concord.orchestrator.panel.panels import load_panel
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.model import PanelSeat, Verdict
from concord.store.snapshot import Snapshot
from tests.conftest import FakeClock, corpus_dialogue

PANEL = [PanelSeat("Muffin", "Storage engineer"), PanelSeat("Cupcake", "Security lead")]
ROUNDS = [
    {
        "muffin": "[PERSPECTIVE P01: One writer per partition]\nNo lost updates.\n[TENSION T01: Order against speed]\nSlow.\n---\n",
        "cupcake": "[PERSPECTIVE P01: Rotate keys monthly]\nRun `keys rotate`.\n[TENSION T01: Audit cost]\nBig.\n---\n",
    },
    {
        "muffin": "[PERSPECTIVE P01: Queues per tenant]\nOrder where needed.\n[RESOLVED T01]\n[MOVE:CONVERGE]\n---\n",
        "cupcake": "[PERSPECTIVE P01: Sample the audit]\nHash a sample.\n[RESOLVED T01]\n[MOVE:CONVERGE]\n---\n",
    },
]


@pytest.fixture
async def snap(sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock) -> Snapshot:
    """A two-round dialogue judged by the rules judge, with a final verdict."""
    store = DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)
    did = await store.create_dialogue("Files test", "What do the judge files show?")
    for number, answers in enumerate(ROUNDS):
        current = await store.load_partition(did)
        judged = judge_round(current, number, PANEL, [ExpertAnswer(k, v) for k, v in answers.items()])
        await store.register_round(did, judged.batch)
    await store.register_verdict(did, Verdict("final", "final", 1, "Both tensions are settled."))
    return await store.load_partition(did)


# --- protocol §9 check 10: the recorded scoreboard ------------------------------------------


def test_check10_recorded_scoreboard_adds_up_and_rerenders() -> None:
    text = (corpus_dialogue("rfc-0058") / "scoreboard.md").read_text(encoding="utf-8")
    figures = parse_scoreboard(text)
    assert [f.round for f in figures] == [0, 1, 2, 3]
    for f in figures:
        assert f.w + f.c + f.t + f.r == f.score
        assert f.velocity == f.open_tensions + f.new_perspectives
    footer = re.search(r"Total ALIGNMENT:\*\*\s*([0-9]+)\s*\(W:([0-9]+) C:([0-9]+) T:([0-9]+) R:([0-9]+)\)", text)
    assert footer is not None
    total, *parts = (int(g) for g in footer.groups())
    assert sum(f.score for f in figures) == total
    assert [sum(getattr(f, k) for f in figures) for k in "wctr"] == parts
    assert figures[-1].velocity == 0 and figures[-1].converge_percent == 100.0
    assert len(figures[0].experts) == 10  # the per-expert table's R0 column
    again = parse_scoreboard(render_rounds_table(figures))
    assert [
        (f.w, f.c, f.t, f.r, f.score, f.open_tensions, f.new_perspectives, f.velocity, f.converge_percent)
        for f in again
    ] == [
        (f.w, f.c, f.t, f.r, f.score, f.open_tensions, f.new_perspectives, f.velocity, f.converge_percent)
        for f in figures
    ]


def test_jira_scoreboard_spelling_parses() -> None:
    figures = parse_scoreboard((corpus_dialogue("jira-cloud") / "scoreboard.md").read_text(encoding="utf-8"))
    assert [f.round for f in figures] == [0, 1, 2]
    assert all(f.velocity == f.open_tensions + f.new_perspectives and f.score == f.w + f.c + f.t + f.r for f in figures)


# --- our files ----------------------------------------------------------------------------------


def test_scoreboard_totals_add_up_and_parse_back(snap: Snapshot) -> None:
    text = render_scoreboard(snap)
    parsed = parse_scoreboard(text)
    expected = [figures_of(r) for r in snap.rounds.values()]
    assert [(f.round, f.w, f.c, f.t, f.r, f.score, f.velocity) for f in parsed] == [
        (f.round, f.w, f.c, f.t, f.r, f.score, f.velocity) for f in expected
    ]
    assert [f.experts for f in parsed] == [f.experts for f in expected]
    grand = sum(f.score for f in expected)
    assert f"**Total ALIGNMENT:** {grand} " in text
    assert all(f.score == sum(f.experts.values()) for f in parsed)


def test_tensions_file_keeps_every_tension_in_rows_the_sim_reads(snap: Snapshot) -> None:
    text = render_tensions(snap)
    rows = [line for line in text.splitlines() if line.startswith("| T")]
    tensions = snap.of_kind("tension")
    assert len(rows) == len(tensions) == 2
    assert all(t.status == "resolved" for t in tensions)  # resolved rows stay
    seen = {row.id: row for row in read_tensions(text)}
    for tension in tensions:
        assert seen[tension.id].status == "resolved"
        assert seen[tension.id].author == tension.contributors[0].capitalize()


def test_verdict_and_dialogue_json(snap: Snapshot, tmp_path: Path) -> None:
    verdict = snap.verdicts[0]
    assert "## CONVERGED" in render_verdict(snap, verdict)
    forced = Verdict("v2", "final", 1, "Stopped.", forced=True, warning="FORCED CONVERGENCE: velocity=2")
    assert "FORCED CONVERGENCE: velocity=2" in render_verdict(snap, forced)
    written = write_judge_files(tmp_path, snap)
    assert {p.name for p in written} == {
        "scoreboard.md",
        "tensions.md",
        "round-0.summary.md",
        "round-1.summary.md",
        "dialogue.json",
    }
    data = json.loads((tmp_path / "dialogue.json").read_text(encoding="utf-8"))
    assert data["format"] == "concord.dialogue/1" and len(data["entities"]) == len(snap.entities)
    assert [r["figures"]["velocity"] for r in data["rounds"]] == [r.velocity for r in snap.rounds.values()]
    summary = (tmp_path / "round-1.summary.md").read_text(encoding="utf-8")
    assert "→ resolved" in summary and "## Summary" in summary


# --- protocol §9 checks 17 and 18 ---------------------------------------------------------------


def test_check17_directory_names() -> None:
    title = "RFC 0058 Supersession: Hybrid Relational + DynamoDB Architecture"
    name = dialogue_dir_name(title, datetime(2026, 2, 6, 18, 39, tzinfo=UTC), "rfc-0058-supersession-k3x7qa")
    d58 = corpus_dialogue("rfc-0058").name
    assert name == f"{d58}-k3x7qa" and DIR_NAME.match(name)
    assert DIR_NAME.match(corpus_dialogue("jira-cloud").name)
    assert imported_dialogue_id(d58) == imported_dialogue_id(d58) != imported_dialogue_id(d58.replace("1839Z", "1840Z"))
    assert imported_dialogue_id(d58).startswith("rfc-0058-supersession-")


def test_check18_round_verify(tmp_path: Path) -> None:
    d58, jira = corpus_dialogue("rfc-0058"), corpus_dialogue("jira-cloud")
    names = load_panel(d58 / "round-3" / "panel.json").names()
    assert len(names) == 6
    check = verify_round(d58, 3, names)
    assert (check.status, check.missing, check.stale) == ("ok", [], [])
    jira_names = [p.stem for p in (jira / "round-2").glob("*.md")]
    assert len(jira_names) == 12 and verify_round(jira, 2, jira_names).status == "ok"
    copy = tmp_path / d58.name
    shutil.copytree(d58, copy)
    (copy / "round-2.summary.md").unlink()
    check = verify_round(copy, 2, load_panel(copy / "round-2" / "panel.json").names())
    assert check.status == "missing_files" and check.missing == ["round-2.summary.md"]


def test_round_verify_reports_a_stale_scoreboard(snap: Snapshot, tmp_path: Path) -> None:
    write_judge_files(tmp_path, snap)
    for name in ("muffin", "cupcake"):
        (tmp_path / "round-2").mkdir(exist_ok=True)
        (tmp_path / "round-2" / f"{name}.md").write_text("---\n", encoding="utf-8")
    (tmp_path / "round-2.summary.md").write_text("x", encoding="utf-8")
    check = verify_round(tmp_path, 2, ["Muffin", "Cupcake"])
    assert check.status == "ok" and check.stale == ["scoreboard.md"]


def test_the_scoreboard_states_the_rule_the_judge_scores_by(snap: Snapshot) -> None:
    rule = (
        "W = 3·perspectives + 2·refinements; C = 2·resolutions + concessions; "
        "T = 2·evidence + claims + entities citing specifics; "
        "R = other experts' entities referenced + other experts named"
    )
    assert scoring_rule() == rule
    assert f"Rules judge: {rule}." in render_scoreboard(snap)
