"""Imported titles as the recording writes them: its own heading where it names the dialogue, else its folder name."""

from __future__ import annotations

from pathlib import Path

import pytest

from concord.orchestrator.blue.importer import import_dialogue
from concord.orchestrator.blue.layout import title_of
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from tests.conftest import FakeClock, corpus_dialogue

#: Each corpus folder's title, as its own files write it (scoreboard.md, round summary, background.md headings).
CORPUS_TITLES = {
    "rfc-0058": "RFC 0058 Supersession — Hybrid Relational + DynamoDB Architecture",
    "jira-cloud": "jira cloud integration for blue",  # no heading names it: the folder name as written
    "local-prod-parity": "Local-Production Parity",
    "ukfs-spec-review": "UKFS Specification Review",
}


@pytest.fixture
def sqlite_store(sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock) -> DialogueStore:
    """A DialogueStore on SQLite."""
    return DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)


@pytest.mark.parametrize(
    ("name", "headings", "title"),
    [
        ("2026-01-01T0000Z-rfc-0058-split", ["Scoreboard: RFC 0058 Split"], "RFC 0058 Split"),
        ("ukfs-spec-review", ["100% DONE", "UKFS Specification Review - Background"], "UKFS Specification Review"),
        ("local-prod-parity", ["Round 3 Summary: Local-Production Parity"], "Local-Production Parity"),
        ("lp-parity", ["Final Verdict — LP Parity Dialogue"], "lp parity"),
        ("lp-parity", ["Round 0 Summary — Judge Synthesis"], "lp parity"),
        ("2026-01-01T0000Z-Store-Choice-for-EU", [], "Store Choice for EU"),
    ],
    ids=["scoreboard", "abbreviated-background", "summary", "extra-word", "generic", "folder-casing"],
)
def test_title_comes_from_a_heading_naming_the_folder_else_the_folder_as_written(
    name: str, headings: list[str], title: str
) -> None:
    assert title_of(name, headings) == title


@pytest.mark.corpus
@pytest.mark.parametrize("prefix", sorted(CORPUS_TITLES))
async def test_imported_corpus_dialogue_keeps_its_title_as_written(sqlite_store: DialogueStore, prefix: str) -> None:
    result = await import_dialogue(sqlite_store, corpus_dialogue(prefix))
    dialogue = await sqlite_store.get_dialogue(result.dialogue_id)
    assert dialogue.title == CORPUS_TITLES[prefix]
