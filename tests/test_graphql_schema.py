"""The exported SDL and the schema's enums stay in step with the code and the store."""

from __future__ import annotations

from concord.resolvers.schema import SDL_PATH, sdl
from concord.schema import enums
from concord.store.ids import ENTITY_KINDS
from concord.store.model import CONFIDENCES, DIALOGUE_STATUSES, STATUSES, VERDICT_TYPES
from concord.store.rules import REF_TYPES


def test_committed_sdl_matches_the_code() -> None:
    assert SDL_PATH.read_text() == sdl(), (
        "schema/schema.graphql is stale: run `concord schema export` (resolvers.schema.write_sdl) and commit it"
    )


def test_enums_carry_the_store_values() -> None:
    assert tuple(s.value for s in enums.DialogueStatus) == DIALOGUE_STATUSES
    assert {k.value for k in enums.EntityKind} == set(ENTITY_KINDS)
    assert tuple(r.value for r in enums.RefType) == REF_TYPES
    assert tuple(s.value for s in enums.TensionStatus) == STATUSES["tension"]
    assert tuple(v.value for v in enums.VerdictType) == VERDICT_TYPES
    assert tuple(c.value for c in enums.Confidence) == CONFIDENCES
