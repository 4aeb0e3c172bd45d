"""The local key file: made only by `keys init` or the first write into an empty store; missing or wrong, named."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from concord.store.backends.dynamodb import DynamoDBBackend
from concord.store.config import Settings
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.errors import KeyMaterialError
from concord.store.factory import open_stores
from tests.services import ROOT, DynamoDBLocal, run_cli

POOL = ROOT / "orchestrator" / "demo-pool.json"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home after one simulated run, and the run's dialogue id (copy it before changing it)."""
    home = tmp_path_factory.mktemp("recorded") / "home"
    run = run_cli(home, "run", "--question", "Where is the key?", "--pool", str(POOL), "--out", str(home / "out"))
    assert run.returncode == 0, run.stderr
    return home, str(json.loads(run_cli(home, "list", "--json").stdout)["dialogues"][0]["id"])


def copy_of(recorded: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A copy of the recorded home to change."""
    home = tmp_path / "home"
    shutil.copytree(recorded[0], home)
    return home, recorded[1]


def test_reads_and_store_init_on_a_fresh_home_create_no_key_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = home / "umk.key"
    missing = run_cli(home, "show", "nope")
    assert missing.returncode == 1 and "dialogue nope not found" in missing.stderr
    assert run_cli(home, "list").returncode == 0
    initialised = run_cli(home, "store", "init")
    assert initialised.returncode == 0, initialised.stderr
    assert f"no key file yet: the first write creates {key}" in initialised.stdout
    assert not key.exists()
    made = run_cli(home, "keys", "init")
    assert made.returncode == 0, made.stderr
    assert key.exists()


def test_the_first_write_into_an_empty_store_creates_the_key_file(recorded: tuple[Path, str]) -> None:
    assert (recorded[0] / "umk.key").is_file()


def test_a_missing_key_file_over_existing_data_is_refused_by_every_command(
    recorded: tuple[Path, str], tmp_path: Path
) -> None:
    home, dialogue_id = copy_of(recorded, tmp_path)
    key = home / "umk.key"
    key.unlink()
    for command in (
        ["store", "init"],
        ["show", dialogue_id],
        ["show", "nope"],
        ["list"],
        ["audit", "verify"],
        ["export", dialogue_id, str(tmp_path / "export")],
        ["note", dialogue_id, "hello"],
    ):
        refused = run_cli(home, *command, "--json")
        assert refused.returncode == 1, (command, refused.stdout, refused.stderr)
        error = json.loads(refused.stdout)["error"]
        assert error["code"] == "key_error", command
        assert f"key file {key} is missing" in error["message"], command
        assert not key.exists(), f"{command} created a key file over existing data"
    assert run_cli(home, "keys", "init").returncode == 0, "keys init still works: it is the one way back"


def test_a_wrong_key_file_is_reported_as_a_wrong_key_not_as_tampering(
    recorded: tuple[Path, str], tmp_path: Path
) -> None:
    home, dialogue_id = copy_of(recorded, tmp_path)
    key = home / "umk.key"
    key.unlink()
    LocalKeyProvider.create_key_file(key)
    for command in (
        ["show", dialogue_id],
        ["list"],
        ["audit", "verify"],
        ["audit", "verify", dialogue_id],
        ["keys", "sweep"],
        ["export", dialogue_id, str(tmp_path / "export")],
    ):
        refused = run_cli(home, *command, "--json")
        assert refused.returncode == 1, (command, refused.stdout, refused.stderr)
        error = json.loads(refused.stdout)["error"]
        assert error["code"] == "key_error", (command, error)
        assert str(key) in error["message"] and "wrong key" in error["message"], command
        assert "signature" not in error["message"], command


async def test_dynamodb_first_write_creates_the_key_and_a_missing_key_over_data_is_refused(
    tmp_path: Path, dynamodb_local: DynamoDBLocal
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        store="dynamodb",
        table=f"concord_keys_{uuid.uuid4().hex[:8]}",
        dynamodb_endpoint=dynamodb_local.endpoint,
    )
    table = DynamoDBBackend(settings.table, endpoint_url=dynamodb_local.endpoint)
    await table.open()
    try:
        await table.create_table()
    finally:
        await table.close()
    async with await open_stores(settings) as stores:
        assert not settings.key_file.exists(), "opening an empty table creates no key"
        await stores.dialogues.create_dialogue("Keys", "Who makes the key?")
    assert settings.key_file.is_file()
    settings.key_file.unlink()
    with pytest.raises(KeyMaterialError, match=f"key file {settings.key_file} is missing"):
        await open_stores(settings)
    assert not settings.key_file.exists()
