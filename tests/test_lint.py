"""Tests for the dialogue-directory marker linter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from concord.orchestrator.blue.lint import LintError, format_lint, lint_directory
from concord.orchestrator.judging.markers import parse_answer
from tests.conftest import corpus_dialogue

GOOD = """[PERSPECTIVE P01: Queues absorb bursts]
A queue in front of the writer smooths spikes.

[TENSION T01: Ordering vs. throughput]
Strict ordering caps the consumer count.

---
"""

DRIFTED = """# Cupcake, round 1

[RESOLVED on T01]
The queue answer holds.

[NOTED]
[MOVE:CONVERGE]
"""


@pytest.fixture
def dialogue(tmp_path: Path) -> Path:
    """A small blue-layout dialogue with one clean and one drifted answer plus judge files."""
    root = tmp_path / "2026-01-01T0000Z-queues"
    (root / "round-0").mkdir(parents=True)
    (root / "round-1").mkdir()
    (root / "round-0" / "muffin.md").write_text(GOOD, encoding="utf-8")
    (root / "round-0" / "muffin.prompt.md").write_text("[PERSPECTIVE P01: prompt text]", encoding="utf-8")
    (root / "round-0" / "panel.json").write_text("{}", encoding="utf-8")
    (root / "round-1" / "cupcake.md").write_text(DRIFTED, encoding="utf-8")
    (root / "round-1" / "scoreboard.md").write_text("| Round | W |", encoding="utf-8")
    (root / "round-0.summary.md").write_text("summary", encoding="utf-8")
    return root


def test_per_file_facts(dialogue: Path) -> None:
    report = lint_directory(dialogue)
    assert [f.path for f in report.files] == ["round-0/muffin.md", "round-1/cupcake.md"]
    good, drifted = report.files
    assert (good.round, good.expert) == (0, "muffin")
    assert good.counts == {"perspective": 1, "tension": 1}
    assert good.ends_with_rule and good.unknown == [] and good.has_content
    assert good.word_count == len(GOOD.split())
    assert drifted.counts == {"resolved": 1, "converge": 1, "unknown": 1}
    assert [(m.name, m.line, m.raw) for m in drifted.unknown] == [("noted", 6, "[NOTED]")]
    assert not drifted.ends_with_rule and drifted.converge
    assert report.skipped == ["round-1/scoreboard.md"]


def test_totals_and_score(dialogue: Path) -> None:
    report = lint_directory(dialogue)
    assert report.totals == {"perspective": 1, "tension": 1, "resolved": 1, "converge": 1, "unknown": 1}
    # muffin passes all checks (4/4); cupcake has content but no rule and an unknown (2/4).
    assert report.files[0].score == 1.0
    assert report.files[1].score == 0.5
    assert report.score == pytest.approx(0.75)


def test_format_lint_lists_totals_unknowns_and_score(dialogue: Path) -> None:
    text = format_lint(lint_directory(dialogue))
    assert "perspective" in text and "resolved" in text
    assert "round-1/cupcake.md:6  noted  [NOTED]" in text
    assert "Score: 0.7500" in text
    assert "round-1/scoreboard.md" in text


def test_to_json_round_trips(dialogue: Path) -> None:
    data = lint_directory(dialogue).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["score"] == 0.75
    assert data["files"][1]["unknown"] == [{"name": "noted", "line": 6, "raw": "[NOTED]"}]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(LintError, match="does not exist"):
        lint_directory(tmp_path / "missing")
    (tmp_path / "file.md").write_text("x", encoding="utf-8")
    with pytest.raises(LintError, match="not a directory"):
        lint_directory(tmp_path / "file.md")
    with pytest.raises(LintError, match="no round-N"):
        lint_directory(tmp_path)
    (tmp_path / "round-0").mkdir()
    (tmp_path / "round-0" / "panel.json").write_text("{}", encoding="utf-8")
    with pytest.raises(LintError, match="no expert answers"):
        lint_directory(tmp_path)


@pytest.mark.corpus
def test_d58_is_clean_and_round0_totals_match() -> None:
    report = lint_directory(corpus_dialogue("2026-02-06T1839Z-rfc-0058-"))
    assert len(report.files) == 30
    round0 = [f for f in report.files if f.round == 0]
    assert sum(f.counts.get("perspective", 0) for f in round0) == 20
    assert sum(f.counts.get("tension", 0) for f in round0) == 10
    assert report.unknown == []
    assert report.score == 1.0
    print("\n" + format_lint(report))


@pytest.mark.corpus
def test_jira_totals_agree_with_the_parser() -> None:
    folder = corpus_dialogue("2026-03-11T1341Z-jira-")
    report = lint_directory(folder)
    assert len(report.files) == 36
    for item in report.files:
        parsed = parse_answer((folder / item.path).read_text(encoding="utf-8"))
        assert sum(item.counts.values()) == len(parsed.markers)
        assert item.converge == parsed.converge
    assert all(f.converge for f in report.files if f.round == 2)
    assert 0.0 <= report.score < 1.0
    print("\n" + format_lint(report))
