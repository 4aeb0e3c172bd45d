"""One test per validation error code, plus a batch reporting several at once."""

from __future__ import annotations

import pytest

from concord.store.dialogue_store import DialogueStore
from concord.store.errors import ValidationFailed
from concord.store.model import EntityDraft, RefDraft, StatusChange
from tests.contract.helpers import panel_batch, perspective, tension


async def round0(store: DialogueStore) -> str:
    did = await store.create_dialogue("Validation", "q?")
    await store.register_round(did, panel_batch(0, entities=[perspective("MUFFIN-P0001"), tension("MUFFIN-T0001")]))
    return did


async def rejected(store: DialogueStore, did: str, **fields: object) -> ValidationFailed:
    before = await store.load_partition(did)
    with pytest.raises(ValidationFailed) as failed:
        await store.register_round(did, panel_batch(1, **fields))
    assert await store.load_partition(did) == before, "a rejected batch must write nothing"
    return failed.value


async def test_missing_field(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, entities=[EntityDraft("tension", "MUFFIN-T0101", "label", "")])
    assert error.codes == ["missing_field"]
    assert error.problems[0].field == "entities[0].content" and "description" in error.problems[0].message


async def test_invalid_ref_type(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, entities=[perspective("MUFFIN-P0101", "x", RefDraft("endorse", "P0001"))])
    assert error.codes == ["invalid_ref_type"]
    assert error.problems[0].suggestion.startswith("one of support")


async def test_invalid_display_id(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, entities=[perspective("MUFFIN-P0101", "x", RefDraft("support", "P1"))])
    assert error.codes == ["invalid_display_id"]


async def test_type_id_mismatch(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, entities=[EntityDraft("perspective", "MUFFIN-T0101", "label", "content")])
    assert error.codes == ["type_id_mismatch"]


async def test_target_not_found(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, status_changes=[StatusChange("T0042", "addressed")])
    assert error.codes == ["target_not_found"]


async def test_invalid_ref_target(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, entities=[perspective("MUFFIN-P0101", "x", RefDraft("address", "P0001"))])
    assert error.codes == ["invalid_ref_target"]
    assert error.problems[0].context == {"source": "P0101", "target": "P0001", "ref_type": "address"}


async def test_invalid_status_transition(store: DialogueStore) -> None:
    did = await round0(store)
    error = await rejected(store, did, status_changes=[StatusChange("T0001", "reopened")])
    assert error.codes == ["invalid_status_transition"]
    assert "allowed from open: addressed, resolved" == error.problems[0].suggestion


async def test_three_errors_in_one_batch(store: DialogueStore) -> None:
    """protocol.md §9 check 19: a tension without description, a ref type 'endorse' and a target 'P1'."""
    did = await round0(store)
    error = await rejected(
        store,
        did,
        entities=[
            EntityDraft("tension", "MUFFIN-T0101", "label", ""),
            perspective(
                "CUPCAKE-P0101", "x", RefDraft("endorse", "P0001"), RefDraft("support", "P1"), author="cupcake"
            ),
        ],
    )
    assert sorted(error.codes) == ["invalid_display_id", "invalid_ref_type", "missing_field"]
    assert {p.field for p in error.problems} == {
        "entities[0].content",
        "entities[1].references[0].ref_type",
        "entities[1].references[1].target",
    }
