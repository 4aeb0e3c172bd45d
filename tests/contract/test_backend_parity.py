"""Check 12: the same writes on SQLite and on DynamoDB Local give equal snapshots."""

from __future__ import annotations

from pathlib import Path

from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.model import RefDraft, StatusChange, Verdict
from tests.conftest import FakeClock
from tests.contract.helpers import entity, panel_batch, perspective, tension


async def write_history(store: DialogueStore) -> str:
    did = await store.create_dialogue("Parity", "Do both backends agree?", dialogue_id="parity-check")
    await store.register_round(
        did,
        panel_batch(
            0,
            entities=[
                perspective("MUFFIN-P0001", "first"),
                tension("MUFFIN-T0001", "tension"),
                entity("evidence", "SCONE-E0001", "evidence", RefDraft("support", "MUFFIN-P0001")),
            ],
        ),
    )
    await store.register_ref(did, "E0001", "address", "T0001")
    await store.update_entity_status(did, "T0001", "addressed", actors=["cupcake"])
    await store.register_round(
        did,
        panel_batch(
            1,
            signals=["muffin", "cupcake", "scone"],
            new_perspectives=0,
            entities=[perspective("MUFFIN-P0101", "refined", RefDraft("refine", "P0001"))],
            status_changes=[
                StatusChange("T0001", "resolved", ["muffin"]),
                StatusChange("P0001", "refined", ["muffin"]),
            ],
        ),
    )
    await store.register_verdict(did, Verdict("final", "final", 1, "agree"))
    return did


async def test_snapshots_equal_across_backends(tmp_path: Path, key_file: Path, dynamodb_backend: object) -> None:
    keys = LocalKeyProvider(key_file)
    sqlite = await SQLiteBackend(tmp_path / "parity.db").open()
    try:
        on_sqlite = DialogueStore(sqlite, keys, principal="tester", clock=FakeClock())
        on_dynamo = DialogueStore(dynamodb_backend, keys, principal="tester", clock=FakeClock())  # type: ignore[arg-type]
        a = await on_sqlite.load_partition(await write_history(on_sqlite))
        b = await on_dynamo.load_partition(await write_history(on_dynamo))
    finally:
        await sqlite.close()
    assert a == b
    assert a.comparable()["entities"]["T0001"]["status"] == "resolved"
    assert [x.operation for x in a.audit] == [x.operation for x in b.audit]
