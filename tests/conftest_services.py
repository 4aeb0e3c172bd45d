"""Session fixtures that own the local service processes (import them from tests/conftest.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from concord.store.backends.dynamodb import DynamoDBBackend
from tests.services import AWS_TEST_ENV, DynamoDBLocal, MotoServer, dynamodb_local_missing

__all__ = ["aws_test_env", "dynamodb_local", "moto_server", "dynamodb_backend"]


@pytest.fixture(scope="session")
def aws_test_env() -> Iterator[dict[str, str]]:
    """The fixed test credentials and region in os.environ for the session; restored afterwards."""
    saved = {name: os.environ.get(name) for name in AWS_TEST_ENV}
    os.environ.update(AWS_TEST_ENV)
    yield AWS_TEST_ENV
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def dynamodb_local(aws_test_env: dict[str, str]) -> Iterator[DynamoDBLocal]:
    """An in-memory DynamoDB Local on a free port for the session; skips if not installed."""
    missing = dynamodb_local_missing()
    if missing is not None:
        pytest.skip(missing)
    with DynamoDBLocal() as service:
        yield service


@pytest.fixture(scope="session")
def moto_server(aws_test_env: dict[str, str]) -> Iterator[MotoServer]:
    """moto's server (KMS and friends) on a free port for the session."""
    with MotoServer() as service:
        yield service


@pytest.fixture
async def dynamodb_backend(dynamodb_local: DynamoDBLocal) -> AsyncIterator[DynamoDBBackend]:
    """An opened DynamoDBBackend on a fresh table of its own, created by create_table."""
    backend = DynamoDBBackend(f"concord_test_{uuid.uuid4().hex[:12]}", endpoint_url=dynamodb_local.endpoint)
    await backend.open()
    try:
        await backend.create_table()
        backend.calls.clear()
        yield backend
    finally:
        await backend.close()
