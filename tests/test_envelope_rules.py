"""Envelope rules beyond the round trip: the envelope-hash vector, canonical JSON, NaN refusal, malformed items."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from concord.store.crypto.envelope import address_digest, canonical_json, envelope_hash, open_item, seal
from concord.store.errors import IntegrityError
from concord.store.ids import partition_key

VECTORS = json.loads((Path(__file__).resolve().parent / "vectors" / "concord.json").read_text(encoding="utf-8"))
ENVELOPE = VECTORS["envelope"]
DEK = bytes.fromhex(VECTORS["inputs"]["dek"])
PK, SK = partition_key("d1"), "claim#01#01"


def committed_item() -> dict[str, Any]:
    """The committed envelope vector as a stored item (keys and envelope attributes only)."""
    return {
        "pk": ENVELOPE["pk"],
        "sk": ENVELOPE["sk"],
        "content_encrypted": bytes.fromhex(ENVELOPE["content_encrypted"]),
        "content_nonce": bytes.fromhex(ENVELOPE["nonce"]),
        "key_id": ENVELOPE["key_id"],
        "aad_hash": ENVELOPE["aad_hash"],
        "encryption_version": ENVELOPE["encryption_version"],
    }


def sealed_item(fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A freshly sealed item at (PK, SK)."""
    return {"pk": PK, "sk": SK, **seal(DEK, "dek#d1#1", PK, SK, fields or {"label": "x"}).attributes()}


# --- envelope_hash ---------------------------------------------------------------------


def test_envelope_hash_matches_the_committed_vector() -> None:
    assert envelope_hash(committed_item()) == ENVELOPE["envelope_hash"]


def test_envelope_hash_vector_is_sha256_of_key_id_nonce_and_ciphertext() -> None:
    nonce, ciphertext = bytes.fromhex(ENVELOPE["nonce"]), bytes.fromhex(ENVELOPE["content_encrypted"])
    expected = hashlib.sha256(ENVELOPE["key_id"].encode() + b"\x00" + nonce + b"\x00" + ciphertext).hexdigest()
    assert ENVELOPE["envelope_hash"] == expected


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("key_id", "dek#nvidia-analysis#2"),
        ("content_nonce", bytes(12)),
        ("content_encrypted", b"\x00" + bytes.fromhex(ENVELOPE["content_encrypted"])[1:]),
    ],
)
def test_envelope_hash_covers_each_envelope_attribute(attribute: str, value: object) -> None:
    assert envelope_hash({**committed_item(), attribute: value}) != ENVELOPE["envelope_hash"]


def test_envelope_hash_ignores_cleartext_attributes() -> None:
    item = {**committed_item(), "status": "resolved", "updated_at": "2027-01-01T00:00:00.000Z"}
    assert envelope_hash(item) == ENVELOPE["envelope_hash"]


def test_envelope_hash_separates_nonce_from_ciphertext() -> None:
    item = committed_item()
    shifted = {
        **item,
        "content_nonce": item["content_nonce"] + item["content_encrypted"][:1],
        "content_encrypted": item["content_encrypted"][1:],
    }
    assert envelope_hash(shifted) != envelope_hash(item)


@pytest.mark.parametrize("missing", ["key_id", "content_nonce", "content_encrypted"])
def test_envelope_hash_of_an_item_missing_an_attribute_is_an_integrity_error(missing: str) -> None:
    item = {k: v for k, v in committed_item().items() if k != missing}
    with pytest.raises(IntegrityError, match=f"item perspective#01#02: envelope has no {missing}"):
        envelope_hash(item)


# --- canonical JSON and seal -----------------------------------------------------------


def test_canonical_json_sorts_keys_compacts_and_keeps_utf8() -> None:
    assert canonical_json({"b": [1, 2], "a": {"z": "é", "y": None}}) == '{"a":{"y":null,"z":"é"},"b":[1,2]}'.encode()


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_nan_and_infinities_are_refused_before_anything_is_sealed(number: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"relevance": number})
    with pytest.raises(ValueError, match="not JSON compliant"):
        seal(DEK, "dek#d1#1", PK, SK, {"scores": [1.0, number]})


def test_seal_records_key_id_address_hash_and_version() -> None:
    envelope = seal(DEK, "dek#d1#7", PK, SK, {"label": "x"}, nonce=bytes(12))
    assert envelope.attributes() == {
        "content_encrypted": envelope.content_encrypted,
        "content_nonce": bytes(12),
        "key_id": "dek#d1#7",
        "aad_hash": address_digest(PK, SK).hex(),
        "encryption_version": 1,
    }


# --- open_item -------------------------------------------------------------------------


def test_open_item_accepts_a_prepared_cipher() -> None:
    assert open_item(AESGCM(DEK), sealed_item({"label": "y"})) == {"label": "y"}


def test_plaintext_written_with_nan_before_the_refusal_still_opens() -> None:
    nonce = bytes(range(12))
    legacy = AESGCM(DEK).encrypt(nonce, b'{"relevance":NaN}', address_digest(PK, SK))
    item = {"pk": PK, "sk": SK, "content_encrypted": legacy, "content_nonce": nonce, "encryption_version": 1}
    assert math.isnan(open_item(DEK, item)["relevance"])


@pytest.mark.parametrize(
    "broken",
    [
        {"pk": None},
        {"sk": None},
        {"pk": 7},
        {"content_nonce": None},
        {"content_encrypted": "not bytes"},
    ],
    ids=["pk-none", "sk-none", "pk-int", "nonce-none", "ciphertext-str"],
)
def test_malformed_envelope_attribute_is_an_integrity_error(broken: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError, match="does not open under dek#d1#1"):
        open_item(DEK, {**sealed_item(), **broken})


@pytest.mark.parametrize("missing", ["pk", "sk", "content_nonce", "content_encrypted"])
def test_envelope_missing_an_attribute_is_an_integrity_error_not_a_key_error(missing: str) -> None:
    item = {k: v for k, v in sealed_item().items() if k != missing}
    with pytest.raises(IntegrityError) as caught:
        open_item(DEK, item)
    assert str(caught.value).endswith(
        "envelope does not open under dek#d1#1 (tampered, moved from another item, or the wrong key)"
    )


def test_integrity_error_names_the_item_even_without_its_keys() -> None:
    item = {k: v for k, v in sealed_item().items() if k not in ("pk", "sk")}
    with pytest.raises(IntegrityError, match=r"^dialogue \?, item \?: envelope does not open under dek#d1#1 "):
        open_item(DEK, item)
    with pytest.raises(IntegrityError, match=r"^dialogue d1, item \?: "):
        open_item(DEK, {k: v for k, v in sealed_item().items() if k != "sk"})
