"""Envelopes: committed vectors, AAD binding, tamper detection, nonce freshness (datamodel §7 13-15, 18, 19)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from concord.store.codec import decode_entity
from concord.store.crypto.envelope import (
    ENCRYPTION_VERSION,
    NONCE_BYTES,
    address_digest,
    canonical_json,
    envelope_hash,
    open_item,
    seal,
)
from concord.store.errors import IntegrityError
from concord.store.ids import canonical_address, entity_sk, partition_key

VECTORS = Path(__file__).resolve().parent / "vectors"


def load(name: str) -> dict[str, Any]:
    """A committed vector file."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


CONCORD = load("concord.json")
NIST = load("nist_aes_gcm.json")
DEK = bytes.fromhex(CONCORD["inputs"]["dek"])


def vector_item() -> dict[str, Any]:
    """The committed envelope vector as a stored item."""
    env = CONCORD["envelope"]
    return {
        "pk": env["pk"],
        "sk": env["sk"],
        **env["clear"],
        "content_encrypted": bytes.fromhex(env["content_encrypted"]),
        "content_nonce": bytes.fromhex(env["nonce"]),
        "key_id": env["key_id"],
        "aad_hash": env["aad_hash"],
        "encryption_version": env["encryption_version"],
    }


def sealed(sk: str = "perspective#01#01", dialogue: str = "nvidia-analysis", key: bytes = DEK) -> dict[str, Any]:
    """A freshly sealed item at (dialogue, sk)."""
    pk = partition_key(dialogue)
    fields = {"label": "secret label", "content": "secret content", "contributors": ["muffin"]}
    return {"pk": pk, "sk": sk, **seal(key, f"dek#{dialogue}#1", pk, sk, fields).attributes()}


def flip(data: bytes, bit: int) -> bytes:
    """`data` with one bit inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("case", NIST["cases"], ids=lambda c: f"gcm-tc{c['name']}")
def test_nist_aes_gcm_vectors(case: dict[str, str]) -> None:
    key, iv, aad = (bytes.fromhex(case[k]) for k in ("key", "iv", "aad"))
    plaintext = bytes.fromhex(case["plaintext"])
    expected = bytes.fromhex(case["ciphertext"] + case["tag"])
    assert AESGCM(key).encrypt(iv, plaintext, aad or None) == expected
    assert AESGCM(key).decrypt(iv, expected, aad or None) == plaintext


def test_canonical_address_of_p0102_is_exact() -> None:
    pk, sk = partition_key("nvidia-analysis"), entity_sk("P0102")
    assert sk == "perspective#01#02"
    assert canonical_address(pk, sk) == "dialogue:nvidia-analysis/entity:perspective/01#02"
    assert canonical_address(pk, "meta") == "dialogue:nvidia-analysis/entity:meta/"
    assert address_digest(pk, sk) == hashlib.sha256(b"dialogue:nvidia-analysis/entity:perspective/01#02").digest()


def test_envelope_vector_reproduces_byte_for_byte() -> None:
    env = CONCORD["envelope"]
    assert canonical_address(env["pk"], env["sk"]) == env["canonical_address"]
    assert canonical_json(env["fields"]).decode() == env["plaintext"]
    assert hashlib.sha256(env["canonical_address"].encode()).hexdigest() == env["aad_hash"]
    envelope = seal(DEK, env["key_id"], env["pk"], env["sk"], env["fields"], nonce=bytes.fromhex(env["nonce"]))
    assert envelope.content_encrypted.hex() == env["content_encrypted"]
    assert envelope.aad_hash == env["aad_hash"]
    assert envelope.encryption_version == ENCRYPTION_VERSION == env["encryption_version"]
    # Independently of seal(): plain AES-256-GCM over the canonical JSON with the address digest as AAD.
    raw = AESGCM(DEK).encrypt(bytes.fromhex(env["nonce"]), env["plaintext"].encode(), bytes.fromhex(env["aad_hash"]))
    assert raw.hex() == env["content_encrypted"]


def test_committed_envelope_still_opens_and_decodes() -> None:
    item = vector_item()
    fields = open_item(DEK, item)
    assert fields == CONCORD["envelope"]["fields"]
    entity = decode_entity(item, fields)
    assert (entity.id, entity.kind, entity.status) == ("P0102", "perspective", "open")
    assert entity.content.endswith("🎉 survive canonical JSON.")


def test_meta_address_vector() -> None:
    meta = CONCORD["meta_address"]
    assert canonical_address(meta["pk"], meta["sk"]) == meta["canonical_address"]


def test_round_trip_preserves_every_json_type() -> None:
    fields = {
        "text": "Ünïcode ✓ 漢字",
        "n": 3,
        "x": 0.25,
        "flag": False,
        "none": None,
        "list": [1, "a", {"k": []}],
        "map": {"z": 1, "a": 2},
    }
    pk, sk = partition_key("d1"), "verdict#final"
    item = {"pk": pk, "sk": sk, **seal(DEK, "dek#d1#1", pk, sk, fields).attributes()}
    assert open_item(DEK, item) == fields


@pytest.mark.parametrize(
    ("sk", "dialogue"),
    [
        ("perspective#01#02", "nvidia-analysis"),
        ("perspective#01#01", "other-dialogue"),
        ("tension#01#01", "nvidia-analysis"),
    ],
    ids=["other-sk", "other-dialogue", "other-kind"],
)
def test_envelope_moved_to_another_address_fails(sk: str, dialogue: str) -> None:
    moved = {**sealed(), "pk": partition_key(dialogue), "sk": sk}
    with pytest.raises(IntegrityError) as caught:
        open_item(DEK, moved)
    assert f"dialogue {dialogue}, item {sk}" in str(caught.value)
    assert "InvalidTag" not in str(caught.value)


def test_every_bit_flip_of_ciphertext_or_nonce_fails() -> None:
    item = sealed()
    for attribute in ("content_encrypted", "content_nonce"):
        for bit in range(len(item[attribute]) * 8):
            with pytest.raises(IntegrityError, match="perspective#01#01"):
                open_item(DEK, {**item, attribute: flip(item[attribute], bit)})


def test_truncated_or_wrong_length_envelope_fails_cleanly() -> None:
    item = sealed()
    for broken in (
        {"content_encrypted": item["content_encrypted"][:-1]},
        {"content_nonce": item["content_nonce"][:8]},
        {"content_encrypted": b""},
    ):
        with pytest.raises(IntegrityError):
            open_item(DEK, {**item, **broken})


def test_unknown_encryption_version_is_refused() -> None:
    with pytest.raises(IntegrityError, match="encryption_version"):
        open_item(DEK, {**sealed(), "encryption_version": 2})


def test_another_dialogues_dek_fails() -> None:
    other_dek = AESGCM.generate_key(256)
    with pytest.raises(IntegrityError, match="dialogue nvidia-analysis, item perspective#01#01") as caught:
        open_item(other_dek, sealed())
    assert isinstance(caught.value.__cause__, InvalidTag)


def test_ten_thousand_encryptions_never_repeat_a_nonce() -> None:
    pk, sk, fields = partition_key("d1"), "claim#01#01", {"label": "same payload"}
    envelopes = [seal(DEK, "dek#d1#1", pk, sk, fields) for _ in range(10_000)]
    nonces = {e.content_nonce for e in envelopes}
    assert len(nonces) == 10_000
    assert all(len(n) == NONCE_BYTES for n in nonces)
    assert len({e.content_encrypted for e in envelopes}) == 10_000


def test_reencrypting_the_same_payload_gives_new_ciphertext() -> None:
    first, second = sealed(), sealed()
    assert first["content_encrypted"] != second["content_encrypted"]
    assert first["content_nonce"] != second["content_nonce"]
    assert first["aad_hash"] == second["aad_hash"]
    assert envelope_hash(first) != envelope_hash(second)
    assert open_item(DEK, first) == open_item(DEK, second)
