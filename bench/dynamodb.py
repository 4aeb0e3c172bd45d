"""DynamoDB Local: load_partition (verify, decrypt, decode) vs a raw aioboto3 Query of the same items,
and what register_round of 100 entities costs in calls and time."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aioboto3  # noqa: E402

from bench.timing import alternating  # noqa: E402
from concord.store.backends.dynamodb import DynamoDBBackend  # noqa: E402
from concord.store.crypto.keys import LocalKeyProvider  # noqa: E402
from concord.store.dialogue_store import DialogueStore  # noqa: E402
from tests.services import AWS_TEST_ENV, DynamoDBLocal  # noqa: E402

REPEATS = 20
TABLE = "concord_bench"


def hundred_entity_round() -> Any:
    """The 100-entity round of bench/crypto.py, reused as is."""
    spec = importlib.util.spec_from_file_location("bench_crypto", ROOT / "bench" / "crypto.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.hundred_entity_round()


async def raw_query(client: object, pk: str) -> list[dict]:
    """The same items with a bare aioboto3 Query (paginated, consistent), no decoding at all."""
    items, start = [], None
    while True:
        page = await client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ConsistentRead=True,  # type: ignore[attr-defined]
            ExpressionAttributeValues={":pk": {"S": pk}},
            **({"ExclusiveStartKey": start} if start else {}),
        )
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


async def main() -> None:
    os.environ.update(AWS_TEST_ENV)
    with tempfile.TemporaryDirectory() as tmp, DynamoDBLocal() as dynamo:
        key_file = Path(tmp) / "umk.key"
        LocalKeyProvider.create_key_file(key_file)
        backend = DynamoDBBackend(TABLE, endpoint_url=dynamo.endpoint)
        await backend.open()
        await backend.create_table()
        store = DialogueStore(backend, LocalKeyProvider(key_file), principal="bench")
        did = await store.create_dialogue("DynamoDB bench", "How fast is a partition on DynamoDB Local?")
        backend.calls.clear()
        started = time.perf_counter()
        await store.register_round(did, hundred_entity_round())
        register_ms = (time.perf_counter() - started) * 1000
        register_calls = dict(backend.calls)

        snap = await store.load_partition(did)
        async with aioboto3.Session().client("dynamodb", endpoint_url=dynamo.endpoint) as client:
            raw = await raw_query(client, f"dialogue#{did}")
            assert len(snap.entities) == 100
            store_times, raw_times = await alternating(
                lambda: store.load_partition(did), lambda: raw_query(client, f"dialogue#{did}"), REPEATS
            )
        backend.calls.clear()
        await store.load_partition(did)
        load_calls = dict(backend.calls)
        await backend.close()
    concord_ms, raw_ms = statistics.median(store_times) * 1000, statistics.median(raw_times) * 1000
    ratio = raw_ms / concord_ms
    print(
        f"partition: {len(raw)} items, {len(snap.entities)} entities, {len(snap.refs)} refs, {len(snap.events)} events"
    )
    print(f"load_partition through the store  {concord_ms:8.2f} ms  (calls {load_calls})")
    print(f"raw aioboto3 Query                {raw_ms:8.2f} ms")
    print(f"register_round of 100 entities    {register_ms:8.2f} ms  (calls {register_calls})")
    print(
        f"BENCH dynamodb ratio={ratio:.2f} target=>=0.6 load_ms={concord_ms:.2f} raw_ms={raw_ms:.2f} "
        f"register_ms={register_ms:.0f} register_calls={sum(register_calls.values())}"
    )


if __name__ == "__main__":
    asyncio.run(main())
