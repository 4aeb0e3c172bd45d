"""Every bracket marker in the recorded corpus is classified; only deliberate ones stay unknown."""

from __future__ import annotations

from collections import Counter

from concord.orchestrator.judging.markers import parse_answer
from tests.conftest import corpus_path

#: Unknown on purpose (markers.py): a conditional signal is not the `[MOVE:CONVERGE]` the gate counts.
DELIBERATELY_UNKNOWN = {"move:conditional-converge"}


def test_no_marker_in_the_corpus_is_unknown_unless_deliberately() -> None:
    found: Counter[str] = Counter()
    for path in sorted(corpus_path().rglob("*.md")):
        if not path.name.endswith(".prompt.md"):
            found.update(m.name for m in parse_answer(path.read_text(encoding="utf-8")).unknown)
    assert set(found) <= DELIBERATELY_UNKNOWN, found
