"""Reading a recorded judge's rulings on its tensions, and grouping the tensions it merged (synthetic text)."""

from __future__ import annotations

import pytest

from concord.orchestrator.blue.aliases import Candidate
from concord.orchestrator.blue.recorded_rulings import read_rulings, rulings_by_round, status_of

TENSIONS = """# Accumulated Tensions

## RESOLVED

### MUFFIN-T01 (R0): Queue depth
**Resolved in R1** by Muffin.

## PARTIALLY ADDRESSED

### SCONE-T01 (R0): Cache size
**Status: NARROWED** - only the hot set

### DONUT-T01 (R0): Cost ceiling
**Status: OPEN** - no R1 expert addressed this directly
"""

BRIEF = """### Key Tensions

| T01 | **Sync direction: git first** — who wins on conflict | Open | Muffin, Scone |
... and 1 more tensions
"""

VERDICT = """## Resolved Tensions

```
│ ID              │ Resolution            │
│ DONUT-T01 (R0)  │ Resolved: cheap enough │
```

## Next Steps
"""


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("**Resolved R1**", "resolved"),
        ("Deferred to RFC", "resolved"),
        ("SUPERSEDED by X", "resolved"),
        ("ACCEPTED UNRESOLVED", "resolved"),
        ("NARROWED", "addressed"),
        ("PARTIALLY RESOLVED", "addressed"),
        ("OPEN — no one addressed this", None),
        ("Open", None),
    ],
)
def test_status_words(text: str, status: str | None) -> None:
    assert status_of(text) == status


def test_rulings_from_tensions_md_briefs_and_the_verdict() -> None:
    found = read_rulings(TENSIONS, VERDICT, {1: [BRIEF]}, last_round=3)
    got = [(r.id, r.status, r.round, r.dated) for r in found.rulings if r.status != "open"]
    assert got == [
        ("MUFFIN-T01", "resolved", 1, True),
        ("SCONE-T01", "addressed", 1, False),  # tensions.md names R1 at the latest: its state is round 1's
        ("DONUT-T01", "resolved", 3, False),  # the verdict's table, at the last round
    ]
    assert found.raisers() == {"T01": (0, ("Muffin", "Scone"), "Sync direction: git first")}


def test_a_brief_rows_raisers_group_their_tensions_and_undated_rulings_wait_a_round() -> None:
    table = "| ID | Tension | Status |\n|---|---|---|\n| T01 | Sync direction | Deferred |\n"
    found = read_rulings(table, None, {1: [BRIEF]}, last_round=1)
    candidates = [
        Candidate("MUFFIN-T0001", "muffin", 0, 1, "Sync direction when PMs edit"),
        Candidate("SCONE-T0001", "scone", 0, 1, "Who wins a conflict"),
        Candidate("SCONE-T0101", "scone", 1, 1, "Sync direction of comments"),
    ]
    plan = rulings_by_round(found, {"T01": "Sync direction"}, {"T01": "MUFFIN-T0001"}, candidates)
    # Scone's only round-0 tension joins through the brief; its round-1 one by its label, ruled a round later.
    assert {(n, local) for n, items in plan.items() for local, _ in items} == {
        (1, "MUFFIN-T0001"),
        (1, "SCONE-T0001"),
        (2, "SCONE-T0101"),
    }
