"""`concord import` / `export` on the recorded corpus and on a small synthetic directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from concord.orchestrator.blue.aliases import read_recorded_tensions
from concord.orchestrator.blue.compare import compare_recorded, format_comparison
from concord.orchestrator.blue.exporter import export_dialogue
from concord.orchestrator.blue.importer import format_import, import_dialogue
from concord.orchestrator.blue.layout import imported_dialogue_id
from concord.orchestrator.blue.round_figures import parse_scoreboard
from concord.orchestrator.judging.similarity import content_words
from concord.orchestrator.panel.panels import load_panel
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import BadInput, NotFound
from concord.store.rules import gate
from concord.store.snapshot import Snapshot
from tests.conftest import FakeClock, corpus_dialogue


@pytest.fixture
def sqlite_store(sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock) -> DialogueStore:
    """A DialogueStore on SQLite only, for the tests that need no backend parity."""
    return DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)


def comparable(snap: Snapshot) -> dict[str, object]:
    """Snapshot content without the dialogue id and the audit chain (its keys embed write times)."""
    data = snap.comparable()
    data.pop("audit")
    data["dialogue"] = {k: v for k, v in data["dialogue"].items() if k != "id"}  # type: ignore[union-attr]
    return data


def entity_with_alias(snap: Snapshot, alias: str) -> str:
    (found,) = [e.id for e in snap.entities.values() if alias in e.aliases]
    return found


async def test_import_rfc0058_rounds_markers_signals_verdict_and_noop_reimport(store: DialogueStore) -> None:
    d58 = corpus_dialogue("rfc-0058")
    result = await import_dialogue(store, d58)
    data = result.to_json()
    assert set(data) == {"dialogue_id", "status", "rounds", "warnings"} and data["status"] == "imported"
    rounds = data["rounds"]
    assert [r["panel"] for r in rounds] == [10, 8, 6, 6]
    assert (rounds[0]["perspectives"], rounds[0]["tensions"]) == (20, 10)
    assert (rounds[3]["signals"], rounds[3]["answered"], rounds[3]["converge_percent"]) == (6, 6, 100.0)
    snap = await store.load_partition(result.dialogue_id)
    assert snap.rounds[3].new_perspectives == 0  # restatements, as the recorded judge counted
    assert snap.rounds[0].new_perspectives == 20
    recorded = parse_scoreboard((d58 / "scoreboard.md").read_text(encoding="utf-8"))
    assert [r.recorded["velocity"] for r in snap.rounds.values()] == [f.velocity for f in recorded]  # type: ignore[index]
    assert snap.rounds[1].summary == (d58 / "round-1.summary.md").read_text(encoding="utf-8")
    assert sum(t.kind == "answer" for t in snap.texts) == sum(r["answered"] for r in rounds)
    # The recorded verdict is kept; forced with the gate's blockers exactly when the rules judge disagrees.
    ok, blockers, _ = gate(snap.rounds[3])
    (verdict,) = snap.verdicts
    assert verdict.verdict_type == "final" and verdict.forced is (not ok) and snap.dialogue.status == "converged"
    if not ok:
        assert verdict.warning == "FORCED CONVERGENCE: " + "; ".join(blockers)
        assert any(verdict.warning in w for w in result.warnings)
    audit = len(snap.audit)
    again = await import_dialogue(store, d58)
    assert again.status == "unchanged" and again.to_json()["rounds"] == rounds
    assert len((await store.load_partition(result.dialogue_id)).audit) == audit


async def test_export_then_import_gives_the_same_snapshot(sqlite_store: DialogueStore, tmp_path: Path) -> None:
    first = await import_dialogue(sqlite_store, corpus_dialogue("rfc-0058"))
    out = tmp_path / "exported"
    exported = await export_dialogue(sqlite_store, first.dialogue_id, out)
    assert {
        "scoreboard.md",
        "tensions.md",
        "verdict.md",
        "dialogue.json",
        "expert-pool.json",
        "round-0/panel.json",
        "round-3/muffin.md",
        "round-3/muffin.prompt.md",
    } <= set(exported.files)
    assert all(
        line.startswith("| T")
        for line in (out / "tensions.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| T")
    )
    second = await import_dialogue(sqlite_store, out, dialogue_id="rfc-0058-copy-aaaaaa")
    assert second.to_json()["rounds"] == first.to_json()["rounds"]
    original = await sqlite_store.load_partition(first.dialogue_id)
    copy = await sqlite_store.load_partition(second.dialogue_id)
    assert comparable(copy) == comparable(original)


async def test_check8_jira_recorded_ids_become_aliases(sqlite_store: DialogueStore) -> None:
    jira = corpus_dialogue("jira-cloud")
    result = await import_dialogue(sqlite_store, jira)
    snap = await sqlite_store.load_partition(result.dialogue_id)
    recorded = {t.id: t.label for t in read_recorded_tensions((jira / "tensions.md").read_text(encoding="utf-8"))}
    for match in (m for m in result.aliases if m.method == "label similarity"):
        entity = next(e for e in snap.entities.values() if e.local_id == match.local_id)
        assert match.alias in entity.aliases and entity.kind == "tension"
        words = content_words(recorded[match.alias])
        assert len(words & content_words(entity.label)) / len(words) >= 0.5
    t01, t02, t06 = (entity_with_alias(snap, alias) for alias in ("T01", "T02", "T06"))
    beignet = [e for e in snap.entities.values() if e.round == 1 and e.contributors == ["beignet"]]
    refs = {(r.source, r.ref_type, r.target) for r in snap.refs}
    assert any((e.id, "address", t01) in refs for e in beignet)  # [REFINEMENT on T01]
    assert any((e.id, "resolve", t02) in refs for e in beignet)  # [RESOLVED on T02]
    assert any(m.expert == "beignet" and m.move_type == "concede" and m.targets == [t06] for m in snap.moves)
    brioche_tensions = [
        e for e in snap.entities.values() if e.round == 1 and e.kind == "tension" and e.contributors == ["brioche"]
    ]
    assert len(brioche_tensions) == 2  # T-NEW and T01-RESPONSE
    assert result.to_json()["rounds"][2]["signals"] == 12


async def test_unmatched_recorded_ids_and_references_are_reported(sqlite_store: DialogueStore, tmp_path: Path) -> None:
    root = tmp_path / "2026-01-02T0304Z-small-run"
    (root / "round-0").mkdir(parents=True)
    (root / "round-1").mkdir()
    (root / "round-0" / "muffin.md").write_text(
        "[PERSPECTIVE P01: Cache the index]\nIt is read often.\n[TENSION T01: Cache freshness against speed]\nStale.\n---\n"
    )
    (root / "round-0" / "scone.md").write_text("[PERSPECTIVE P01: Skip the cache]\nKeep it simple.\n---\n")
    (root / "round-1" / "muffin.md").write_text(
        "[PERSPECTIVE P01: Expire after a minute]\nShort expiry.\n[RESOLVED on T01]\n[REFINEMENT on T07: unknown]\nx\n---\n"
    )
    (root / "tensions.md").write_text(
        "| ID | Tension | Status |\n|---|---|---|\n| T01 | Cache freshness | Open |\n| T07 | Quantum billing | Open |\n"
    )
    result = await import_dialogue(sqlite_store, root)
    text = format_import(result)
    assert [m.alias for m in result.aliases] == ["T01"] and "T01" in text
    assert any("T07" in w and "matches no tension" in w for w in result.warnings)
    assert any("'T07'" in w and "matches no known id" in w for w in result.warnings)
    assert any("expert-pool.json" in w for w in result.warnings)
    snap = await sqlite_store.load_partition(result.dialogue_id)
    assert [t.status for t in snap.of_kind("tension")] == ["resolved"]  # resolved by its author through the alias


async def test_ukfs_imports_what_it_has_and_says_what_is_missing(sqlite_store: DialogueStore) -> None:
    ukfs = corpus_dialogue("ukfs-spec-review")
    result = await import_dialogue(sqlite_store, ukfs)
    sizes = [len(load_panel(p).members) for p in sorted(ukfs.glob("round-*/panel.json"))]
    assert [r["panel"] for r in result.to_json()["rounds"]] == sizes
    assert all(r["answered"] == 0 for r in result.to_json()["rounds"])
    assert any(w.startswith("missing: no expert answers") for w in result.warnings)
    snap = await sqlite_store.load_partition(result.dialogue_id)
    assert snap.dialogue.pool is not None and snap.dialogue.background is not None
    assert all(r.recorded is not None for r in snap.rounds.values())
    (verdict,) = snap.verdicts
    assert verdict.forced and verdict.warning is not None


async def test_compare_prints_rules_next_to_recorded(sqlite_store: DialogueStore) -> None:
    d58 = corpus_dialogue("rfc-0058")
    result = await import_dialogue(sqlite_store, d58)
    comparison = compare_recorded(await sqlite_store.load_partition(result.dialogue_id))
    recorded = parse_scoreboard((d58 / "scoreboard.md").read_text(encoding="utf-8"))
    assert [r.recorded.velocity for r in comparison.rounds if r.recorded] == [f.velocity for f in recorded]
    assert [r.rules.velocity for r in comparison.rounds] == [r["velocity"] for r in result.to_json()["rounds"]]
    data = json.loads(json.dumps(comparison.to_json()))
    assert len(data["rounds"]) == 4 and "recorded" in format_comparison(comparison)


async def test_an_interrupted_import_resumes_to_the_same_snapshot(sqlite_store: DialogueStore, tmp_path: Path) -> None:
    d58 = corpus_dialogue("rfc-0058")
    partial = tmp_path / "partial" / d58.name
    shutil.copytree(d58, partial)
    for leftover in ("round-2", "round-3"):
        shutil.rmtree(partial / leftover)
    (partial / "verdict.md").unlink()
    first = await import_dialogue(sqlite_store, partial)
    assert first.status == "imported" and len(first.rounds) == 2
    resumed = await import_dialogue(sqlite_store, d58)
    assert resumed.dialogue_id == first.dialogue_id and resumed.status == "resumed" and len(resumed.rounds) == 4
    direct = await import_dialogue(sqlite_store, d58, dialogue_id="rfc-0058-direct-aaaaaa")
    assert comparable(await sqlite_store.load_partition(resumed.dialogue_id)) == comparable(
        await sqlite_store.load_partition(direct.dialogue_id)
    )


async def test_a_path_that_is_no_dialogue_directory_is_bad_input(sqlite_store: DialogueStore, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="is not a dialogue directory"):
        await import_dialogue(sqlite_store, tmp_path / "missing")


@pytest.mark.parametrize(
    ("verdict", "complaint"),
    [
        ({"id": "final", "verdict_type": "final", "recommendation": "Ship it."}, "'verdicts'"),
        ({"id": "final", "verdict_type": "final", "round": "0", "recommendation": "Ship it."}, "'verdicts'"),
        ({"verdict_type": "final", "round": 0, "recommendation": "Ship it."}, "'verdicts'"),
    ],
)
async def test_a_broken_dialogue_json_is_bad_input_and_imports_nothing(
    sqlite_store: DialogueStore, tmp_path: Path, verdict: dict[str, object], complaint: str
) -> None:
    directory = tmp_path / "2026-01-01T0000Z-broken"
    (directory / "round-0").mkdir(parents=True)
    (directory / "round-0" / "muffin.md").write_text("[PERSPECTIVE P01: One writer]\nWhy.\n---\n", encoding="utf-8")
    dialogue = {"format": "concord.dialogue/1", "dialogue": {"title": "T", "question": "Q"}, "verdicts": [verdict]}
    (directory / "dialogue.json").write_text(json.dumps(dialogue), encoding="utf-8")
    with pytest.raises(BadInput, match=complaint):
        await import_dialogue(sqlite_store, directory)
    with pytest.raises(NotFound):
        await sqlite_store.load_partition(imported_dialogue_id(directory.name))
