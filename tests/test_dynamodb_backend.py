"""Item-level tests of DynamoDBBackend against a real DynamoDB Local."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import boto3
import pytest
from botocore.exceptions import ClientError

from concord.store.backends.base import MAX_ITEM_BYTES, Delete, Item, Put, equals
from concord.store.backends.dynamodb import DynamoDBBackend, _cancellation_error
from concord.store.errors import BackendUnavailable, ConditionFailed, ConflictError, ItemTooLarge, StoreError
from tests.services import DynamoDBLocal, MotoServer, free_port

PK = "dialogue#d1"


def item(sk: str, pk: str = PK, **attributes: object) -> Item:
    """An item with the given key and attributes."""
    return {"pk": pk, "sk": sk, **attributes}


@asynccontextmanager
async def paged(backend: DynamoDBBackend, endpoint: str, page_limit: int) -> AsyncIterator[DynamoDBBackend]:
    """A second backend on the same table whose queries read `page_limit` items per page."""
    other = DynamoDBBackend(backend.table, endpoint_url=endpoint, page_limit=page_limit)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def test_round_trip_of_every_value_type(dynamodb_backend: DynamoDBBackend) -> None:
    stored = item(
        "tension#01#01",
        text='Ünïcode ✓ 漢字 — "quotes" and emoji 🎉',
        empty="",
        count=42,
        negative=-7,
        big=2**53 - 1,
        big_float=1e16,
        ratio=0.1,
        tiny=1.5e-100,
        huge=1.2345e120,
        huge_negative=-9.87654321e125,
        precise=1 / 3,
        yes=True,
        no=False,
        nothing=None,
        tags=["a", 1, 2.5, None, True, ["nested"], {"k": "v"}],
        nested={"level": {"deeper": [1, {"x": 0.25}], "flag": False}, "ünï": "ok"},
        empty_list=[],
        empty_map={},
        content_encrypted=bytes(range(256)) * 4,
        content_nonce=b"\x00" * 12,
    )
    await dynamodb_backend.transact([Put(stored)])
    loaded = await dynamodb_backend.get(PK, "tension#01#01")
    assert loaded == stored
    assert loaded is not None
    assert type(loaded["count"]) is int and type(loaded["big"]) is int
    assert type(loaded["ratio"]) is float and loaded["precise"] == 1 / 3
    assert type(loaded["big_float"]) is float and type(loaded["huge"]) is float
    assert type(loaded["content_encrypted"]) is bytes
    assert await dynamodb_backend.get(PK, "missing") is None


async def test_integral_floats_below_2_53_read_back_as_equal_ints(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    await dynamodb_backend.transact([Put(item("meta", two=2.0, minus_zero=-0.0, e15=1e15))])
    loaded = await dynamodb_backend.get(PK, "meta")
    assert loaded == {"pk": PK, "sk": "meta", "two": 2, "minus_zero": 0, "e15": 10**15}
    assert all(type(loaded[name]) is int for name in ("two", "minus_zero", "e15"))


async def test_numbers_that_cannot_round_trip_are_refused_before_the_call(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    for value in (2**53, -(2**53), float("nan"), float("inf")):
        with pytest.raises(ValueError):
            await dynamodb_backend.transact([Put(item("meta", n=value))])
    assert sum(dynamodb_backend.calls.values()) == 0


async def test_absent_condition_fails_on_second_put_with_its_index(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    await dynamodb_backend.transact([Put(item("verdict#v1", v=1))])
    second = Put(item("verdict#v1", v=2))
    with pytest.raises(ConditionFailed) as failed:
        await dynamodb_backend.transact([Put(item("verdict#v0")), second])
    assert (failed.value.index, failed.value.key) == (1, (PK, "verdict#v1"))
    assert await dynamodb_backend.get(PK, "verdict#v0") is None
    assert (await dynamodb_backend.get(PK, "verdict#v1")) == item("verdict#v1", v=1)


async def test_put_without_condition_replaces(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item("meta", v=1))])
    await dynamodb_backend.transact([Put(item("meta", v=2), condition=None)])
    assert await dynamodb_backend.get(PK, "meta") == item("meta", v=2)


async def test_equals_condition(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item("meta", status="open"))])
    with pytest.raises(ConditionFailed) as failed:
        await dynamodb_backend.transact([Put(item("meta", status="closed"), condition=equals("status", "done"))])
    assert failed.value.index == 0
    assert await dynamodb_backend.get(PK, "meta") == item("meta", status="open")
    await dynamodb_backend.transact([Put(item("meta", status="closed"), condition=equals("status", "open"))])
    assert await dynamodb_backend.get(PK, "meta") == item("meta", status="closed")


async def test_conditional_delete(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item("a", batch="one")), Put(item("b", batch="one"))])
    with pytest.raises(ConditionFailed) as failed:
        await dynamodb_backend.transact([Delete(PK, "a"), Delete(PK, "b", equals("batch", "two"))])
    assert failed.value.index == 1
    assert await dynamodb_backend.get(PK, "a") is not None
    await dynamodb_backend.transact([Delete(PK, "a"), Delete(PK, "b", equals("batch", "one"))])
    assert await dynamodb_backend.query(PK, consistent=True) == []
    await dynamodb_backend.transact([Delete(PK, "never-there")])


async def test_a_failing_third_operation_writes_nothing(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item("c", n=1)), Put(item("exists"))])
    with pytest.raises(ConditionFailed) as failed:
        await dynamodb_backend.transact([Put(item("a")), Delete(PK, "c"), Put(item("exists")), Put(item("d"))])
    assert failed.value.index == 2
    assert await dynamodb_backend.query(PK, consistent=True) == [item("c", n=1), item("exists")]


async def test_transaction_limits_are_checked_before_the_call(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    with pytest.raises(ValueError):
        await dynamodb_backend.transact([Put(item(f"x#{n:03d}")) for n in range(101)])
    with pytest.raises(ValueError):
        await dynamodb_backend.transact([Put(item("x")), Delete(PK, "x")])
    await dynamodb_backend.transact([])
    assert sum(dynamodb_backend.calls.values()) == 0


async def test_a_full_transaction_of_100_operations(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item(f"x#{n:03d}", n=n)) for n in range(100)])
    assert len(await dynamodb_backend.query(PK, "x#")) == 100
    assert dynamodb_backend.calls["TransactWriteItems"] == 1


async def test_prefix_query_order_reverse_and_limit(dynamodb_backend: DynamoDBBackend) -> None:
    sks = [
        "tension#02#01",
        "tension#01#02",
        "perspective#01#01",
        "tension#01#01",
        "tension#10#01",
        "ref#T1#x",
    ]
    await dynamodb_backend.transact([Put(item(sk)) for sk in sks] + [Put(item("tension#01#01", pk="dialogue#other"))])
    tensions = ["tension#01#01", "tension#01#02", "tension#02#01", "tension#10#01"]
    assert [i["sk"] for i in await dynamodb_backend.query(PK, "tension#")] == tensions
    assert [i["sk"] for i in await dynamodb_backend.query(PK, "tension#", reverse=True)] == tensions[::-1]
    assert [i["sk"] for i in await dynamodb_backend.query(PK, "tension#01#", consistent=True)] == tensions[:2]
    assert [i["sk"] for i in await dynamodb_backend.query(PK, "tension#", limit=3)] == tensions[:3]
    assert [i["sk"] for i in await dynamodb_backend.query(PK, "tension#", reverse=True, limit=1)] == ["tension#10#01"]
    assert [i["sk"] for i in await dynamodb_backend.query(PK)] == sorted(sks)
    assert await dynamodb_backend.query(PK, "verdict#") == []
    assert await dynamodb_backend.query("dialogue#nobody") == []


async def test_pagination_follows_every_page(dynamodb_backend: DynamoDBBackend, dynamodb_local: DynamoDBLocal) -> None:
    await dynamodb_backend.transact([Put(item(f"event#{n}", n=n)) for n in range(7)])
    async with paged(dynamodb_backend, dynamodb_local.endpoint, page_limit=2) as backend:
        items = await backend.query(PK, "event#", consistent=True)
        assert [i["n"] for i in items] == list(range(7))
        assert backend.calls["Query"] == 4
        backend.calls.clear()
        assert [i["n"] for i in await backend.query(PK, "event#", limit=3)] == [0, 1, 2]
        assert backend.calls["Query"] == 2
        backend.calls.clear()
        assert [i["n"] for i in await backend.query(PK, "event#", reverse=True)] == list(range(6, -1, -1))
        assert backend.calls["Query"] == 4


async def test_a_partition_over_one_megabyte_loads_completely(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    blob = b"\xab" * (100 * 1024)
    for start in (0, 6):
        await dynamodb_backend.transact(
            [
                Put(item(f"answer#{n:02d}", content_encrypted=blob, content_nonce=bytes(12)))
                for n in range(start, start + 6)
            ]
        )
    items = await dynamodb_backend.query(PK, consistent=True)
    assert [i["sk"] for i in items] == [f"answer#{n:02d}" for n in range(12)]
    assert all(i["content_encrypted"] == blob for i in items)
    assert dynamodb_backend.calls["Query"] >= 2


async def test_query_index_pages_with_a_cursor_and_is_sparse(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    key = "status#local#open"
    indexed = [item("meta", pk=f"dialogue#d{n}", gsi1pk=key, gsi1sk=f"2025-01-0{n}#d{n}") for n in range(1, 6)]
    others = [
        item("meta", pk="dialogue#closed", gsi1pk="status#local#closed", gsi1sk="2025-01-01#closed"),
        item("meta", pk="dialogue#plain"),
        item("tension#01#01", pk="dialogue#d1", gsi2pk="open_tension#local", gsi2sk="d1#T1"),
    ]
    await dynamodb_backend.transact([Put(i) for i in indexed + others])
    pages = []
    cursor = None
    while True:
        page = await dynamodb_backend.query_index("gsi1", key, limit=2, cursor=cursor)
        pages.append([i["pk"] for i in page.items])
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == [
        ["dialogue#d1", "dialogue#d2"],
        ["dialogue#d3", "dialogue#d4"],
        ["dialogue#d5"],
    ]
    first = await dynamodb_backend.query_index("gsi1", key, limit=5)
    assert first.items == indexed and first.cursor is None
    assert (await dynamodb_backend.query_index("gsi2", "open_tension#local", limit=10)).items == [others[2]]
    assert (await dynamodb_backend.query_index("gsi3", "role#local#x", limit=10)).items == []


async def test_query_index_refuses_a_foreign_cursor(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact(
        [Put(item("meta", pk=f"dialogue#{n}", gsi1pk="status#a#open", gsi1sk=str(n))) for n in range(3)]
    )
    page = await dynamodb_backend.query_index("gsi1", "status#a#open", limit=1)
    assert page.cursor is not None
    with pytest.raises(ValueError):
        await dynamodb_backend.query_index("gsi1", "status#b#open", limit=1, cursor=page.cursor)
    with pytest.raises(ValueError):
        await dynamodb_backend.query_index("gsi1", "status#a#open", limit=1, cursor="not a cursor!")
    with pytest.raises(ValueError):
        await dynamodb_backend.query_index("gsi9", "status#a#open", limit=1)


async def test_an_item_too_large_is_refused_before_the_call(
    dynamodb_backend: DynamoDBBackend,
) -> None:
    big = item("answer#01#x", content_encrypted=b"\x00" * MAX_ITEM_BYTES)
    with pytest.raises(ItemTooLarge) as refused:
        await dynamodb_backend.transact([Put(item("small")), Put(big)])
    assert "answer#01#x" in str(refused.value) and PK in str(refused.value)
    assert sum(dynamodb_backend.calls.values()) == 0


async def test_calls_are_counted_by_operation(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item("meta"))])
    await dynamodb_backend.get(PK, "meta")
    await dynamodb_backend.query(PK)
    await dynamodb_backend.ping()
    assert dynamodb_backend.calls == {
        "TransactWriteItems": 1,
        "GetItem": 1,
        "Query": 1,
        "DescribeTable": 1,
    }


async def test_a_missing_table_is_backend_unavailable(dynamodb_local: DynamoDBLocal) -> None:
    backend = DynamoDBBackend("concord_never_created", endpoint_url=dynamodb_local.endpoint)
    await backend.open()
    try:
        for attempt in (
            backend.ping(),
            backend.get(PK, "meta"),
            backend.query(PK),
            backend.query_index("gsi1", "k", limit=1),
            backend.transact([Put(item("meta"))]),
        ):
            with pytest.raises(BackendUnavailable) as missing:
                await attempt
            assert "concord_never_created" in str(missing.value)
            assert "concord store init" in str(missing.value)
    finally:
        await backend.close()


async def test_an_unreachable_endpoint_is_backend_unavailable(aws_test_env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    backend = DynamoDBBackend("concord_dialogues", endpoint_url=endpoint, max_attempts=1)
    await backend.open()
    try:
        with pytest.raises(BackendUnavailable) as unreachable:
            await backend.get(PK, "meta")
    finally:
        await backend.close()
    assert endpoint in str(unreachable.value)
    assert "Traceback" not in str(unreachable.value)


async def test_create_table_is_idempotent(dynamodb_backend: DynamoDBBackend) -> None:
    await dynamodb_backend.transact([Put(item("meta", kept=True))])
    assert await dynamodb_backend.create_table() is False
    assert await dynamodb_backend.get(PK, "meta") == item("meta", kept=True)


def test_cancellation_reasons_map_onto_store_errors() -> None:
    operations = [Put(item("a")), Put(item("b"))]

    def cancelled(*codes: str) -> ClientError:
        response = {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        }
        return ClientError(response, "TransactWriteItems")

    condition = _cancellation_error(cancelled("TransactionConflict", "ConditionalCheckFailed"), operations)
    assert isinstance(condition, ConditionFailed) and condition.index == 1
    assert isinstance(_cancellation_error(cancelled("None", "TransactionConflict"), operations), ConflictError)
    other = _cancellation_error(cancelled("ThrottlingError", "None"), operations)
    assert type(other) is StoreError and "0: ThrottlingError" in str(other)


def test_moto_server_serves_kms(moto_server: MotoServer) -> None:
    kms = boto3.client("kms", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    key_id = kms.create_key(Description="concord test")["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True
