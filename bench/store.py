"""load_partition of a 100-entity dialogue vs a raw SELECT + json.loads of the same SQLite rows over an open connection.

The two are called in turn and the ratio is the median of each back-to-back pair's ratio. This machine's speed shifts
by about 2x from moment to moment, and the ratio differs a little between its two speeds, so it is also printed for the
pairs run at the fast speed (fast_ratio), with the upper quartile of all pairs (q75) and the ratio of the fastest calls.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import alternating, pair_ratios  # noqa: E402
from concord.store.backends.sqlite import SQLiteBackend  # noqa: E402
from concord.store.crypto.keys import LocalKeyProvider  # noqa: E402
from concord.store.dialogue_store import DialogueStore  # noqa: E402
from concord.store.model import EntityDraft, Expert, PanelSeat, RefDraft, RoundBatch, Score, StatusChange  # noqa: E402

REPEATS = 1000
EXPERTS = ("muffin", "cupcake", "scone", "eclair", "donut")


def round_batch(number: int, per_kind: int) -> RoundBatch:
    """A round of perspectives and tensions citing the previous round, with scores and signals."""
    entities = []
    for n in range(1, per_kind + 1):
        author = EXPERTS[n % len(EXPERTS)]
        refs = [RefDraft("support", f"P{number - 1:02d}{n:02d}")] if number and n <= 12 else []
        entities.append(
            EntityDraft(
                "perspective",
                f"{author.upper()}-P{number:02d}{n:02d}",
                f"point {number}.{n}",
                "a paragraph of argument " * 12,
                [author],
                refs,
            )
        )
        refs = [RefDraft("depend", f"T{number - 1:02d}{n:02d}")] if number and n <= 12 else []
        entities.append(
            EntityDraft(
                "tension",
                f"{author.upper()}-T{number:02d}{n:02d}",
                f"tension {number}.{n}",
                "why these disagree " * 10,
                [author],
                refs,
            )
        )
    changes = (
        [StatusChange(f"T{number - 1:02d}{n:02d}", "addressed", ["muffin"]) for n in range(1, min(per_kind, 12) + 1)]
        if number
        else []
    )
    return RoundBatch(
        round=number,
        entities=entities,
        status_changes=changes,
        panel=[PanelSeat(name.capitalize(), f"role of {name}") for name in EXPERTS],
        experts=[Expert(name, f"role of {name}") for name in EXPERTS] if number == 0 else [],
        scores={name: Score(3, 2, 2, 1) for name in EXPERTS},
        answered=list(EXPERTS),
    )


async def build(path: Path) -> tuple[DialogueStore, str]:
    """A dialogue of 4 rounds x 25 entities with refs, events and status changes."""
    LocalKeyProvider.create_key_file(path / "umk.key")
    backend = await SQLiteBackend(path / "concord.db").open()
    store = DialogueStore(backend, LocalKeyProvider(path / "umk.key"), principal="bench")
    did = await store.create_dialogue("Store bench", "How fast does a partition load?")
    for number in range(4):
        await store.register_round(did, round_batch(number, 12 if number < 3 else 14))
    return store, did


def raw_load(conn: sqlite3.Connection, pk: str) -> list[dict]:
    """The same rows (every stored column), read over an open connection and JSON-decoded with nothing else."""
    rows = conn.execute(
        "SELECT pk, sk, attrs, mac, content_encrypted, content_nonce FROM items WHERE pk = ? ORDER BY sk", (pk,)
    )
    return [{"pk": r[0], "sk": r[1], **json.loads(r[2]), "mac": r[3], "blob": r[4], "nonce": r[5]} for r in rows]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        store, did = await build(path)
        conn = sqlite3.connect(path / "concord.db")
        snap = await store.load_partition(did)
        rows = raw_load(conn, f"dialogue#{did}")
        assert len(snap.entities) == 100

        store_times, raw_times = await alternating(
            lambda: store.load_partition(did), lambda: raw_load(conn, f"dialogue#{did}"), REPEATS
        )
        ratios, fast = pair_ratios(store_times, raw_times), pair_ratios(store_times, raw_times, fast_only=True)
        concord, raw = statistics.median(store_times), statistics.median(raw_times)
        conn.close()
        await store.backend.close()
    sealed = sum(1 for r in rows if r["blob"] is not None)
    print(
        f"entities={len(snap.entities)} refs={len(snap.refs)} events={len(snap.events)} items={len(rows)} "
        f"sealed={sealed}; median of {REPEATS} calls each, taken in turn"
    )
    print(f"load_partition (MACs checked, envelopes opened, decoded)  {concord * 1000:8.2f} ms")
    print(f"raw SELECT + json.loads of the same rows                  {raw * 1000:8.2f} ms")
    print(
        f"BENCH store ratio={statistics.median(ratios):.2f} target=<=2 load_ms={concord * 1000:.2f} "
        f"raw_ms={raw * 1000:.2f} fast_ratio={statistics.median(fast):.2f} fast_pairs={len(fast)} "
        f"q75={statistics.quantiles(ratios, n=4)[2]:.2f} min_ratio={min(store_times) / min(raw_times):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
