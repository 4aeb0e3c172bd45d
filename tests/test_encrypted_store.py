"""The encrypted domain store on real backends: datamodel §7 checks 13-21 and the blind index."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from concord.store.analytics import AnalyticsStore
from concord.store.backends.base import Backend, Item, Operation, Page, Put, StoredRead
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.config import Settings
from concord.store.crypto.keys import LocalKeyProvider, WrappedKey, blind_index
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import IntegrityError, KeyMaterialError
from concord.store.factory import Stores, open_stores
from concord.store.ids import partition_key
from concord.store.model import (
    EntityDraft,
    Expert,
    Move,
    PanelSeat,
    RefDraft,
    RoundBatch,
    Score,
    StatusChange,
    TextRecord,
    Verdict,
)
from concord.store.snapshot import Snapshot
from tests.conftest import FakeClock

DIALOGUE = "nvidia-analysis"

#: For checks about keys and providers rather than stored items: run them on the SQLite backend only.
sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"])

ENVELOPE = ("content_encrypted", "content_nonce", "key_id", "aad_hash", "encryption_version")

#: Values written inside encrypted fields only; none may appear in a raw dump of the database.
SECRETS = {
    "title": "Zanzibar Quarterly Outlook",
    "question": "Should Vexillology Corp hedge its quokka exposure?",
    "background": "Confidential background about Operation Bluefin",
    "role": "Cryptozoology Liaison Officer",
    "role2": "Quantum Basket Weaver",
    "description": "expert description mentions the Pelican Brief",
    "focus": "focus on marmalade futures",
    "perspective": "Perspective label: tangerine supply shock",
    "perspective_content": "Perspective content: lighthouse keepers unionise",
    "tension": "Tension label: walrus governance",
    "tension_content": "Tension description: glacier arbitrage",
    "recommendation": "Recommendation label: buy more kumquats",
    "recommendation_content": "Recommendation content: diversify into snow globes",
    "evidence": "Evidence label: ledger of the Silver Heron",
    "evidence_content": "Evidence content: audited by Moonbeam LLP",
    "claim": "Claim label: the abacus outperforms",
    "claim_content": "Claim content: verified on seventeen abaci",
    "contributor": "kouignamann",
    "round_title": "Round title: opening of the Velvet Vault",
    "summary": "Round summary: consensus on porcupine pricing",
    "reason": "Event reason: superseded by the Juniper memo",
    "move_context": "Move context: challenge the Obsidian thesis",
    "verdict": "Verdict recommendation: adopt the Marigold plan",
    "verdict_description": "Verdict description: unanimous except the heron",
    "prompt": "Prompt text: describe the Tourmaline protocol",
    "answer": "Answer text: the Tourmaline protocol is sound",
    "parameter": "parameter value: cerulean threshold",
    "note": "Round note: recorded in the Saffron archive",
}


def round_zero(role: str = SECRETS["role"]) -> RoundBatch:
    """Round 0: two experts, one entity of each kind, refs, a move, signals."""
    seats = [
        PanelSeat("Muffin", role, "Core", "pool", 0.9, SECRETS["focus"]),
        PanelSeat("Scone", SECRETS["role2"], "Adjacent", "pool", 0.5),
    ]
    contributors = ["muffin", SECRETS["contributor"]]
    return RoundBatch(
        round=0,
        panel=seats,
        experts=[
            Expert("muffin", role, "Core", "pool", 0.9, description=SECRETS["description"], focus=SECRETS["focus"]),
            Expert("scone", SECRETS["role2"], "Adjacent", "pool", 0.5),
        ],
        entities=[
            EntityDraft(
                "perspective", "MUFFIN-P0001", SECRETS["perspective"], SECRETS["perspective_content"], contributors
            ),
            EntityDraft(
                "perspective",
                "SCONE-P0001",
                "second perspective",
                "second content ✓ 漢字",
                ["scone"],
                [RefDraft("support", "MUFFIN-P0001")],
                aliases=["SCONE-P0002"],
                warnings=["merged"],
            ),
            EntityDraft(
                "tension",
                "MUFFIN-T0001",
                SECRETS["tension"],
                SECRETS["tension_content"],
                contributors,
                [RefDraft("depend", "MUFFIN-P0001")],
            ),
            EntityDraft(
                "recommendation",
                "MUFFIN-R0001",
                SECRETS["recommendation"],
                SECRETS["recommendation_content"],
                contributors,
                [RefDraft("address", "MUFFIN-T0001")],
                parameters={"threshold": SECRETS["parameter"], "n": 3},
            ),
            EntityDraft(
                "evidence",
                "SCONE-E0001",
                SECRETS["evidence"],
                SECRETS["evidence_content"],
                ["scone"],
                [RefDraft("support", "MUFFIN-R0001")],
            ),
            EntityDraft(
                "claim",
                "SCONE-C0001",
                SECRETS["claim"],
                SECRETS["claim_content"],
                ["scone"],
                [RefDraft("oppose", "MUFFIN-P0001")],
            ),
        ],
        scores={"muffin": Score(3, 2, 1, 1), "scone": Score(2, 1, 1, 0)},
        answered=["muffin", "scone"],
        signals=["scone"],
        moves=[Move(0, "muffin", 1, "challenge", ["P0002"], SECRETS["move_context"])],
        title=SECRETS["round_title"],
        summary=SECRETS["summary"],
        recorded={"source": "unit test"},
        notes=[SECRETS["note"]],
    )


def round_one() -> RoundBatch:
    """Round 1: a refinement and a tension status change with its event."""
    return RoundBatch(
        round=1,
        panel=[PanelSeat("Muffin", SECRETS["role"], "Core", "pool", 0.9)],
        entities=[
            EntityDraft(
                "perspective",
                "MUFFIN-P0101",
                "refined perspective",
                "refined content",
                ["muffin"],
                [RefDraft("refine", "P0001")],
            ),
            EntityDraft("perspective", "MUFFIN-P0102", "another perspective", "another content", ["muffin"]),
        ],
        status_changes=[StatusChange("T0001", "addressed", ["muffin"], "R0001", SECRETS["reason"])],
        scores={"muffin": Score(1, 1, 1, 1)},
        answered=["muffin"],
        signals=["muffin"],
    )


async def build_dialogue(store: DialogueStore, dialogue_id: str = DIALOGUE, role: str = SECRETS["role"]) -> str:
    """A dialogue holding every kind of item, written through the public write paths."""
    await store.create_dialogue(
        SECRETS["title"],
        SECRETS["question"],
        dialogue_id=dialogue_id,
        output_dir="/srv/dialogues/x",
        background={"subject": SECRETS["background"], "constraints": ["c1"]},
        pool={"name": "pool-a"},
        settings={"rounds": 3},
    )
    await store.register_round(dialogue_id, round_zero(role))
    await store.register_round(dialogue_id, round_one())
    await store.register_verdict(
        dialogue_id,
        Verdict(
            "V01",
            "interim",
            1,
            SECRETS["verdict"],
            "split",
            SECRETS["verdict_description"],
            "muffin",
            ["if funded"],
            "1-1",
            ["muffin"],
            ["T0001"],
        ),
    )
    await store.record_text(
        dialogue_id, TextRecord("prompt", 1, "muffin", SECRETS["prompt"], path="round-01/muffin.prompt.md")
    )
    await store.record_text(
        dialogue_id, TextRecord("answer", 1, "muffin", SECRETS["answer"], path="round-01/muffin.md")
    )
    return dialogue_id


async def items_of(backend: Backend, dialogue_id: str = DIALOGUE) -> dict[str, Item]:
    """Every stored item of a partition by sk."""
    return {i["sk"]: i for i in await backend.query(partition_key(dialogue_id), consistent=True)}


async def overwrite(backend: Backend, item: Item) -> None:
    """Write an item directly, bypassing the domain store (what an attacker with storage access can do)."""
    await backend.transact([Put(item, None)])


def flip(data: bytes, bit: int = 0) -> bytes:
    """`data` with one bit inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def under_key(items: dict[str, Item], version: int, dialogue_id: str = DIALOGUE) -> list[str]:
    """SKs of the sealed items whose envelope is under data key `version`."""
    return [sk for sk, i in items.items() if "content_encrypted" in i and i["key_id"] == f"dek#{dialogue_id}#{version}"]


def content(snap: Snapshot) -> dict[str, Any]:
    """A snapshot's comparable content without the audit chain and the current key version."""
    data = snap.comparable()
    data.pop("audit")
    data["dialogue"].pop("dek_version")
    return data


def fresh_store(store: DialogueStore, keys: Any | None = None) -> DialogueStore:
    """Another DialogueStore over the same backend with an empty DEK cache (another process)."""
    return DialogueStore(store.backend, keys or store.keys, tenant=store.tenant, principal="other", clock=store.clock)


class CountingKeys(LocalKeyProvider):
    """A local provider that counts its unwraps."""

    def __init__(self, key_file: Path) -> None:
        super().__init__(key_file)
        self.calls: Counter[str] = Counter()

    async def unwrap(self, tenant: str, epoch: int, dialogue_id: str, version: int, wrapped: WrappedKey) -> bytes:
        self.calls["unwrap"] += 1
        return await super().unwrap(tenant, epoch, dialogue_id, version, wrapped)


@dataclass
class Meddling:
    """A backend that fails every transaction after the first `allow` (a crash mid-operation), and
    runs `after_query` once right after the first partition query (a concurrent writer)."""

    inner: Backend
    allow: int | None = None
    after_query: Callable[[], Awaitable[Any]] | None = None
    calls: Counter[str] = field(default_factory=Counter)

    async def get(self, pk: str, sk: str) -> Item | None:
        return await self.inner.get(pk, sk)

    async def query(self, pk: str, prefix: str = "", **kwargs: Any) -> list[Item]:
        return [item for item, _ in await self.query_stored(pk, prefix, **kwargs)]

    async def query_stored(self, pk: str, prefix: str = "", **kwargs: Any) -> list[StoredRead]:
        reads = await self.inner.query_stored(pk, prefix, **kwargs)
        if self.after_query is not None and not prefix:
            hook, self.after_query = self.after_query, None
            await hook()
        return reads

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        return await self.inner.query_index(index, key, limit=limit, cursor=cursor)

    async def transact(self, operations: Sequence[Operation]) -> None:
        if self.allow is not None:
            if self.allow <= 0:
                raise RuntimeError("interrupted")
            self.allow -= 1
        await self.inner.transact(operations)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


# --- 13: every kind round-trips -----------------------------------------------------------


async def test_every_kind_round_trips(store: DialogueStore) -> None:
    await build_dialogue(store)
    for reader in (store, fresh_store(store)):
        snap = await reader.load_partition(DIALOGUE)
        d = snap.dialogue
        assert (d.title, d.question, d.output_dir, d.pool, d.settings) == (
            SECRETS["title"],
            SECRETS["question"],
            "/srv/dialogues/x",
            {"name": "pool-a"},
            {"rounds": 3},
        )
        assert d.background == {"subject": SECRETS["background"], "constraints": ["c1"]}
        assert (d.status, d.total_rounds, d.tenant) == ("open", 2, "local")
        muffin = snap.experts["muffin"]
        assert (muffin.role, muffin.description, muffin.focus, muffin.tier, muffin.relevance) == (
            SECRETS["role"],
            SECRETS["description"],
            SECRETS["focus"],
            "Core",
            0.9,
        )
        assert snap.experts["scone"].role == SECRETS["role2"]
        r0 = snap.rounds[0]
        assert (r0.title, r0.summary, r0.notes, r0.recorded) == (
            SECRETS["round_title"],
            SECRETS["summary"],
            [SECRETS["note"]],
            {"source": "unit test"},
        )
        assert [(s.name, s.role, s.focus) for s in r0.panel] == [
            ("Muffin", SECRETS["role"], SECRETS["focus"]),
            ("Scone", SECRETS["role2"], None),
        ]
        assert r0.scores["muffin"] == Score(3, 2, 1, 1)
        ids = {
            kind: [e.id for e in snap.of_kind(kind)]
            for kind in ("perspective", "tension", "recommendation", "evidence", "claim")
        }
        assert ids == {
            "perspective": ["P0001", "P0002", "P0101", "P0102"],
            "tension": ["T0001"],
            "recommendation": ["R0001"],
            "evidence": ["E0001"],
            "claim": ["C0001"],
        }
        for eid, kind in (
            ("P0001", "perspective"),
            ("T0001", "tension"),
            ("R0001", "recommendation"),
            ("E0001", "evidence"),
            ("C0001", "claim"),
        ):
            entity = snap.entities[eid]
            assert (entity.label, entity.content) == (SECRETS[kind], SECRETS[f"{kind}_content"])
        assert snap.entities["P0001"].contributors == ["muffin", SECRETS["contributor"]]
        assert snap.entities["P0002"].content == "second content ✓ 漢字"
        assert (snap.entities["P0002"].aliases, snap.entities["P0002"].warnings) == (["SCONE-P0002"], ["merged"])
        assert snap.entities["R0001"].parameters == {"threshold": SECRETS["parameter"], "n": 3}
        assert snap.entities["T0001"].status == "addressed"
        assert snap.entities["P0001"].local_id == "MUFFIN-P0001"
        addressed = [e for e in snap.events_of("T0001") if e.event_type == "addressed"]
        assert [(e.actors, e.reason, e.reference) for e in addressed] == [(["muffin"], SECRETS["reason"], "R0001")]
        assert {(r.source, r.ref_type, r.target) for r in snap.refs} >= {
            ("P0101", "refine", "P0001"),
            ("R0001", "address", "T0001"),
        }
        assert [(m.move_type, m.targets, m.context) for m in snap.moves] == [
            ("challenge", ["P0002"], SECRETS["move_context"])
        ]
        (verdict,) = snap.verdicts
        assert (
            verdict.recommendation,
            verdict.description,
            verdict.conditions,
            verdict.vote,
            verdict.tensions_accepted,
        ) == (SECRETS["verdict"], SECRETS["verdict_description"], ["if funded"], "1-1", ["T0001"])
        assert sorted((t.kind, t.text, t.path) for t in snap.texts) == [
            ("answer", SECRETS["answer"], "round-01/muffin.md"),
            ("prompt", SECRETS["prompt"], "round-01/muffin.prompt.md"),
        ]
        assert {(s.round, s.expert) for s in snap.signals} == {(0, "scone"), (1, "muffin")}
    entity = await store.get_entity(DIALOGUE, "R0001")
    assert entity.content == SECRETS["recommendation_content"]
    assert (await store.get_dialogue(DIALOGUE)).title == SECRETS["title"]
    cleartext = ("ref#", "rin#", "signal#", "audit#", "dek#")
    for sk, item in (await items_of(store.backend)).items():
        if sk.startswith(cleartext):
            assert "content_encrypted" not in item or sk.startswith("dek#"), sk
            continue
        assert item["key_id"] == f"dek#{DIALOGUE}#1", sk
        assert item["encryption_version"] == 1 and len(item["content_nonce"]) == 12, sk
        assert (
            set(item) & {"label", "content", "title", "question", "role", "text", "summary", "contributors"} == set()
        ), sk


# --- 15: moved ciphertext and bit flips ---------------------------------------------------


async def test_envelope_moved_to_another_sk_or_dialogue_fails_to_open(store: DialogueStore) -> None:
    await build_dialogue(store)
    await build_dialogue(store, "other-analysis")
    items = await items_of(store.backend)
    p0101, p0102 = items["perspective#01#01"], items["perspective#01#02"]
    await overwrite(store.backend, {**p0102, **{k: p0101[k] for k in ENVELOPE}})
    where = f"dialogue {DIALOGUE}, item perspective#01#02"
    for reader in (store, fresh_store(store)):
        with pytest.raises(IntegrityError, match=where):
            await reader.load_partition(DIALOGUE)
        with pytest.raises(IntegrityError, match=where):
            await reader.get_entity(DIALOGUE, "P0102")
        with pytest.raises(IntegrityError, match=where):
            await reader.get_entities(DIALOGUE, "perspective", 1)
    assert (await store.get_entity(DIALOGUE, "P0101")).label == "refined perspective"

    victim = (await items_of(store.backend, "other-analysis"))["perspective#01#01"]
    await overwrite(store.backend, {**victim, **{k: p0101[k] for k in ENVELOPE}})
    with pytest.raises(IntegrityError, match="dialogue other-analysis, item perspective#01#01"):
        await store.load_partition("other-analysis")
    with pytest.raises(IntegrityError, match="dialogue other-analysis, item perspective#01#01"):
        await store.get_entity("other-analysis", "P0101")


async def test_bit_flips_fail_to_open(store: DialogueStore) -> None:
    await build_dialogue(store)
    items = await items_of(store.backend)
    for sk in ("meta", "perspective#00#01", "expert#muffin", "round#00", "verdict#V01", "answer#01#muffin"):
        for attribute in ("content_encrypted", "content_nonce"):
            value = items[sk][attribute]
            for bit in (0, 8 * len(value) - 1):
                await overwrite(store.backend, {**items[sk], attribute: flip(value, bit)})
                with pytest.raises(IntegrityError, match=f"dialogue {DIALOGUE}, item {sk}"):
                    await store.load_partition(DIALOGUE)
            await overwrite(store.backend, items[sk])
    assert (await store.load_partition(DIALOGUE)).dialogue.title == SECRETS["title"]


# --- 16: ciphertext is portable between backends ------------------------------------------


async def test_ciphertext_moves_between_sqlite_and_dynamodb(
    tmp_path: Path, key_file: Path, clock: FakeClock, dynamodb_backend: Backend
) -> None:
    dynamodb = dynamodb_backend
    sqlite = await SQLiteBackend(tmp_path / "port.db").open()
    try:
        keys = LocalKeyProvider(key_file)
        for source, target, dialogue in ((sqlite, dynamodb, "from-sqlite"), (dynamodb, sqlite, "from-dynamodb")):
            writer = DialogueStore(source, keys, principal="tester", clock=clock)
            await build_dialogue(writer, dialogue)
            items = await source.query(partition_key(dialogue), consistent=True)
            for start in range(0, len(items), 25):
                await target.transact([Put(item) for item in items[start : start + 25]])
            reader = DialogueStore(target, keys, principal="tester", clock=clock)
            assert await target.query(partition_key(dialogue), consistent=True) == items
            assert (await reader.load_partition(dialogue)) == (await writer.load_partition(dialogue))
            assert (await reader.verify_audit(dialogue)).ok
    finally:
        await sqlite.close()


# --- 17: no plaintext in a raw dump -------------------------------------------------------


async def test_raw_sqlite_file_holds_no_plaintext(tmp_path: Path, key_file: Path, clock: FakeClock) -> None:
    path = tmp_path / "concord.db"
    backend = await SQLiteBackend(path).open()
    try:
        store = DialogueStore(backend, LocalKeyProvider(key_file), principal="tester", clock=clock)
        await build_dialogue(store)
        await store.update_entity_status(
            DIALOGUE, "R0001", "amended", actors=["scone"], reason=SECRETS["reason"] + " again"
        )
        statuses = {i["status"] for i in (await items_of(backend)).values() if "status" in i}
        created = [i["created_at"] for i in (await items_of(backend)).values() if i.get("created_at")]
        raw = b"".join(p.read_bytes() for p in (path, tmp_path / "concord.db-wal") if p.exists())
    finally:
        await backend.close()
    assert statuses >= {"open", "addressed", "amended", "cited", "asserted"}
    for name, secret in SECRETS.items():
        for encoded in {secret.encode(), secret.encode("utf-16-le"), secret.lower().encode()}:
            assert encoded not in raw, f"plaintext {name} ({secret!r}) found in the raw database"
    assert b'"contributors"' not in raw and b'"label"' not in raw and b'"title"' not in raw and b'"role"' not in raw
    for status in statuses:
        assert f'"status":"{status}"'.encode() in raw
    assert all(value.encode() in raw for value in created)


# --- 19: another dialogue's DEK or another UMK --------------------------------------------


@sqlite_only
async def test_another_umk_cannot_open(store: DialogueStore, tmp_path: Path) -> None:
    await build_dialogue(store)
    other_key = tmp_path / "other" / "umk.key"
    LocalKeyProvider.create_key_file(other_key)
    intruder = fresh_store(store, LocalKeyProvider(other_key))
    with pytest.raises(KeyMaterialError) as caught:
        await intruder.load_partition(DIALOGUE)
    assert f"dialogue {DIALOGUE}" in str(caught.value) and str(other_key) in str(caught.value)
    with pytest.raises(KeyMaterialError):
        await intruder.get_entity(DIALOGUE, "P0001")


async def test_another_dialogues_dek_cannot_open(store: DialogueStore) -> None:
    await build_dialogue(store)
    await build_dialogue(store, "other-analysis")
    other_dek = store.deks.get("other-analysis", 1)
    assert other_dek is not None and other_dek != store.deks.get(DIALOGUE, 1)
    confused = fresh_store(store)
    confused.deks.put(DIALOGUE, 1, other_dek)
    with pytest.raises(IntegrityError, match=f"dialogue {DIALOGUE}, item meta"):
        await confused.load_partition(DIALOGUE)
    # The other dialogue's wrapped DEK copied into this partition does not unwrap here either.
    theirs = (await items_of(store.backend, "other-analysis"))["dek#1"]
    ours = (await items_of(store.backend))["dek#1"]
    await overwrite(
        store.backend,
        {**ours, "content_encrypted": theirs["content_encrypted"], "content_nonce": theirs["content_nonce"]},
    )
    with pytest.raises(KeyMaterialError, match=f"dialogue {DIALOGUE} \\(v1\\)"):
        await fresh_store(store).load_partition(DIALOGUE)


async def test_missing_key_file_with_existing_data_is_an_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    async with await open_stores(settings, principal="tester") as stores:
        dialogue = await stores.dialogues.create_dialogue("Key loss", "What happens without the key?")
    assert settings.key_file.exists() and settings.database.exists()
    settings.key_file.unlink()
    with pytest.raises(KeyMaterialError) as caught:
        await open_stores(settings, principal="tester")  # refused on opening, before any read or write
    backend = await SQLiteBackend(settings.database).open()
    try:  # a store opened around that check refuses too, on the first read
        with pytest.raises(KeyMaterialError, match=f"key file {settings.key_file} is missing"):
            await DialogueStore(backend, LocalKeyProvider(settings.key_file)).get_dialogue(dialogue)
    finally:
        await backend.close()
    assert f"key file {settings.key_file} is missing" in str(caught.value)
    assert not settings.key_file.exists(), "a new key must never be generated over existing data"


async def test_open_stores_refuses_a_world_readable_key_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    async with await open_stores(settings, principal="tester") as stores:
        dialogue = await stores.dialogues.create_dialogue("Perms", "Is the key private?")
    os.chmod(settings.key_file, 0o644)
    async with await open_stores(settings, principal="tester") as stores:
        with pytest.raises(KeyMaterialError, match=f"chmod 600 {settings.key_file}"):
            await stores.dialogues.get_dialogue(dialogue)


@sqlite_only
async def test_a_dialogue_load_unwraps_its_dek_once(store: DialogueStore, key_file: Path) -> None:
    await build_dialogue(store)
    keys = CountingKeys(key_file)
    reader = fresh_store(store, keys)
    for _ in range(3):
        await reader.load_partition(DIALOGUE)
    await reader.get_entity(DIALOGUE, "P0001")
    await reader.get_dialogue(DIALOGUE)
    await reader.get_entities(DIALOGUE, "tension")
    assert keys.calls["unwrap"] == 1


# --- 20: rotation and sweep ---------------------------------------------------------------


async def test_rotation_and_resumable_sweep(store: DialogueStore) -> None:
    await build_dialogue(store)
    before = await store.load_partition(DIALOGUE)
    assert await store.rotate_key(DIALOGUE) == 2
    items = await items_of(store.backend)
    assert {"dek#1", "dek#2"} <= set(items) and items["meta"]["dek_version"] == 2
    assert content(await fresh_store(store).load_partition(DIALOGUE)) == content(before)  # v1 items still open
    await store.update_entity_status(DIALOGUE, "P0101", "conceded", actors=["muffin"])
    items = await items_of(store.backend)
    newest = [
        i
        for i in items.values()
        if i["sk"].startswith("event#perspective#P0101#") and i.get("event_type") == "conceded"
    ]
    assert [i["key_id"] for i in newest] == [f"dek#{DIALOGUE}#2"]
    assert items["perspective#01#01"]["key_id"] == f"dek#{DIALOGUE}#1"  # a status change does not re-encrypt
    stale = under_key(items, 1)
    assert len(stale) > 10

    real = store.backend
    store.items.inner = Meddling(real, allow=1)
    with pytest.raises(RuntimeError, match="interrupted"):
        await store.sweep_keys(DIALOGUE, batch_size=5)
    store.items.inner = real
    halfway = await items_of(real)
    assert len(under_key(halfway, 1)) == len(stale) - 5 and len(under_key(halfway, 2)) > 5
    assert await fresh_store(store).load_partition(DIALOGUE) is not None

    assert await store.sweep_keys(DIALOGUE, batch_size=5) == len(stale) - 5
    after = await items_of(real)
    assert under_key(after, 1) == [] and sorted(under_key(after, 2)) == sorted(set(stale) | set(under_key(items, 2)))
    assert await store.sweep_keys(DIALOGUE) == 0
    for sk in stale:
        assert after[sk]["content_nonce"] != items[sk]["content_nonce"]
        kept = set(ENVELOPE) | {"audit_seq", "audit_head", "mac"}  # the audit head moves; every rewrite re-signs
        assert {k: v for k, v in after[sk].items() if k not in kept} == {
            k: v for k, v in items[sk].items() if k not in kept
        }
    assert (await store.verify_audit(DIALOGUE)).ok

    assert await store.destroy_keys(DIALOGUE, versions=[1]) == [1]
    reloaded = await fresh_store(store).load_partition(DIALOGUE)
    assert reloaded.entities["P0101"].status == "conceded"
    assert reloaded.entities["P0001"].label == SECRETS["perspective"]


async def test_sweep_keeps_a_status_change_made_while_it_runs(store: DialogueStore) -> None:
    await build_dialogue(store)
    await store.rotate_key(DIALOGUE)
    other_writer = fresh_store(store)
    real = store.backend

    async def concurrent_change() -> None:
        await other_writer.update_entity_status(DIALOGUE, "T0001", "resolved", actors=["scone"])

    store.items.inner = Meddling(real, after_query=concurrent_change)
    try:
        assert await store.sweep_keys(DIALOGUE) > 10
    finally:
        store.items.inner = real
    items = await items_of(real)
    assert items["tension#00#01"]["status"] == "resolved" and items["tension#00#01"]["key_id"] == f"dek#{DIALOGUE}#2"
    assert "gsi2pk" not in items["tension#00#01"]
    snap = await fresh_store(store).load_partition(DIALOGUE)
    assert snap.entities["T0001"].status == "resolved"
    report = await store.verify_audit(DIALOGUE)
    assert report.ok
    sweep = [e for e in snap.audit if e.operation == "sweep_keys"]
    assert sweep and "tension#00#01" in sweep[0].keys and "meta" in sweep[0].keys


@sqlite_only
async def test_new_writes_after_rotation_use_the_new_key(store: DialogueStore) -> None:
    await store.create_dialogue("Rotate", "Which key?", dialogue_id="rotating")
    await store.register_round("rotating", round_zero())
    await store.rotate_key("rotating")
    other_process = fresh_store(store)
    await other_process.register_round("rotating", round_one())
    items = await items_of(store.backend, "rotating")
    round_one_items = [i for i in items.values() if i.get("batch_round") == 1 and "key_id" in i]
    assert round_one_items and {i["key_id"] for i in round_one_items} == {"dek#rotating#2"}
    assert items["round#00"]["key_id"] == "dek#rotating#1"
    assert (await other_process.load_partition("rotating")).entities["P0101"].label == "refined perspective"


# --- 21: crypto-erasure -------------------------------------------------------------------


async def test_destroying_deks_erases_content_but_not_status(stores: Stores) -> None:
    store = stores.dialogues
    await build_dialogue(store)
    await build_dialogue(store, "kept-dialogue")
    await store.set_dialogue_status("kept-dialogue", "converging")
    assert await store.destroy_keys(DIALOGUE) == [1]
    for reader in (store, fresh_store(store)):
        with pytest.raises(KeyMaterialError, match=f"dialogue {DIALOGUE}: data key v1 is gone"):
            await reader.load_partition(DIALOGUE)
        with pytest.raises(KeyMaterialError, match=f"dialogue {DIALOGUE}"):
            await reader.get_entity(DIALOGUE, "P0001")
    meta = await stores.backend.get(partition_key(DIALOGUE), "meta")
    assert meta is not None and meta["status"] == "open" and meta["gsi1pk"] == "status#local#open"
    open_index = await stores.backend.query_index("gsi1", "status#local#open", limit=10)
    assert [i["pk"] for i in open_index.items] == [partition_key(DIALOGUE)]  # GSI1 still finds the erased dialogue
    assert sorted(await stores.analytics.dialogue_ids()) == sorted([DIALOGUE, "kept-dialogue"])
    listed = await stores.analytics.list_dialogues("open")
    assert listed.dialogues == []
    assert [d.id for d in (await stores.analytics.list_dialogues("converging")).dialogues] == ["kept-dialogue"]
    report = await store.verify_audit(DIALOGUE)
    assert report.ok and (await store.load_partition("kept-dialogue")).dialogue.title == SECRETS["title"]


# --- blind index (GSI3) -------------------------------------------------------------------


async def test_expert_participation_by_blind_index(stores: Stores) -> None:
    store, analytics = stores.dialogues, stores.analytics
    await build_dialogue(store)
    await build_dialogue(store, "second-dialogue", role="  cryptozoology   LIAISON officer ")
    await build_dialogue(store, "third-dialogue", role="Somebody Else Entirely")
    for query in (SECRETS["role"], SECRETS["role"].upper(), f"\t{SECRETS['role'].lower()}  "):
        found = await analytics.expert_participation(query)
        assert sorted((p.dialogue_id, p.expert, p.first_round) for p in found) == [
            (DIALOGUE, "muffin", 0),
            ("second-dialogue", "muffin", 0),
        ]
    assert [p.dialogue_id for p in await analytics.expert_participation(SECRETS["role2"])] == [
        DIALOGUE,
        "second-dialogue",
        "third-dialogue",
    ]
    assert await analytics.expert_participation("Nobody At All") == []
    secret = await store.keys.tenant_secret("local", 1, "blind-index")
    expert = (await items_of(store.backend))["expert#muffin"]
    assert expert["gsi3pk"] == f"role#local#{blind_index(secret, SECRETS['role'])}"
    assert expert["gsi3sk"] == f"{DIALOGUE}#00"
    for word in SECRETS["role"].lower().split():
        assert word not in expert["gsi3pk"].lower() and word not in expert["gsi3sk"].lower()


@sqlite_only
async def test_blind_index_differs_per_tenant(stores: Stores) -> None:
    store = stores.dialogues
    other = DialogueStore(stores.backend, store.keys, tenant="globex", principal="tester", clock=store.clock)
    await build_dialogue(store)
    await build_dialogue(other, "globex-dialogue")
    theirs = AnalyticsStore(stores.backend, store.keys, other)
    assert [p.dialogue_id for p in await stores.analytics.expert_participation(SECRETS["role"])] == [DIALOGUE]
    assert [p.dialogue_id for p in await theirs.expert_participation(SECRETS["role"])] == ["globex-dialogue"]
    ours_key = (await items_of(stores.backend))["expert#muffin"]["gsi3pk"].rsplit("#", 1)[1]
    their_key = (await items_of(stores.backend, "globex-dialogue"))["expert#muffin"]["gsi3pk"].rsplit("#", 1)[1]
    assert ours_key != their_key
