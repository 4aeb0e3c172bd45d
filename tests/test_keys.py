"""Key hierarchy: HKDF and key-wrap vectors, the local key file, the DEK cache, the blind index."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from concord.store.crypto.keys import (
    DekCache,
    LocalKeyProvider,
    WrappedKey,
    blind_index,
    dek_aad,
    hkdf_sha256,
    kek_info,
    normalise_role,
    write_private_file,
)
from concord.store.crypto.signing import MAC_PURPOSE, ItemSigner, canonical_value, item_mac, mac_input
from concord.store.errors import KeyMaterialError

VECTORS = Path(__file__).resolve().parent / "vectors"
CONCORD = json.loads((VECTORS / "concord.json").read_text(encoding="utf-8"))
RFC5869 = json.loads((VECTORS / "rfc5869_hkdf.json").read_text(encoding="utf-8"))
INPUTS = CONCORD["inputs"]
TENANT, EPOCH, DIALOGUE, VERSION = INPUTS["tenant"], INPUTS["epoch"], INPUTS["dialogue_id"], INPUTS["dek_version"]
DEK = bytes.fromhex(INPUTS["dek"])


def rfc5869(ikm: bytes, salt: bytes, info: bytes, length: int) -> tuple[bytes, bytes]:
    """(PRK, OKM) by the RFC's own definition, on stdlib hmac: an implementation independent of the store."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    return prk, okm[:length]


@pytest.fixture
def vector_keys(tmp_path: Path) -> LocalKeyProvider:
    """A local provider over the vector UMK."""
    path = tmp_path / "umk.key"
    write_private_file(path, INPUTS["umk"].encode() + b"\n")
    return LocalKeyProvider(path)


@pytest.mark.parametrize("case", RFC5869["cases"], ids=lambda c: f"rfc5869-{c['name']}")
def test_rfc5869_hkdf_sha256(case: dict[str, Any]) -> None:
    ikm, salt, info = (bytes.fromhex(case[k]) for k in ("ikm", "salt", "info"))
    prk, okm = rfc5869(ikm, salt, info, case["length"])
    assert (prk.hex(), okm.hex()) == (case["prk"], case["okm"])
    library = HKDF(algorithm=hashes.SHA256(), length=case["length"], salt=salt or None, info=info).derive(ikm)
    assert library.hex() == case["okm"]
    if not salt:  # the store's own helper always uses an empty salt (A.3)
        assert hkdf_sha256(ikm, info, case["length"]).hex() == case["okm"]


def test_kek_vector(vector_keys: LocalKeyProvider) -> None:
    assert kek_info(TENANT, EPOCH).decode() == CONCORD["kek"]["hkdf_info"] == f"concord:kek:{TENANT}:{EPOCH}"
    kek = vector_keys.kek(TENANT, EPOCH)
    assert kek.hex() == CONCORD["kek"]["kek"]
    assert rfc5869(bytes.fromhex(INPUTS["umk"]), b"", kek_info(TENANT, EPOCH), 32)[1] == kek
    assert vector_keys.kek(TENANT, EPOCH + 1) != kek and vector_keys.kek("other", EPOCH) != kek


async def test_wrapped_dek_vector(vector_keys: LocalKeyProvider) -> None:
    vector = CONCORD["dek_wrap"]
    assert dek_aad(DIALOGUE, VERSION).decode() == vector["aad"]
    wrapped = vector_keys.wrap(DEK, TENANT, EPOCH, DIALOGUE, VERSION, nonce=bytes.fromhex(vector["nonce"]))
    assert wrapped == WrappedKey(
        bytes.fromhex(vector["wrapped"]), bytes.fromhex(vector["nonce"]), vector["wrapping_key"]
    )
    assert await vector_keys.unwrap(TENANT, EPOCH, DIALOGUE, VERSION, wrapped) == DEK


async def test_blind_index_vector(vector_keys: LocalKeyProvider) -> None:
    vector = CONCORD["blind_index"]
    secret = await vector_keys.tenant_secret(TENANT, EPOCH, vector["purpose"])
    assert secret.hex() == vector["tenant_secret"]
    assert normalise_role(vector["role"]) == vector["normalised"]
    assert blind_index(secret, vector["role"]) == vector["blind"]
    assert len(vector["blind"]) == 16 and int(vector["blind"], 16) >= 0
    for variant in vector["variants"]:
        assert blind_index(secret, variant) == vector["blind"]
    assert blind_index(secret, "Platform Engineer") != vector["blind"]
    assert await vector_keys.tenant_secret(TENANT, EPOCH, "other-purpose") != secret


async def test_wrapped_dek_is_bound_to_dialogue_version_tenant_and_umk(
    vector_keys: LocalKeyProvider, key_file: Path
) -> None:
    wrapped = WrappedKey(
        bytes.fromhex(CONCORD["dek_wrap"]["wrapped"]), bytes.fromhex(CONCORD["dek_wrap"]["nonce"]), "kek"
    )
    for tenant, epoch, dialogue, version in (
        (TENANT, EPOCH, "other", VERSION),
        (TENANT, EPOCH, DIALOGUE, 2),
        ("other", EPOCH, DIALOGUE, VERSION),
        (TENANT, 1, DIALOGUE, VERSION),
    ):
        with pytest.raises(KeyMaterialError, match=f"dialogue {dialogue} \\(v{version}\\)"):
            await vector_keys.unwrap(tenant, epoch, dialogue, version, wrapped)
    with pytest.raises(KeyMaterialError, match=str(key_file)):
        await LocalKeyProvider(key_file).unwrap(TENANT, EPOCH, DIALOGUE, VERSION, wrapped)


async def test_new_deks_are_random_and_unwrap(key_file: Path) -> None:
    keys = LocalKeyProvider(key_file)
    first, wrapped = await keys.new_dek("local", 1, "d1", 1)
    second, _ = await keys.new_dek("local", 1, "d1", 1)
    assert len(first) == 32 and first != second
    assert await keys.unwrap("local", 1, "d1", 1, wrapped) == first
    assert wrapped.wrapping_key == "kek#local#1" and len(wrapped.nonce) == 12


def test_create_key_file_is_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "home" / "umk.key"
    LocalKeyProvider.create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    assert len(bytes.fromhex(before.decode().strip())) == 32
    with pytest.raises(KeyMaterialError, match="already exists; refusing to overwrite"):
        LocalKeyProvider.create_key_file(path)
    assert path.read_bytes() == before
    other = tmp_path / "other.key"
    LocalKeyProvider.create_key_file(other)
    assert other.read_bytes() != before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_readable_key_file_is_refused(key_file: Path, mode: int) -> None:
    os.chmod(key_file, mode)
    with pytest.raises(KeyMaterialError) as caught:
        LocalKeyProvider(key_file).umk()
    message = str(caught.value)
    assert str(key_file) in message and f"{mode:04o}" in message and f"chmod 600 {key_file}" in message


def test_missing_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "gone.key"
    with pytest.raises(KeyMaterialError, match=f"key file {path} is missing"):
        LocalKeyProvider(path).umk()
    assert not path.exists()


@pytest.mark.parametrize(
    ("content", "problem"), [(b"not hex\n", "not a hex-encoded key"), (b"00ff\n", "holds 2 bytes")]
)
def test_malformed_key_file_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.key"
    write_private_file(path, content)
    with pytest.raises(KeyMaterialError, match=problem):
        LocalKeyProvider(path).umk()


def test_dek_cache_is_bounded_lru() -> None:
    cache = DekCache(capacity=3)
    for n in range(3):
        cache.put(f"d{n}", 1, bytes([n]) * 32)
    assert cache.get("d0", 1) is not None  # d0 becomes most recent; d1 is now the oldest
    cache.put("d3", 1, b"\x03" * 32)
    assert len(cache) == 3
    assert cache.get("d1", 1) is None
    assert all(cache.get(d, 1) is not None for d in ("d0", "d2", "d3"))
    cache.put("d0", 2, b"\x04" * 32)
    cache.forget("d0")
    assert cache.get("d0", 1) is None and cache.get("d0", 2) is None


def test_normalise_role() -> None:
    assert normalise_role("  Platform\n ENGINEER\t") == "platform engineer"
    assert normalise_role("Straße") == normalise_role("STRASSE")


async def test_item_mac_vector(vector_keys: LocalKeyProvider) -> None:
    vector = CONCORD["item_mac"]
    key = await vector_keys.tenant_secret(TENANT, EPOCH, MAC_PURPOSE)
    assert key.hex() == vector["mac_key"]
    item = {k: bytes.fromhex(v) if k in vector["binary"] else v for k, v in vector["item"].items()}
    assert mac_input(item).hex() == vector["input"]
    assert item_mac(key, item) == vector["mac"]
    assert item_mac(key, {**item, "status": "refined"}) != vector["mac"]


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200])
def test_item_signer_is_rfc2104_hmac_sha256(key_length: int) -> None:
    key = bytes(range(key_length % 256)) * (key_length // 256) + bytes(range(key_length % 256))
    item = {"pk": "dialogue#d", "sk": "tension#00#01", "status": "open", "content_nonce": b"\x00" * 12}
    expected = hmac.new(key, mac_input(item), hashlib.sha256).hexdigest()
    assert ItemSigner(key).mac(item) == expected


def test_mac_input_keeps_bytes_apart_from_text() -> None:
    blob = {"pk": "p", "sk": "s", "content_nonce": b"abc"}
    assert mac_input(blob) != mac_input({**blob, "content_nonce": b"abd"})
    assert mac_input({**blob, "mac": "ignored"}) == mac_input(blob)
    forgeries = (
        {**blob, "content_nonce": "abc"},
        {**blob, "content_encrypted": None},
        {**blob, "other": b"bytes outside the binary attributes"},
    )
    for forged in forgeries:
        with pytest.raises(TypeError):
            mac_input(forged)
        assert not ItemSigner(b"k").holds({**forged, "mac": ItemSigner(b"k").mac(blob)})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, -(2**60)])
def test_values_no_backend_reads_back_alike_are_refused_before_signing(value: float) -> None:
    with pytest.raises(ValueError, match="cannot store"):
        canonical_value({"scores": [1, value]})


def test_canonical_values_read_back_alike_from_every_backend() -> None:
    assert canonical_value({"a": (1, 2.0, 2.5, -0.0), 3: bytearray(b"x")}) == {"a": [1, 2, 2.5, 0], "3": b"x"}
    assert type(canonical_value(2.0)) is int and type(canonical_value(1e20)) is float
