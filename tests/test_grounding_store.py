"""The store's grounding record on both backends: written once and audited, checked against the dialogue folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from concord.store.dialogue_store import DialogueStore
from concord.store.errors import AlreadyExists

FILES = {"notes.md": b"Invoices are monthly.\n", "legal/policy.txt": b"Reviewed yearly.\n"}


async def grounded(store: DialogueStore, root: Path) -> str:
    """A dialogue with FILES recorded as its grounding and copied under `root/grounding/`."""
    dialogue_id = await store.create_dialogue("Grounded", "Which retention?")
    for name, data in FILES.items():
        (root / "grounding" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "grounding" / name).write_bytes(data)
    macs = await store.record_grounding(dialogue_id, FILES)
    assert sorted(macs) == sorted(FILES) and await store.grounding(dialogue_id) == macs
    return dialogue_id


async def test_grounding_is_recorded_once_and_audited(store: DialogueStore, tmp_path: Path) -> None:
    dialogue_id = await grounded(store, tmp_path)
    with pytest.raises(AlreadyExists):
        await store.record_grounding(dialogue_id, {"other.md": b"x"})
    audit = (await store.load_partition(dialogue_id)).audit
    assert [(a.operation, a.keys) for a in audit] == [
        ("create_dialogue", ["dek#1", "meta"]),
        ("record_grounding", ["grounding"]),
    ]
    report = await store.verify_audit(dialogue_id, files_root=tmp_path)
    assert report.ok and report.files_checked == len(FILES)
    macs = await store.grounding(dialogue_id)
    await store.rotate_key(dialogue_id)
    assert await store.sweep_keys(dialogue_id) >= 1  # the grounding item is resealed like any other
    assert await store.grounding(dialogue_id) == macs
    assert (await store.verify_audit(dialogue_id, files_root=tmp_path)).ok


async def test_verify_names_a_changed_or_missing_grounding_file(store: DialogueStore, tmp_path: Path) -> None:
    dialogue_id = await grounded(store, tmp_path)
    (tmp_path / "grounding" / "legal" / "policy.txt").write_bytes(b"Reviewed never.\n")
    (tmp_path / "grounding" / "notes.md").unlink()
    report = await store.verify_audit(dialogue_id, files_root=tmp_path)
    assert not report.ok
    assert report.file_problems == [  # in name order
        "grounding/legal/policy.txt: grounding file changed since it was recorded",
        "grounding/notes.md: grounding file missing (recorded by record_grounding)",
    ]
    assert (await store.verify_audit(dialogue_id)).ok  # without a folder only the chain and items are checked


async def test_a_crypto_erased_dialogue_still_verifies_its_chain(store: DialogueStore, tmp_path: Path) -> None:
    dialogue_id = await grounded(store, tmp_path)
    await store.destroy_keys(dialogue_id)
    report = await store.verify_audit(dialogue_id, files_root=tmp_path)
    assert report.ok, report.problem
