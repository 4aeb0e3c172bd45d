"""The DynamoDB backend: the item-level `Backend` contract on one table, over aioboto3.

Numbers: DynamoDB keeps one normalised decimal (2.0 and 2 are both stored as "2"), so the type
cannot be stored; this rule recovers it. Ints must be JSON-safe (|n| < 2**53, else ValueError
before any call) and are written exactly; floats are written as `Decimal(repr(x))`. On read, an
integral number below 2**53 in magnitude becomes an int, every other number a float. So every
int and every float reads back equal, with its type, except an integral float below 2**53
(2.0, -0.0, 1e15), which reads back as the equal int. DynamoDB refuses magnitudes above ~1e126
and nonzero ones below 1e-130 (StoreError).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any, Self

import aioboto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from concord.store.backends.base import (
    INDEXES,
    Condition,
    Item,
    Operation,
    Page,
    Put,
    StoredRead,
    check_transaction,
)
from concord.store.errors import BackendUnavailable, ConditionFailed, ConflictError, StoreError

AttributeValue = dict[str, Any]

#: Ints are limited to the JSON-safe range, so every integral number below it is read as an int.
SAFE_INTEGER = 2**53

#: Seconds create_table waits for the table and its indexes to become ACTIVE.
CREATE_TIMEOUT = 300.0


class DynamoDBBackend:
    """Items in one DynamoDB table: key (pk, sk), three sparse GSIs, 100-action transactions."""

    def __init__(
        self,
        table: str = "concord_dialogues",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        page_limit: int | None = None,
        max_attempts: int = 3,
    ) -> None:
        """Arguments left None resolve from the standard AWS environment when the client opens."""
        self.table = table
        self.calls: Counter[str] = Counter()
        self._endpoint_url = endpoint_url
        self._region = region
        self._page_limit = page_limit
        self._config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=20,
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        """The endpoint the client talks to (resolved from the environment when not given)."""
        if self._client is not None:
            return str(self._client.meta.endpoint_url)
        return self._endpoint_url or "the default AWS endpoint"

    async def open(self) -> Self:
        """Create the aioboto3 session and the one client every call goes through; returns self."""
        if self._client is not None:
            return self
        stack = AsyncExitStack()
        session = aioboto3.Session(region_name=self._region)
        try:
            self._client = await stack.enter_async_context(
                session.client("dynamodb", endpoint_url=self._endpoint_url, config=self._config)
            )
        except NoRegionError:
            await stack.aclose()
            raise BackendUnavailable("no AWS region for DynamoDB: set AWS_REGION") from None
        self._stack = stack
        return self

    async def close(self) -> None:
        """Close the client; the backend can be opened again."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def create_table(self, wait: bool = True) -> bool:
        """Create the table and its indexes unless it exists; True if this call created it."""
        attributes = ["pk", "sk"] + [name for pair in INDEXES.values() for name in pair]
        try:
            await self._call(
                "CreateTable",
                {"ResourceInUseException"},
                TableName=self.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
                KeySchema=_key_schema("pk", "sk"),
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": index,
                        "KeySchema": _key_schema(hash_key, range_key),
                        "Projection": {"ProjectionType": "ALL"},
                    }
                    for index, (hash_key, range_key) in INDEXES.items()
                ],
            )
            created = True
        except ClientError:  # ResourceInUseException: the table exists already
            created = False
        if wait:
            await self._wait_active()
        return created

    async def ping(self) -> None:
        """Raise BackendUnavailable unless the endpoint answers and the table exists."""
        await self._call("DescribeTable", TableName=self.table)

    async def is_empty(self) -> bool:
        """True when the table holds no item at all (one consistent Scan of one key)."""
        response = await self._call(
            "Scan", TableName=self.table, Limit=1, ConsistentRead=True, ProjectionExpression="pk"
        )
        return not response.get("Items") and "LastEvaluatedKey" not in response

    async def get(self, pk: str, sk: str) -> Item | None:
        """One item by its full key (strongly consistent), or None."""
        response = await self._call(
            "GetItem",
            TableName=self.table,
            Key=_encode_item({"pk": pk, "sk": sk}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _decode_item(item) if item is not None else None

    async def query(
        self,
        pk: str,
        prefix: str = "",
        *,
        consistent: bool = False,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[Item]:
        """Items of one partition whose sk starts with `prefix`, in sk order, all pages."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": consistent,
            "ScanIndexForward": not reverse,
        }
        if prefix:
            params["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            params["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        items: list[Item] = []
        while limit is None or len(items) < limit:
            page_size = _page_size(self._page_limit, None if limit is None else limit - len(items))
            if page_size is not None:
                params["Limit"] = page_size
            response = await self._call("Query", **params)
            items.extend(_decode_item(item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items if limit is None else items[:limit]

    async def query_stored(self, pk: str, prefix: str = "", **options: Any) -> list[StoredRead]:
        """`query`; DynamoDB keeps no serialised form, so none is given."""
        return [(item, None) for item in await self.query(pk, prefix, **options)]

    async def query_index(self, index: str, key: str, *, limit: int, cursor: str | None = None) -> Page:
        """One page of a sparse index partition, in index sort-key order; no cursor on the last."""
        if index not in INDEXES:
            raise ValueError(f"unknown index {index!r}: expected one of {', '.join(INDEXES)}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        hash_key, range_key = INDEXES[index]
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": hash_key},
            "ExpressionAttributeValues": {":k": {"S": key}},
            # One extra item tells whether another page exists, so the last page has no cursor.
            "Limit": limit + 1,
        }
        if cursor is not None:
            params["ExclusiveStartKey"] = _decode_cursor(cursor, hash_key, key)
        response = await self._call("Query", **params)
        raw = response["Items"][:limit]
        cursors = [_encode_cursor({k: item[k] for k in ("pk", "sk", hash_key, range_key)}) for item in raw]
        more = len(response["Items"]) > limit or "LastEvaluatedKey" in response
        return Page([_decode_item(item) for item in raw], cursors[-1] if more and cursors else None, cursors)

    async def transact(self, operations: Sequence[Operation]) -> None:
        """Apply every operation in one TransactWriteItems; ConditionFailed if a condition fails."""
        if not operations:
            return
        check_transaction(operations)
        actions = [self._action(operation) for operation in operations]
        try:
            await self._call("TransactWriteItems", {"TransactionCanceledException"}, TransactItems=actions)
        except ClientError as exc:
            raise _cancellation_error(exc, operations) from exc

    def _action(self, operation: Operation) -> dict[str, Any]:
        """The TransactWriteItems action for one operation."""
        if isinstance(operation, Put):
            body: dict[str, Any] = {"TableName": self.table, "Item": _encode_item(operation.item)}
            return {"Put": _with_condition(body, operation.condition)}
        pk, sk = operation.key
        body = {"TableName": self.table, "Key": _encode_item({"pk": pk, "sk": sk})}
        return {"Delete": _with_condition(body, operation.condition)}

    async def _wait_active(self) -> None:
        """Poll DescribeTable until the table and every index are ACTIVE."""
        deadline = time.monotonic() + CREATE_TIMEOUT
        while True:
            table = (await self._call("DescribeTable", TableName=self.table))["Table"]
            indexes = {gsi["IndexName"]: gsi["IndexStatus"] for gsi in table.get("GlobalSecondaryIndexes", [])}
            missing = sorted(set(INDEXES) - set(indexes))
            if missing:
                raise StoreError(f"DynamoDB table {self.table!r} exists without index(es) {', '.join(missing)}")
            if table["TableStatus"] == "ACTIVE" and all(status == "ACTIVE" for status in indexes.values()):
                return
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"DynamoDB table {self.table!r} not ACTIVE after {CREATE_TIMEOUT:.0f}s")
            await asyncio.sleep(1)

    async def _call(self, operation: str, passthrough: set[str] | None = None, /, **params: Any) -> dict[str, Any]:
        """Send and count one request; map failures to store errors, except `passthrough` codes."""
        if self._client is None:
            raise RuntimeError("DynamoDBBackend is not open: await open() first")
        self.calls[operation] += 1
        try:
            response: dict[str, Any] = await getattr(self._client, xform_name(operation))(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if passthrough and code in passthrough:
                raise
            if code == "ResourceNotFoundException":
                raise BackendUnavailable(
                    f"DynamoDB table {self.table!r} does not exist at {self.endpoint}: run `concord store init`"
                ) from exc
            message = exc.response.get("Error", {}).get("Message", "")
            raise StoreError(f"DynamoDB {operation} failed: {code}: {message}") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise BackendUnavailable(
                f"cannot reach DynamoDB at {self.endpoint} ({type(exc).__name__}): is it running?"
            ) from exc
        except NoCredentialsError as exc:
            raise BackendUnavailable(
                "no AWS credentials for DynamoDB: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from exc
        return response


def _key_schema(hash_key: str, range_key: str) -> list[dict[str, str]]:
    return [
        {"AttributeName": hash_key, "KeyType": "HASH"},
        {"AttributeName": range_key, "KeyType": "RANGE"},
    ]


def _page_size(page_limit: int | None, remaining: int | None) -> int | None:
    """The Query Limit of the next page: the smaller of the page size and what is still wanted."""
    sizes = [size for size in (page_limit, remaining) if size is not None]
    return min(sizes) if sizes else None


def _with_condition(body: dict[str, Any], condition: Condition | None) -> dict[str, Any]:
    """Add the ConditionExpression (and its placeholders) for `condition` to an action body."""
    if condition is None:
        return body
    if condition.kind == "absent":
        body["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        body["ConditionExpression"] = "#cond = :cond"
        body.setdefault("ExpressionAttributeNames", {})["#cond"] = condition.attribute
        body.setdefault("ExpressionAttributeValues", {})[":cond"] = _encode(condition.value)
    return body


def _cancellation_error(exc: ClientError, operations: Sequence[Operation]) -> StoreError:
    """The error a cancelled transaction maps to, from its per-operation CancellationReasons."""
    reasons = [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]
    for index, code in enumerate(reasons):
        if code == "ConditionalCheckFailed":
            return ConditionFailed(index, operations[index].key)
    if "TransactionConflict" in reasons:
        return ConflictError("the transaction conflicted with a concurrent write; reload and retry")
    failed = [f"{index}: {code}" for index, code in enumerate(reasons) if code != "None"]
    message = exc.response.get("Error", {}).get("Message", "")
    return StoreError(f"DynamoDB transaction cancelled ({'; '.join(failed) or message})")


def _encode_cursor(key: dict[str, AttributeValue]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str, hash_key: str, key: str) -> dict[str, AttributeValue]:
    """The ExclusiveStartKey in a cursor; ValueError unless it belongs to this index partition."""
    try:
        start = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(start, dict) or start.get(hash_key) != {"S": key}:
        raise ValueError("invalid cursor: it belongs to another query")
    return start


def _encode_item(item: Item) -> dict[str, AttributeValue]:
    return {name: _encode(value) for name, value in item.items()}


def _decode_item(item: dict[str, AttributeValue]) -> Item:
    return {name: _decode(value) for name, value in item.items()}


def _encode(value: Any) -> AttributeValue:
    """One Python value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        if abs(value) >= SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the JSON-safe range ±(2**53 - 1)")
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB cannot store the number {value!r}")
        return {"N": str(Decimal(repr(value)))}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, (list, tuple)):
        return {"L": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): _encode(v) for k, v in value.items()}}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _decode(value: AttributeValue) -> Any:
    """One DynamoDB attribute value as a Python value (numbers: see the module docstring)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return data
    if kind == "N":
        number = Decimal(data)
        integral = number == number.to_integral_value() and abs(number) < SAFE_INTEGER
        return int(number) if integral else float(number)
    if kind == "B":
        return bytes(data)
    if kind == "BOOL":
        return bool(data)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_decode(v) for v in data]
    if kind == "M":
        return {k: _decode(v) for k, v in data.items()}
    raise ValueError(f"unsupported DynamoDB attribute type {kind}")
