"""A recording's files kept by the store: sealed, write-once, audited, size-limited, on both backends."""

from __future__ import annotations

import pytest

from concord.store.dialogue_store import DialogueStore
from concord.store.errors import ItemTooLarge
from concord.store.ids import partition_key
from concord.store.model import RecordedFile
from concord.store.writes import MAX_RECORDED_FILE_BYTES

SECRET_PATH = "round-1/context-brief-zebra.md"
SECRET_TEXT = "The quartz-lamp tension stays open.\n"


async def test_recorded_files_are_sealed_write_once_and_audited(store: DialogueStore) -> None:
    did = await store.create_dialogue("Files", "Keep them?")
    files = [RecordedFile(SECRET_PATH, SECRET_TEXT), RecordedFile("round-0/panel.json", "{}\n")]
    assert await store.record_files(did, files) == 2
    audit = len((await store.load_partition(did)).audit)
    assert await store.record_files(did, files) == 0  # the same content again changes nothing
    snap = await store.load_partition(did)
    assert len(snap.audit) == audit and snap.audit[-1].operation == "record_file"
    assert {(f.path, f.content, f.encoding) for f in snap.files} == {
        (SECRET_PATH, SECRET_TEXT, "utf-8"),
        ("round-0/panel.json", "{}\n", "utf-8"),
    }
    raw = repr(await store.backend.query(partition_key(did), "file#", consistent=True))
    assert "zebra" not in raw and "quartz" not in raw  # neither the path nor the content is in clear
    assert await store.record_files(did, [RecordedFile(SECRET_PATH, "rewritten\n")]) == 1  # another version
    versions = [f.content for f in (await store.load_partition(did)).files if f.path == SECRET_PATH]
    assert sorted(versions) == sorted([SECRET_TEXT, "rewritten\n"])


async def test_a_file_over_the_limit_is_refused_and_nothing_is_written(store: DialogueStore) -> None:
    did = await store.create_dialogue("Files", "Too big?")
    big = RecordedFile("big.md", "x" * (MAX_RECORDED_FILE_BYTES + 1))
    with pytest.raises(ItemTooLarge, match="big.md"):
        await store.record_files(did, [RecordedFile("small.md", "ok\n"), big])
    assert (await store.load_partition(did)).files == []
