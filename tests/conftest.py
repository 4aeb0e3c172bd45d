"""Shared fixtures: the corpus, a fake clock, and stores parametrised over both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concord.store.analytics import AnalyticsStore
from concord.store.backends.base import Backend
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.config import Settings
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.factory import Stores
from tests.conftest_services import *  # noqa: F401,F403 - service fixtures

#: The GraphQL server and `api` fixtures, shared by the API test modules.
pytest_plugins = ["tests.graphql_helpers"]

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
BACKENDS = ["sqlite", "dynamodb"]


def corpus_path(*parts: str) -> Path:
    """A path inside ../shared/corpus; skips the test when the corpus is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"recorded corpus not found at {CORPUS} (it ships beside the project, not in it)")
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus file {path} is missing")
    return path


def corpus_dialogue(prefix: str) -> Path:
    """The corpus dialogue directory whose name contains `prefix`."""
    root = corpus_path()
    matches = sorted(p for p in root.iterdir() if p.is_dir() and prefix in p.name)
    if not matches:
        pytest.skip(f"no corpus dialogue matching {prefix!r}")
    return matches[0]


class FakeClock:
    """A clock that moves forward a fixed step on every reading."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(milliseconds=5)) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A deterministic clock for stores under test."""
    return FakeClock()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A fresh 0600 UMK file."""
    path = tmp_path / "keys" / "umk.key"
    LocalKeyProvider.create_key_file(path)
    return path


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Name of the backend a contract test runs on."""
    return request.param


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    """An opened SQLite backend in a fresh file."""
    sqlite = await SQLiteBackend(tmp_path / "concord.db").open()
    try:
        yield sqlite
    finally:
        await sqlite.close()


@pytest.fixture
def backend(backend_kind: str, request: pytest.FixtureRequest) -> Backend:
    """An opened, empty backend of the parametrised kind."""
    return request.getfixturevalue(f"{backend_kind}_backend")


@pytest.fixture
def stores(backend: Backend, key_file: Path, clock: FakeClock, tmp_path: Path) -> Stores:
    """Dialogue and analytics stores over the parametrised backend, tenant `local`."""
    keys = LocalKeyProvider(key_file)
    dialogues = DialogueStore(backend, keys, tenant="local", principal="tester", clock=clock)
    settings = Settings(home=tmp_path)
    return Stores(settings, backend, keys, dialogues, AnalyticsStore(backend, keys, dialogues))


@pytest.fixture
def store(stores: Stores) -> DialogueStore:
    """The DialogueStore of `stores`."""
    return stores.dialogues
