"""DialogueStore contract (spec/datamodel.md §7 checks 2-11, 23-24), run on every backend."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from concord.store.backends.base import ABSENT, Backend, Put, clear_json
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import AlreadyExists, ConvergenceBlocked, NotFound, StoreError, ValidationFailed
from concord.store.factory import Stores
from concord.store.graph import DialogueGraph
from concord.store.model import EntityDraft, Move, RefDraft, StatusChange, TextRecord, Verdict
from tests.contract.helpers import CrashingBackend, entity, panel_batch, perspective, tension


async def new_dialogue(store: DialogueStore, title: str = "Contract dialogue") -> str:
    return await store.create_dialogue(title, "What should we build?")


async def with_round0(store: DialogueStore) -> str:
    """A dialogue whose round 0 holds P0001, P0002 and T0001."""
    did = await new_dialogue(store)
    await store.register_round(
        did,
        panel_batch(
            0,
            entities=[
                perspective("MUFFIN-P0001", "first"),
                perspective("CUPCAKE-P0001", "second", author="cupcake"),
                tension("MUFFIN-T0001", "the tension"),
            ],
        ),
    )
    return did


async def test_dialogue_ids_are_fresh_and_explicit_ids_insert_once(store: DialogueStore) -> None:
    ids = [await store.create_dialogue("Test", "q?") for _ in range(3)]
    assert len(set(ids)) == 3 and all(i.startswith("test-") for i in ids)
    await store.create_dialogue("Imported", "q?", dialogue_id="imported-run")
    with pytest.raises(AlreadyExists):
        await store.create_dialogue("Imported", "q?", dialogue_id="imported-run")
    assert store.backend.calls.get("Scan", 0) == 0


async def test_global_ids_and_mapping(store: DialogueStore) -> None:
    did = await with_round0(store)
    mapping = await store.register_round(
        did,
        panel_batch(
            1,
            entities=[
                perspective("MUFFIN-P0101", "one"),
                perspective("CUPCAKE-P0101", "two", author="cupcake"),
                perspective("SCONE-P0101", "three", author="scone"),
                tension("MUFFIN-T0101", "new tension"),
            ],
        ),
    )
    assert mapping == {
        "MUFFIN-P0101": "P0101",
        "CUPCAKE-P0101": "P0102",
        "SCONE-P0101": "P0103",
        "MUFFIN-T0101": "T0101",
    }
    snap = await store.load_partition(did)
    assert [e.id for e in snap.of_kind("perspective", 1)] == ["P0101", "P0102", "P0103"]
    assert snap.entities["P0102"].contributors == ["cupcake"]


async def test_same_batch_local_target_is_stored_as_global(store: DialogueStore) -> None:
    did = await with_round0(store)
    mapping = await store.register_round(
        did,
        panel_batch(
            1,
            entities=[
                perspective("MUFFIN-P0101", "base"),
                perspective("CUPCAKE-P0101", "builds on it", RefDraft("support", "MUFFIN-P0101"), author="cupcake"),
            ],
        ),
    )
    refs = await store.get_refs(did, source=mapping["CUPCAKE-P0101"])
    assert [(r.ref_type, r.target) for r in refs] == [("support", "P0101")]
    into = await store.get_refs(did, target="P0101")
    assert [(r.source, r.ref_type) for r in into] == [("P0102", "support")]


async def test_missing_target_fails(store: DialogueStore) -> None:
    did = await with_round0(store)
    with pytest.raises(ValidationFailed) as failed:
        await store.register_round(
            did, panel_batch(1, entities=[perspective("MUFFIN-P0101", "x", RefDraft("support", "P0009"))])
        )
    assert failed.value.codes == ["target_not_found"]
    assert failed.value.problems[0].field == "entities[0].references[0].target"


async def test_ref_semantics_and_all_errors_collected(store: DialogueStore) -> None:
    did = await with_round0(store)
    before = await store.load_partition(did)
    batch = panel_batch(
        1,
        entities=[
            perspective("MUFFIN-P0101", "resolves a perspective", RefDraft("resolve", "P0001")),
            perspective("CUPCAKE-P0101", "refines across kinds", RefDraft("refine", "SCONE-R0101"), author="cupcake"),
            entity("recommendation", "SCONE-R0101", "a recommendation"),
            entity("evidence", "SCONE-E0101", "evidence", RefDraft("support", "T0001")),
            tension("MUFFIN-T0101", "   "),
        ],
    )
    with pytest.raises(ValidationFailed) as failed:
        await store.register_round(did, batch)
    assert failed.value.codes == ["missing_field", "invalid_ref_target", "invalid_ref_target"]
    assert await store.load_partition(did) == before
    assert len((await store.load_partition(did)).audit) == len(before.audit)


async def test_duplicate_ref_keeps_first(store: DialogueStore) -> None:
    did = await with_round0(store)
    first = await store.register_ref(did, "P0002", "support", "P0001")
    again = await store.register_ref(did, "P0002", "support", "P0001")
    assert again.created_at == first.created_at
    refs = await store.get_refs(did, source="P0002")
    assert len(refs) == 1 and refs[0].created_at == first.created_at
    raw = await store.backend.query(f"dialogue#{did}", "ref#P0002#")
    assert len(raw) == 1


async def test_tension_lifecycle_events(store: DialogueStore) -> None:
    did = await with_round0(store)
    for status in ("addressed", "resolved", "reopened"):
        updated = await store.update_entity_status(did, "T0001", status, actors=["cupcake"])
        assert updated.status == status and updated.id == "T0001"
    events = await store.get_events(did, "T0001")
    assert [e.event_type for e in events] == ["created", "addressed", "resolved", "reopened"]
    assert (await store.get_entity(did, "T0001")).status == "reopened"
    with pytest.raises(ValidationFailed) as failed:
        await store.update_entity_status(did, "T0001", "open")
    assert failed.value.codes == ["invalid_status_transition"]


async def test_verdicts_are_insert_only_and_final_converges(store: DialogueStore) -> None:
    did = await with_round0(store)
    await store.register_round(
        did,
        panel_batch(
            1,
            signals=["muffin", "cupcake", "scone"],
            new_perspectives=0,
            status_changes=[StatusChange("T0001", "resolved", ["muffin"])],
        ),
    )
    await store.register_verdict(did, Verdict("interim-1", "interim", 1, "keep going"))
    raw_before = await store.backend.get(f"dialogue#{did}", "verdict#interim-1")
    with pytest.raises(AlreadyExists):
        await store.register_verdict(did, Verdict("interim-1", "interim", 1, "something else"))
    assert await store.backend.get(f"dialogue#{did}", "verdict#interim-1") == raw_before
    final = await store.register_verdict(did, Verdict("final", "final", 1, "ship it"))
    assert not final.forced
    meta = await store.get_dialogue(did)
    assert meta.status == "converged" and meta.converged_at == final.created_at


async def test_a_move_is_written_once_and_a_duplicate_is_refused_at_once(store: DialogueStore) -> None:
    did = await with_round0(store)
    move = Move(0, "muffin", 1, "challenge", ["T0001"], "the tension is real")
    await store.register_move(did, move)
    transactions = store.backend.calls["TransactWriteItems"]
    with pytest.raises(AlreadyExists, match="move#00#muffin#01"):
        await store.register_move(did, Move(0, "muffin", 1, "defend", [], "other words"))
    assert store.backend.calls["TransactWriteItems"] == transactions  # refused before any write, not after retries
    snap = await store.load_partition(did)
    assert snap.moves == [move]
    assert [e.operation for e in snap.audit].count("register_move") == 1
    assert (await store.verify_audit(did)).ok


async def test_convergence_gate_blocks_then_force_warns(store: DialogueStore) -> None:
    did = await with_round0(store)
    with pytest.raises(ConvergenceBlocked) as blocked:
        await store.register_verdict(did, Verdict("final", "final", 0, "too early"))
    assert any(b.startswith("velocity=") for b in blocked.value.blockers)
    assert any(b.startswith("converge_percent=") for b in blocked.value.blockers)
    forced = await store.register_verdict(did, Verdict("final", "final", 0, "too early"), force=True)
    assert forced.forced and forced.warning and forced.warning.startswith("FORCED CONVERGENCE")
    assert (await store.get_verdicts(did))[0].warning == forced.warning


async def test_gate_with_no_rounds(store: DialogueStore) -> None:
    did = await new_dialogue(store)
    assert await store.can_converge(did) == (False, ["no rounds registered"], {})


def big_round(round: int) -> Any:
    drafts = [perspective(f"MUFFIN-P{round:02d}{n:02d}", f"point {n}") for n in range(1, 61)]
    drafts += [tension(f"CUPCAKE-T{round:02d}{n:02d}", f"tension {n}", author="cupcake") for n in range(1, 21)]
    return panel_batch(round, entities=drafts)


@pytest.mark.parametrize("after_commit", [False, True])
@pytest.mark.parametrize("fail_on", [1, 2])
async def test_retry_after_crash_counts_once(stores: Stores, fail_on: int, after_commit: bool) -> None:
    clean = stores.dialogues
    reference = await new_dialogue(clean)
    await clean.register_round(reference, big_round(0))
    expected = await clean.load_partition(reference)

    crashing = DialogueStore(
        CrashingBackend(stores.backend, fail_on, after_commit),
        clean.keys,
        tenant="local",
        principal="tester",
        clock=clean.clock,
    )
    did = await new_dialogue(clean)
    with pytest.raises(ConnectionError):
        await crashing.register_round(did, big_round(0))
    retried = DialogueStore(stores.backend, clean.keys, tenant="local", principal="tester", clock=clean.clock)
    mapping = await retried.register_round(did, big_round(0))
    assert mapping == await retried.register_round(did, big_round(0))
    got = await retried.load_partition(did)
    assert got.dialogue.total_alignment == expected.dialogue.total_alignment == 24
    assert got.dialogue.total_rounds == 1
    strip = lambda snap: {k: v for k, v in snap.comparable().items() if k not in ("dialogue", "audit")}  # noqa: E731
    assert strip(got) == strip(expected)
    assert len(got.entities) == 80
    assert [a.operation for a in got.audit] == ["create_dialogue", "register_round:0"]
    report = await retried.verify_audit(did)
    assert report.ok, report.problem


async def test_load_partition_is_one_query(store: DialogueStore) -> None:
    did = await with_round0(store)
    drafts = [perspective(f"MUFFIN-P01{n:02d}", f"p{n}", RefDraft("support", "P0001")) for n in range(1, 61)]
    drafts += [tension(f"SCONE-T01{n:02d}", f"t{n}", RefDraft("depend", "T0001"), author="scone") for n in range(1, 38)]
    await store.register_round(did, panel_batch(1, entities=drafts))
    store.backend.calls.clear()
    snap = await store.load_partition(did)
    assert len(snap.entities) == 100
    assert len(snap.refs) == 97
    assert store.backend.calls == {"GetItem": 1, "Query": 1}  # the meta's tenant first, then the whole partition


async def test_list_dialogues_by_status(stores: Stores) -> None:
    store = stores.dialogues
    did = await with_round0(store)
    other = await new_dialogue(store, "Another")
    page = await stores.analytics.list_dialogues("open")
    assert {d.id for d in page.dialogues} == {did, other}
    assert all(d.title for d in page.dialogues)
    await store.register_verdict(
        did,
        Verdict(
            "final",
            "final",
            0,
            "forced",
        ),
        force=True,
    )
    assert [d.id for d in (await stores.analytics.list_dialogues("converged")).dialogues] == [did]
    assert [d.id for d in (await stores.analytics.list_dialogues("open")).dialogues] == [other]


async def test_every_listed_dialogue_has_a_cursor_that_resumes_after_it(stores: Stores) -> None:
    ids = [await new_dialogue(stores.dialogues, f"Paged {n}") for n in range(4)]
    whole = await stores.analytics.list_dialogues("open", limit=10)
    listed = [d.id for d in whole.dialogues]
    assert sorted(listed) == sorted(ids) and whole.cursor is None and len(whole.cursors) == 4
    for n, cursor in enumerate(whole.cursors):
        rest = await stores.analytics.list_dialogues("open", limit=10, cursor=cursor)
        assert [d.id for d in rest.dialogues] == listed[n + 1 :]
    first = await stores.analytics.list_dialogues("open", limit=2)
    assert first.cursor == first.cursors[-1] and [d.id for d in first.dialogues] == listed[:2]


async def test_open_tensions_index_follows_status(stores: Stores) -> None:
    store = stores.dialogues
    did = await with_round0(store)
    assert [(d, t.id) for d, t in (await stores.analytics.open_tensions()).tensions] == [(did, "T0001")]
    await store.update_entity_status(did, "T0001", "resolved")
    assert (await stores.analytics.open_tensions()).tensions == []
    await store.update_entity_status(did, "T0001", "reopened")
    assert len((await stores.analytics.open_tensions()).tensions) == 1


async def test_graph_cycles_depth_and_refs_in(store: DialogueStore) -> None:
    did = await with_round0(store)
    await store.register_round(
        did,
        panel_batch(
            1,
            entities=[
                entity("claim", "MUFFIN-C0101", "claim", RefDraft("depend", "MUFFIN-E0101")),
                entity(
                    "evidence",
                    "MUFFIN-E0101",
                    "evidence",
                    RefDraft("depend", "MUFFIN-C0101"),
                    RefDraft("support", "P0001"),
                ),
                perspective(
                    "SCONE-P0101", "supports", RefDraft("support", "P0001"), RefDraft("refine", "P0002"), author="scone"
                ),
            ],
        ),
    )
    graph = DialogueGraph(await store.load_partition(did))
    assert {(link.entity_id, link.depth) for link in graph.links("C0101", "out")} == {("E0101", 1), ("P0001", 2)}
    assert [link.entity_id for link in graph.links("C0101", "out", max_depth=1)] == ["E0101"]
    both = graph.links("C0101", "both")
    assert len({link.entity_id for link in both}) == len(both)
    supporters = sorted(src for _, src in graph.refs_in("P0001", "support"))
    stored = sorted(r.source for r in await store.get_refs(did, target="P0001") if r.ref_type == "support")
    assert supporters == stored == ["E0101", "P0101"]
    assert graph.lineage("P0101") == ["P0101", "P0002"]


async def test_other_tenant_sees_nothing(stores: Stores) -> None:
    did = await with_round0(stores.dialogues)
    stranger = DialogueStore(stores.backend, stores.keys, tenant="other", clock=stores.dialogues.clock)
    for call in (stranger.get_dialogue(did), stranger.load_partition(did), stranger.get_entities(did, "tension")):
        with pytest.raises(NotFound, match=f"dialogue {did} not found"):
            await call
    with pytest.raises(NotFound):
        await stranger.get_dialogue("no-such-dialogue")


async def test_stored_reads_pair_each_item_with_the_json_its_signature_covers(stores: Stores) -> None:
    did = await stores.dialogues.create_dialogue("Stored", "What does a read hand over?")
    await stores.dialogues.register_round(did, panel_batch(0, entities=[perspective("MUFFIN-P0001", "first")]))
    reads = await stores.backend.query_stored(f"dialogue#{did}")
    assert [item for item, _ in reads] == await stores.backend.query(f"dialogue#{did}")
    keeps_json = isinstance(stores.backend, SQLiteBackend)
    for item, stored in reads:
        assert stored == (clear_json(item) if keeps_json else None)
        assert await stores.dialogues.items.is_authentic(item, stored)
        moved = (item, stored.replace(item["sk"].encode(), b"moved")) if stored else ({**item, "sk": "moved"}, None)
        assert not await stores.dialogues.items.is_authentic(*moved)


async def test_a_transaction_over_4_mb_is_refused_before_anything_is_written(backend: Backend) -> None:
    answer = "x" * 380_000  # each item fits; together they are over DynamoDB's 4 MB per transaction
    puts = [Put({"pk": "dialogue#big", "sk": f"answer#01#expert{n:02d}", "text": answer}, ABSENT) for n in range(12)]
    with pytest.raises(ValueError, match="bytes of items in one transaction"):
        await backend.transact(puts)
    assert await backend.query("dialogue#big") == []


async def test_large_texts_are_stored_in_writes_that_each_fit_a_transaction(store: DialogueStore) -> None:
    did = await new_dialogue(store)
    texts = [
        TextRecord("answer", 1, f"expert{n:02d}", f"answer {n}: " + "a long argument " * 19_000) for n in range(14)
    ]
    assert await store.record_texts(did, texts) == 14  # about 300 KB each, 4.2 MB in all
    assert [t.text for t in (await store.load_partition(did)).texts] == [t.text for t in texts]
    assert await store.record_texts(did, texts) == 0  # a retry writes nothing twice
    await store.rotate_key(did)
    assert await store.sweep_keys(did) == 14 + 1  # the texts and the meta, in writes that fit
    assert [t.text for t in (await store.load_partition(did)).texts] == [t.text for t in texts]
    assert (await store.verify_audit(did)).ok


def large_drafts(kind: str) -> list[EntityDraft]:
    """20 drafts of one kind for round 0, about 250 KB each: 5 MB together."""
    prefix = {"perspective": "P", "tension": "T", "recommendation": "R"}[kind]
    return [
        EntityDraft(
            kind, f"MUFFIN-{prefix}00{n:02d}", f"{kind} {n}", f"{n}: " + "a long argument " * 16_000, ["muffin"]
        )
        for n in range(1, 21)
    ]


async def refused_unchanged(store: DialogueStore, did: str, write: Awaitable[object], match: str) -> None:
    """`write` fails with a StoreError matching `match`, and the partition is as it was."""
    before = await store.items.query_raw(f"dialogue#{did}")
    with pytest.raises(StoreError, match=match):
        await write
    assert await store.items.query_raw(f"dialogue#{did}") == before


async def test_a_round_of_large_entities_is_written_in_chunks_that_each_fit_a_transaction(store: DialogueStore) -> None:
    did = await new_dialogue(store)
    drafts = large_drafts("perspective")
    await store.register_round(did, panel_batch(0, entities=drafts))
    snap = await store.load_partition(did)
    assert sorted(e.content for e in snap.entities.values()) == sorted(d.content for d in drafts)
    assert (await store.verify_audit(did)).ok


async def test_a_round_whose_commit_would_not_fit_one_transaction_is_refused_before_any_write(
    store: DialogueStore,
) -> None:
    did = await new_dialogue(store)
    await store.register_round(did, panel_batch(0, entities=large_drafts("tension")))
    changes = [StatusChange(f"T00{n:02d}", "addressed", ["muffin"]) for n in range(1, 21)]
    batch = panel_batch(1, entities=[perspective("MUFFIN-P0101", "new")], status_changes=changes)
    await refused_unchanged(store, did, store.register_round(did, batch), "round 1 changes too many statuses at once")


async def test_leftovers_of_an_interrupted_batch_never_show_under_the_batch_that_replaces_it(stores: Stores) -> None:
    clean = stores.dialogues
    did = await new_dialogue(clean)
    crashing = DialogueStore(
        CrashingBackend(stores.backend, 2), clean.keys, tenant="local", principal="tester", clock=clean.clock
    )
    with pytest.raises(ConnectionError):  # the entities are written, the round's commit is not
        await crashing.register_round(
            did, panel_batch(0, entities=[perspective("MUFFIN-P0001", "first"), tension("MUFFIN-T0001", "abandoned")])
        )
    assert any(i["sk"].startswith("tension#") for i in await stores.backend.query(f"dialogue#{did}"))
    await clean.register_round(did, panel_batch(0, entities=[perspective("MUFFIN-P0001", "first, rewritten")]))
    snap = await clean.load_partition(did)
    assert [(e.id, e.label) for e in snap.entities.values()] == [("P0001", "first, rewritten")]
    assert not any(i["sk"].startswith("tension#") for i in await stores.backend.query(f"dialogue#{did}"))
    assert (await clean.verify_audit(did)).ok


async def test_a_verdict_too_large_for_one_write_is_refused_by_name_and_changes_nothing(store: DialogueStore) -> None:
    did = await new_dialogue(store)
    await store.register_round(did, panel_batch(0, entities=large_drafts("recommendation")))
    adopting = Verdict("interim-1", "interim", 0, "adopt them all", adopted=[f"R00{n:02d}" for n in range(1, 21)])
    await refused_unchanged(
        store, did, store.register_verdict(did, adopting), "register_verdict:interim-1 is too large for one write"
    )
