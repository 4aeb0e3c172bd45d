"""KMS key provider contract tests against moto's server (started and stopped by PID by the fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from concord.store.analytics import AnalyticsStore
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider, WrappedKey
from concord.store.crypto.kms import KmsKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import BackendUnavailable, KeyMaterialError
from concord.store.model import EntityDraft, RoundBatch
from tests.conftest import FakeClock
from tests.services import AWS_TEST_ENV, MotoServer, free_port
from tests.test_encrypted_store import DIALOGUE, SECRETS, build_dialogue, fresh_store


@dataclass(frozen=True)
class KmsKeys:
    """Key ids created in moto: two symmetric CMKs and one HMAC key."""

    endpoint: str
    cmk: str
    other_cmk: str
    mac: str


@pytest.fixture(scope="module")
def kms_keys(moto_server: MotoServer) -> KmsKeys:
    """Fresh KMS keys in the session's moto server."""
    client = boto3.client("kms", endpoint_url=moto_server.endpoint, region_name=AWS_TEST_ENV["AWS_REGION"])
    try:
        cmk, other = (client.create_key(Description=f"concord test {n}")["KeyMetadata"]["KeyId"] for n in (1, 2))
        mac = client.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    finally:
        client.close()
    return KmsKeys(moto_server.endpoint, cmk, other, mac)


@pytest.fixture
async def kms(kms_keys: KmsKeys) -> AsyncIterator[KmsKeyProvider]:
    """A KMS provider over the test CMK and HMAC key."""
    provider = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint, mac_key_id=kms_keys.mac)
    yield provider
    await provider.close()


@pytest.fixture
async def kms_store(kms: KmsKeyProvider, tmp_path: Path, clock: FakeClock) -> AsyncIterator[DialogueStore]:
    """A DialogueStore on SQLite with the KMS provider."""
    backend = await SQLiteBackend(tmp_path / "concord.db").open()
    yield DialogueStore(backend, kms, principal="tester", clock=clock)
    await backend.close()


def assert_clean(message: str) -> None:
    """A message meant for people: no botocore names, no traceback."""
    for noise in ("botocore", "Traceback", "ClientError", "An error occurred"):
        assert noise not in message


async def test_new_dek_and_unwrap_round_trip(kms: KmsKeyProvider, kms_keys: KmsKeys) -> None:
    dek, wrapped = await kms.new_dek("acme", 1, DIALOGUE, 1)
    assert len(dek) == 32
    assert wrapped.wrapping_key == f"kms#{kms_keys.cmk}" and wrapped.nonce == b""
    assert dek not in wrapped.ciphertext
    assert await kms.unwrap("acme", 1, DIALOGUE, 1, wrapped) == dek
    again = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint)
    try:
        assert await again.unwrap("acme", 1, DIALOGUE, 1, wrapped) == dek  # another process, same CMK
    finally:
        await again.close()
    second, _ = await kms.new_dek("acme", 1, DIALOGUE, 1)
    assert second != dek
    assert (kms.calls["GenerateDataKey"], kms.calls["Decrypt"]) == (2, 1)


@pytest.mark.parametrize(
    ("tenant", "dialogue", "version"),
    [("acme", "other-dialogue", 1), ("acme", DIALOGUE, 2), ("globex", DIALOGUE, 1)],
    ids=["other-dialogue", "other-version", "other-tenant"],
)
async def test_wrong_encryption_context_fails_cleanly(
    kms: KmsKeyProvider, tenant: str, dialogue: str, version: int
) -> None:
    _, wrapped = await kms.new_dek("acme", 1, DIALOGUE, 1)
    with pytest.raises(KeyMaterialError) as caught:
        await kms.unwrap(tenant, 1, dialogue, version, wrapped)
    message = str(caught.value)
    assert (
        f"data key of dialogue {dialogue} (v{version}) does not unwrap" in message and "encryption context" in message
    )
    assert_clean(message)
    assert caught.value.__cause__ is None


async def test_wrong_cmk_or_foreign_wrapping_fails_cleanly(
    kms: KmsKeyProvider, kms_keys: KmsKeys, key_file: Path
) -> None:
    _, wrapped = await kms.new_dek("acme", 1, DIALOGUE, 1)
    other = KmsKeyProvider(kms_keys.other_cmk, endpoint_url=kms_keys.endpoint)
    try:
        with pytest.raises(
            KeyMaterialError, match=f"dialogue {DIALOGUE} \\(v1\\) does not unwrap under KMS key {kms_keys.other_cmk}"
        ) as caught:
            await other.unwrap("acme", 1, DIALOGUE, 1, wrapped)
        assert_clean(str(caught.value))
    finally:
        await other.close()
    _, local = await LocalKeyProvider(key_file).new_dek("acme", 1, DIALOGUE, 1)
    with pytest.raises(KeyMaterialError, match="is wrapped by kek#acme#1, not by KMS"):
        await kms.unwrap("acme", 1, DIALOGUE, 1, local)
    with pytest.raises(KeyMaterialError, match=f"dialogue {DIALOGUE}"):
        await kms.unwrap("acme", 1, DIALOGUE, 1, WrappedKey(b"garbage", b"", wrapped.wrapping_key))


async def test_tenant_secret_is_stable_scoped_and_cached(kms: KmsKeyProvider, kms_keys: KmsKeys) -> None:
    secret = await kms.tenant_secret("acme", 1, "blind-index")
    assert len(secret) == 32
    assert await kms.tenant_secret("acme", 1, "blind-index") == secret
    assert kms.calls["GenerateMac"] == 1
    scoped = {
        await kms.tenant_secret(*args)
        for args in (("acme", 2, "blind-index"), ("globex", 1, "blind-index"), ("acme", 1, "other"))
    }
    assert secret not in scoped and len(scoped) == 3
    other_process = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint, mac_key_id=kms_keys.mac)
    try:
        assert await other_process.tenant_secret("acme", 1, "blind-index") == secret
    finally:
        await other_process.close()
    no_mac = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint)
    with pytest.raises(KeyMaterialError, match="CONCORD_KMS_MAC_KEY_ID"):
        await no_mac.tenant_secret("acme", 1, "blind-index")
    wrong_usage = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint, mac_key_id=kms_keys.cmk)
    try:
        with pytest.raises(
            KeyMaterialError, match="GenerateMac failed while deriving the blind-index secret of tenant acme"
        ) as caught:
            await wrong_usage.tenant_secret("acme", 1, "blind-index")
        assert_clean(str(caught.value))
    finally:
        await wrong_usage.close()


async def test_dialogue_store_round_trips_with_kms(
    kms_store: DialogueStore, kms: KmsKeyProvider, kms_keys: KmsKeys
) -> None:
    await build_dialogue(kms_store)
    dek_item = await kms_store.backend.get(f"dialogue#{DIALOGUE}", "dek#1")
    assert dek_item is not None and dek_item["key_id"] == f"kms#{kms_keys.cmk}"
    snap = await kms_store.load_partition(DIALOGUE)
    assert snap.dialogue.title == SECRETS["title"] and snap.entities["P0001"].label == SECRETS["perspective"]
    analytics = AnalyticsStore(kms_store.backend, kms, kms_store)
    assert [p.dialogue_id for p in await analytics.expert_participation(SECRETS["role"].upper())] == [DIALOGUE]
    assert (await kms_store.verify_audit(DIALOGUE)).ok
    assert await kms_store.rotate_key(DIALOGUE) == 2
    assert await kms_store.sweep_keys(DIALOGUE) > 10
    other_process = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint, mac_key_id=kms_keys.mac)
    try:
        reloaded = await fresh_store(kms_store, other_process).load_partition(DIALOGUE)
    finally:
        await other_process.close()
    assert reloaded == await kms_store.load_partition(DIALOGUE)
    assert kms.calls["GenerateDataKey"] == 2 and kms.calls["Decrypt"] == 0


async def test_dek_cache_avoids_repeated_decrypt(kms_store: DialogueStore, kms_keys: KmsKeys) -> None:
    await build_dialogue(kms_store)
    counted = KmsKeyProvider(kms_keys.cmk, endpoint_url=kms_keys.endpoint, mac_key_id=kms_keys.mac)
    try:
        reader = fresh_store(kms_store, counted)
        for _ in range(3):
            await reader.load_partition(DIALOGUE)
        await reader.get_entity(DIALOGUE, "T0001")
        await reader.get_dialogue(DIALOGUE)
        await reader.register_round(DIALOGUE, _round_two())
        await reader.load_partition(DIALOGUE)
        assert counted.calls == {
            "Decrypt": 1,
            "GenerateMac": 1,
        }  # one DEK unwrap, one item-MAC key; no blind-index secret
    finally:
        await counted.close()


async def test_kms_endpoint_down_is_a_clear_error(tmp_path: Path, clock: FakeClock, kms_keys: KmsKeys) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    down = KmsKeyProvider(kms_keys.cmk, endpoint_url=endpoint, mac_key_id=kms_keys.mac, max_attempts=1)
    backend = await SQLiteBackend(tmp_path / "down.db").open()
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await down.new_dek("acme", 1, DIALOGUE, 1)
        message = str(caught.value)
        assert f"cannot reach KMS at {endpoint} while creating data key v1 of dialogue {DIALOGUE}" in message
        assert_clean(message)
        with pytest.raises(
            BackendUnavailable,
            match=f"cannot reach KMS at {endpoint} while unwrapping data key v1 of dialogue {DIALOGUE}",
        ):
            await down.unwrap("acme", 1, DIALOGUE, 1, WrappedKey(b"x" * 64, b"", f"kms#{kms_keys.cmk}"))
        store = DialogueStore(backend, down, principal="tester", clock=clock)
        with pytest.raises(BackendUnavailable, match="cannot reach KMS"):
            await store.create_dialogue("Down", "Is KMS up?")
        assert await backend.query("dialogue#down", consistent=True) == []
    finally:
        await down.close()
        await backend.close()


def _round_two() -> RoundBatch:
    """A small third round (after build_dialogue's rounds 0 and 1)."""
    return RoundBatch(
        round=2,
        entities=[EntityDraft("claim", "MUFFIN-C0201", "late claim", "late content", ["muffin"])],
        answered=["muffin"],
    )
