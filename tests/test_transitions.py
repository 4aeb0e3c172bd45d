"""Every status transition matrix and the full ref endpoint matrix (datamodel §1-2), in the rules and in the store."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import ValidationFailed
from concord.store.model import STATUSES, EntityDraft, RoundBatch
from concord.store.rules import REF_TYPES, TRANSITIONS, ref_target_problem, transition_allowed
from tests.conftest import FakeClock

#: The allowed moves per kind, written out pair by pair; any pair not listed must be refused.
ALLOWED: dict[str, set[tuple[str, str]]] = {
    "tension": {
        ("open", "addressed"),
        ("open", "resolved"),
        ("addressed", "resolved"),
        ("addressed", "open"),
        ("resolved", "reopened"),
        ("reopened", "addressed"),
        ("reopened", "resolved"),
    },
    "perspective": {
        ("open", "refined"),
        ("open", "conceded"),
        ("open", "merged"),
        ("refined", "conceded"),
        ("refined", "merged"),
    },
    "recommendation": {
        ("proposed", "amended"),
        ("proposed", "adopted"),
        ("proposed", "rejected"),
        ("amended", "amended"),
        ("amended", "adopted"),
        ("amended", "rejected"),
    },
    "evidence": {
        ("cited", "challenged"),
        ("cited", "confirmed"),
        ("cited", "refuted"),
        ("challenged", "confirmed"),
        ("challenged", "refuted"),
        ("confirmed", "challenged"),
    },
    "claim": {
        ("asserted", "supported"),
        ("asserted", "opposed"),
        ("asserted", "adopted"),
        ("asserted", "withdrawn"),
        ("supported", "opposed"),
        ("supported", "adopted"),
        ("supported", "withdrawn"),
        ("opposed", "supported"),
        ("opposed", "adopted"),
        ("opposed", "withdrawn"),
    },
}
#: A walk through each lifecycle along allowed moves, ending in a status nothing leaves (none for tensions).
WALKS: dict[str, list[str]] = {
    "tension": ["addressed", "open", "resolved", "reopened", "addressed", "resolved"],
    "perspective": ["refined", "merged"],
    "recommendation": ["amended", "amended", "adopted"],
    "evidence": ["confirmed", "challenged", "refuted"],
    "claim": ["opposed", "supported", "withdrawn"],
}
LETTER = {"perspective": "P", "tension": "T", "recommendation": "R", "evidence": "E", "claim": "C"}


@pytest.mark.parametrize("kind", sorted(ALLOWED))
def test_transition_matrix_pair_by_pair(kind: str) -> None:
    statuses = STATUSES[kind]
    assert set(TRANSITIONS[kind]) == set(statuses)
    for current, new in itertools.product(statuses, statuses):
        assert transition_allowed(kind, current, new) is ((current, new) in ALLOWED[kind]), (kind, current, new)


def test_every_kind_with_statuses_has_a_matrix() -> None:
    assert set(TRANSITIONS) == set(STATUSES) == set(ALLOWED)


@pytest.mark.parametrize(
    ("kind", "current", "new"),
    [
        ("verdict", "open", "resolved"),
        ("tension", "closed", "open"),
        ("tension", "open", "closed"),
        ("tension", "Open", "addressed"),
        ("claim", "asserted", "Adopted"),
    ],
)
def test_unknown_kind_or_status_is_refused_not_an_error(kind: str, current: str, new: str) -> None:
    assert transition_allowed(kind, current, new) is False


def expected_ref_problem(ref_type: str, source: str, target: str) -> bool:
    """Whether the spec table (datamodel §2) forbids this ref."""
    if ref_type == "refine":
        return source != target
    if ref_type in ("address", "resolve", "reopen"):
        return target != "tension"
    return False


def test_ref_endpoint_matrix_for_every_type_and_kind_pair() -> None:
    kinds = sorted(LETTER)
    for ref_type, source, target in itertools.product(REF_TYPES, kinds, kinds):
        problem = ref_target_problem(ref_type, source, target)
        assert (problem is not None) is expected_ref_problem(ref_type, source, target), (ref_type, source, target)
        if problem is not None:
            assert ref_type in problem and target in problem


@pytest.fixture
async def store(sqlite_backend: SQLiteBackend, key_file: Path, clock: FakeClock) -> DialogueStore:
    """A DialogueStore on SQLite (the rule is the store's, not the backend's)."""
    return DialogueStore(sqlite_backend, LocalKeyProvider(key_file), principal="tester", clock=clock)


async def one_of_each_kind(store: DialogueStore) -> str:
    """A dialogue whose round 0 holds one entity of every kind; its id."""
    dialogue_id = await store.create_dialogue("Transitions", "Which moves are allowed?")
    drafts = [
        EntityDraft(kind, f"MUFFIN-{letter}0001", f"{kind} label", f"{kind} content", ["muffin"])
        for kind, letter in LETTER.items()
    ]
    await store.register_round(dialogue_id, RoundBatch(round=0, entities=drafts))
    return dialogue_id


@pytest.mark.parametrize("kind", sorted(WALKS))
async def test_store_walks_each_lifecycle_and_refuses_a_move_outside_it(store: DialogueStore, kind: str) -> None:
    dialogue_id = await one_of_each_kind(store)
    entity_id = f"{LETTER[kind]}0001"
    assert (await store.get_entity(dialogue_id, entity_id)).status == STATUSES[kind][0]
    for status in WALKS[kind]:
        assert (await store.update_entity_status(dialogue_id, entity_id, status)).status == status
    final = WALKS[kind][-1]
    refused = next(s for s in STATUSES[kind] if (final, s) not in ALLOWED[kind])
    with pytest.raises(ValidationFailed) as caught:
        await store.update_entity_status(dialogue_id, entity_id, refused)
    assert caught.value.codes == ["invalid_status_transition"]
    allowed_next = sorted(new for current, new in ALLOWED[kind] if current == final)
    assert caught.value.problems[0].suggestion == (
        f"allowed from {final}: {', '.join(allowed_next) or 'nothing (final status)'}"
    )
    assert (await store.get_entity(dialogue_id, entity_id)).status == final
    assert [e.event_type for e in await store.get_events(dialogue_id, entity_id)][-len(WALKS[kind]) :] == WALKS[kind]
