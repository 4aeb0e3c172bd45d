"""Every corpus dialogue through `concord import` and `export`: every recorded file kept, the recording's
own figures met (or a documented reason why not), and no tension reference left unexplained.

`concord run --provider replay` over every corpus dialogue is tests/test_replay.py's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from concord.orchestrator.blue.importer import import_dialogue
from concord.orchestrator.blue.layout import read_dialogue_dir
from concord.orchestrator.blue.recorded_files import MAX_FILE_BYTES
from concord.orchestrator.blue.round_figures import RoundFigures, parse_round_scoreboard, parse_scoreboard
from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.judging.rules_judge import build_registry
from concord.orchestrator.judging.written_ids import ids_in_prose
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.snapshot import Snapshot
from tests.conftest import CORPUS, FakeClock, corpus_path
from tests.services import run_cli

CORPUS_DIALOGUES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else ["corpus-absent"]

#: What export writes beside a recording's own files when the recording lacks them: Concord's
#: dialogue.json (always), and its own judge files and panel.json where the recording has none.
REGENERATED = re.compile(
    r"(dialogue\.json|scoreboard\.md|tensions\.md|verdict\.md|round-\d+\.summary\.md|round-\d+/panel\.json)"
)

#: (corpus folder prefix, round) -> why Concord's velocity or converge % differs from the recording's own.
FIGURE_EXCEPTIONS = {
    ("2026-02-06T1839Z-rfc-0058", 1): (
        "the recorded judge counted only round 1's 7 new tensions as open, not the 4 it had just narrowed or "
        "partially resolved nor CUPCAKE-T01, which its own tensions.md still lists OPEN (open 12 vs 7); it "
        "de-duplicated 16 perspective markers to 9 new, the rules judge finds 11"
    ),
    ("2026-02-06T1839Z-rfc-0058", 2): (
        "the recording wrote no tensions.md after round 1 (protocol §6), so no ruling says what its judge closed "
        "in round 2 beyond the markers (open 6 vs 1; new perspectives 1 vs 3); its 83% converge is an estimate "
        "with no [MOVE:CONVERGE] in any round-2 answer"
    ),
    ("2026-03-11T1341Z-jira", 0): (
        "the recorded judge merged 17 raw round-0 tensions into 7 ids; Concord keeps each expert's tension as "
        "its own entity (17 open vs 7), the merges only group them for the recorded rulings"
    ),
    ("2026-03-11T1341Z-jira", 1): (
        "the recorded judge counted 12 new perspectives where the rules judge finds 6 genuinely new, and 4 "
        "open tensions where 7 stay open (SCONE's round-0 ground-truth tension is in no recorded group)"
    ),
    ("ukfs-spec-review", 0): "no expert answers are recorded: Concord judges nothing; the recorded figures are kept",
    ("ukfs-spec-review", 1): "no expert answers are recorded: Concord judges nothing; the recorded figures are kept",
    ("ukfs-spec-review", 2): "no answers, so no [MOVE:CONVERGE] signals: converge 0% against the recorded 100%",
}

#: Corpus folder prefix -> tension references in answers that resolve to nothing, and why each stays so.
UNRESOLVED_EXCEPTIONS = {
    "2026-02-06T1839Z-rfc-0058": {
        "R3 cannoli:7": "`[RESOLVED: Refs table disagreement …]` names no id, only a topic of the judge's summary",
    },
    "2026-03-11T1341Z-jira": {
        "R1 macaron:52": "`[RESOLVED -- accepting Churro's proposal …]` names no id",
        "R1 macaron:57": "`[RESOLVED -- accepting Churro's progressive model]` names no id",
    },
}
#: Marker kinds that act on (or name) other entities.
ACTING = ("resolved", "refinement", "concession", "defer", "ref", "move", "unknown")


def recorded_figures(directory: Path) -> dict[int, RoundFigures]:
    """The recording's own per-round figures: scoreboard.md, else the older round-N/scoreboard.md files."""
    files = read_dialogue_dir(directory)
    figures = {f.round: f for f in parse_scoreboard(files.scoreboard)} if files.scoreboard else {}
    for rnd in files.rounds:
        found = parse_round_scoreboard(rnd.scoreboard, rnd.number) if rnd.scoreboard else None
        if found is not None:
            figures.setdefault(rnd.number, found)
    return figures


def unresolved_tension_refs(snap: Snapshot) -> dict[str, str]:
    """`R{round} {expert}:{line}` -> the raw marker, for every tension reference in an answer that resolves
    to nothing (a marker's targets and the ids its label names), and every RESOLVED that names no tension."""
    registry = build_registry(snap)
    found = {}
    for text in (t for t in snap.texts if t.kind == "answer"):
        for marker in (m for m in parse_answer(text.text).markers if m.kind in ACTING):
            refs = [r for r in (*marker.targets, *ids_in_prose(marker.label)) if r.kind == "T"]
            where = f"R{text.round} {text.expert}:{marker.line}"
            if marker.kind == "resolved" and not refs:
                found[where] = marker.raw
            if any(registry.resolve(r, author=text.expert, round=text.round) is None for r in refs):
                found[where] = marker.raw
    return found


def exception_for(table: dict[tuple[str, int], str], name: str, number: int) -> str | None:
    return next((why for (prefix, n), why in table.items() if name.startswith(prefix) and n == number), None)


def imported(home: Path, directory: Path) -> dict[str, object]:
    ran = run_cli(home, "import", str(directory), "--json")
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    return dict(json.loads(ran.stdout))


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_DIALOGUES)
def test_export_gives_back_every_recorded_file_byte_for_byte(tmp_path: Path, name: str) -> None:
    recorded = corpus_path(name)
    home, out = tmp_path / "home", tmp_path / "exported"
    dialogue_id = str(imported(home, recorded)["dialogue_id"])
    ran = run_cli(home, "export", dialogue_id, str(out), "--json")
    assert ran.returncode == 0, ran.stderr
    originals = {p.relative_to(recorded).as_posix() for p in recorded.rglob("*") if p.is_file()}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert sorted(originals - written) == []
    assert [n for n in sorted(originals) if (out / n).read_bytes() != (recorded / n).read_bytes()] == []
    assert [n for n in sorted(written - originals) if not REGENERATED.fullmatch(n)] == []
    again = imported(home, out)  # the export imports as the same dialogue content
    assert again["rounds"] == imported(home, recorded)["rounds"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_DIALOGUES)
def test_velocity_and_converge_match_the_recording_or_say_why_not(tmp_path: Path, name: str) -> None:
    recorded = corpus_path(name)
    rounds = {r["round"]: r for r in imported(tmp_path / "home", recorded)["rounds"]}  # type: ignore[attr-defined]
    for number, figures in sorted(recorded_figures(recorded).items()):
        ours = (rounds[number]["velocity"], round(rounds[number]["converge_percent"]))
        theirs = (figures.velocity, round(figures.converge_percent))
        why = exception_for(FIGURE_EXCEPTIONS, name, number)
        if why is None:
            assert ours == theirs, f"round {number}: Concord {ours} vs recorded {theirs}"
        else:
            assert ours != theirs, f"round {number} now matches the recording; drop its exception ({why})"
    for prefix, number in FIGURE_EXCEPTIONS:
        if name.startswith(prefix):
            assert number in recorded_figures(recorded), f"exception for round {number}, which records no figures"


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_DIALOGUES)
async def test_tension_references_resolve_except_the_documented_ones(
    sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock, name: str
) -> None:
    store = DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)
    result = await import_dialogue(store, corpus_path(name))
    found = unresolved_tension_refs(await store.load_partition(result.dialogue_id))
    expected = next((v for prefix, v in UNRESOLVED_EXCEPTIONS.items() if name.startswith(prefix)), {})
    assert sorted(found) == sorted(expected), found
    assert not [w for w in result.warnings if "matches no tension in the answers" in w]


async def test_the_final_rfc0058_round_is_judged_converged_as_recorded(
    sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock
) -> None:
    store = DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)
    name = next((n for n in CORPUS_DIALOGUES if "rfc-0058" in n), "rfc-0058-absent")
    result = await import_dialogue(store, corpus_path(name))
    snap = await store.load_partition(result.dialogue_id)
    last = snap.rounds[3]
    assert (last.velocity, last.converge_percent) == (0, 100.0)
    assert [t.id for t in snap.of_kind("tension") if t.status != "resolved"] == []
    (verdict,) = snap.verdicts
    assert not verdict.forced
    ruled = [e for e in snap.events if (e.reason or "").startswith("recorded judge: RESOLVED R1")]
    # MACARON-T01's author resolved it in round 1 already; the judge's ruling closed the other two.
    assert {e.round for e in ruled} == {1}
    assert {snap.entities[e.entity_id].local_id for e in ruled} == {"BRIOCHE-T0001", "STRUDEL-T0001"}


def test_a_recorded_file_too_large_to_keep_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    recording = tmp_path / "2026-01-01T0000Z-big"
    (recording / "round-0").mkdir(parents=True)
    (recording / "round-0" / "muffin.md").write_text("[PERSPECTIVE P01: One store]\nKeep one.\n---\n", "utf-8")
    (recording / "notes.md").write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    home = tmp_path / "home"
    ran = run_cli(home, "import", str(recording))
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert "notes.md" in ran.stderr and str(MAX_FILE_BYTES) in ran.stderr
    listed = run_cli(home, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert ran.stderr.count("\n") <= 1 and "big" not in listed.stdout


def test_a_file_that_is_not_utf8_comes_back_byte_for_byte(tmp_path: Path) -> None:
    recording = tmp_path / "2026-01-01T0000Z-bytes"
    (recording / "round-0").mkdir(parents=True)
    (recording / "round-0" / "muffin.md").write_text("[PERSPECTIVE P01: One store]\nKeep one.\n---\n", "utf-8")
    (recording / "round-0" / "diagram.bin").write_bytes(bytes(range(256)))
    home, out = tmp_path / "home", tmp_path / "out"
    dialogue_id = str(imported(home, recording)["dialogue_id"])
    assert run_cli(home, "export", dialogue_id, str(out)).returncode == 0
    assert (out / "round-0" / "diagram.bin").read_bytes() == bytes(range(256))


def test_a_judge_file_rewritten_between_imports_exports_as_its_newest_version(tmp_path: Path) -> None:
    recording = tmp_path / "2026-01-01T0000Z-growing"
    (recording / "round-0").mkdir(parents=True)
    (recording / "round-0" / "muffin.md").write_text("[PERSPECTIVE P01: One store]\nKeep one.\n---\n", "utf-8")
    (recording / "tensions.md").write_text("# Tensions after round 0\n", "utf-8")
    home, out = tmp_path / "home", tmp_path / "out"
    dialogue_id = str(imported(home, recording)["dialogue_id"])
    (recording / "round-1").mkdir()
    (recording / "round-1" / "muffin.md").write_text("[PERSPECTIVE P01: Still one]\nYes.\n---\n", "utf-8")
    (recording / "tensions.md").write_text("# Tensions after round 1\n", "utf-8")
    assert imported(home, recording)["status"] == "resumed"
    assert run_cli(home, "export", dialogue_id, str(out)).returncode == 0
    assert (out / "tensions.md").read_text("utf-8") == "# Tensions after round 1\n"
