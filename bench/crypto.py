"""register_round + load_partition of a 100-entity round on SQLite: AES-256-GCM vs an identity sealer.

The baseline runs the very same DialogueStore code (codec, validation, audit chain, transactions,
DEK cache lookups) with the two envelope primitives the store's sealing module calls, `seal` and
`open_item`, swapped for identity versions that store the canonical JSON unencrypted. The swap
lives in this file only and is active only inside `identity_sealer()`; nothing in the product
can reach it. A self-check refuses to report a ratio unless the baseline really stored plaintext
and the encrypted run really stored ciphertext.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import concord.store.sealing as sealing_module  # noqa: E402
from concord.store.backends.sqlite import SQLiteBackend  # noqa: E402
from concord.store.crypto.envelope import ENCRYPTION_VERSION, Envelope, canonical_json  # noqa: E402
from concord.store.crypto.keys import LocalKeyProvider  # noqa: E402
from concord.store.dialogue_store import DialogueStore  # noqa: E402
from concord.store.ids import partition_key  # noqa: E402
from concord.store.model import EntityDraft, Expert, PanelSeat, RefDraft, RoundBatch, Score  # noqa: E402

WARMUP = 3
PAIRS = 40
EXPERTS = ("muffin", "cupcake", "scone", "eclair", "donut")
KINDS = (
    ("perspective", "P", 40),
    ("tension", "T", 20),
    ("recommendation", "R", 15),
    ("evidence", "E", 15),
    ("claim", "C", 10),
)
TARGET = 0.7


def hundred_entity_round() -> RoundBatch:
    """Round 0 with 100 entities of the five kinds, refs between them, five experts."""

    def local(letter: str, n: int) -> str:
        return f"{EXPERTS[n % len(EXPERTS)].upper()}-{letter}00{n:02d}"

    entities = []
    for kind, letter, count in KINDS:
        for n in range(1, count + 1):
            refs = {
                "perspective": [RefDraft("support", local("P", n - 1))] if n > 1 else [],
                "recommendation": [RefDraft("address", local("T", n))],
            }.get(kind, [RefDraft("depend", local("P", n))])
            entities.append(
                EntityDraft(
                    kind,
                    local(letter, n),
                    f"{kind} {n}: a short label",
                    f"the {kind}'s argument, a paragraph of text. " * 12,
                    [EXPERTS[n % len(EXPERTS)]],
                    refs,
                )
            )
    return RoundBatch(
        round=0,
        entities=entities,
        panel=[PanelSeat(name.capitalize(), f"role of {name}", "Core", "pool", 0.8) for name in EXPERTS],
        experts=[Expert(name, f"role of {name}", "Core", "pool", 0.8) for name in EXPERTS],
        scores={name: Score(3, 2, 2, 1) for name in EXPERTS},
        answered=list(EXPERTS),
        signals=["muffin"],
        title="round zero",
        summary="what the panel said " * 20,
    )


def _identity_seal(
    key: bytes, key_id: str, pk: str, sk: str, fields: dict[str, Any], nonce: bytes | None = None
) -> Envelope:
    return Envelope(canonical_json(fields), b"", key_id, "", ENCRYPTION_VERSION)


def _identity_open(key: Any, item: dict[str, Any]) -> dict[str, Any]:
    return json.loads(item["content_encrypted"])


@contextmanager
def identity_sealer() -> Iterator[None]:
    """Swap the store's envelope primitives for identity ones, for the baseline only."""
    saved = sealing_module.seal, sealing_module.open_item
    sealing_module.seal, sealing_module.open_item = _identity_seal, _identity_open
    try:
        yield
    finally:
        sealing_module.seal, sealing_module.open_item = saved


async def one_op(store: DialogueStore, batch: RoundBatch, n: int) -> tuple[float, float]:
    """Seconds for register_round and load_partition of one fresh 100-entity dialogue."""
    dialogue_id = await store.create_dialogue(f"crypto bench {n}", "How much does encryption cost?")
    start = time.perf_counter()
    mapping = await store.register_round(dialogue_id, batch)
    registered = time.perf_counter()
    snap = await store.load_partition(dialogue_id)
    loaded = time.perf_counter()
    if len(mapping) != 100 or len(snap.entities) != 100:
        raise SystemExit(f"bench dialogue is wrong: {len(mapping)} ids mapped, {len(snap.entities)} entities loaded")
    return registered - start, loaded - registered


async def self_check(store: DialogueStore, plaintext_expected: bool) -> None:
    """Refuse to report unless the variant stored what it claims to store."""
    items = await store.backend.query(partition_key(await store.create_dialogue("check", "check?")), consistent=True)
    meta = next(i for i in items if i["sk"] == "meta")
    try:
        is_plaintext = json.loads(meta["content_encrypted"])["title"] == "check"
    except (ValueError, UnicodeDecodeError, KeyError):
        is_plaintext = False
    if is_plaintext != plaintext_expected:
        raise SystemExit(
            f"self-check failed: the {'baseline' if plaintext_expected else 'encrypted'} variant did not store "
            f"{'plaintext' if plaintext_expected else 'ciphertext'}; the identity swap no longer matches the store"
        )


async def main() -> None:
    batch = hundred_entity_round()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        LocalKeyProvider.create_key_file(root / "umk.key")
        keys = LocalKeyProvider(root / "umk.key")
        encrypted_backend = await SQLiteBackend(root / "encrypted.db").open()
        baseline_backend = await SQLiteBackend(root / "baseline.db").open()
        encrypted = DialogueStore(encrypted_backend, keys, principal="bench")
        baseline = DialogueStore(baseline_backend, keys, principal="bench")
        try:
            await self_check(encrypted, plaintext_expected=False)
            with identity_sealer():
                await self_check(baseline, plaintext_expected=True)
            times: dict[str, list[tuple[float, float]]] = {"encrypted": [], "baseline": []}
            for n in range(WARMUP + PAIRS):  # interleaved, so drift on a busy machine hits both alike
                enc = await one_op(encrypted, batch, n)
                with identity_sealer():
                    base = await one_op(baseline, batch, n)
                if n >= WARMUP:
                    times["encrypted"].append(enc)
                    times["baseline"].append(base)
        finally:
            await encrypted_backend.close()
            await baseline_backend.close()
    median = {name: statistics.median(r + load for r, load in runs) for name, runs in times.items()}
    register = {name: statistics.median(r for r, _ in runs) for name, runs in times.items()}
    load = {name: statistics.median(load for _, load in runs) for name, runs in times.items()}
    throughput = {name: 1 / seconds for name, seconds in median.items()}
    ratio = throughput["encrypted"] / throughput["baseline"]
    for name in ("encrypted", "baseline"):
        print(
            f"{name:9s}  register_round {register[name] * 1000:7.2f} ms  load_partition {load[name] * 1000:7.2f} ms  "
            f"together {median[name] * 1000:7.2f} ms  = {throughput[name]:6.1f} dialogues/s (median of {PAIRS})"
        )
    print(
        f"encryption costs {(median['encrypted'] - median['baseline']) * 1000:.2f} ms per 100-entity register+load "
        f"({'meets' if ratio >= TARGET else 'MISSES'} the target)"
    )
    print(
        f"BENCH crypto ratio={ratio:.3f} target=>={TARGET} encrypted_per_s={throughput['encrypted']:.1f} "
        f"baseline_per_s={throughput['baseline']:.1f} register_ms={register['encrypted'] * 1000:.2f} "
        f"load_ms={load['encrypted'] * 1000:.2f} entities=100 pairs={PAIRS}"
    )


if __name__ == "__main__":
    asyncio.run(main())
