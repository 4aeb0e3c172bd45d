"""AES-256-GCM envelopes bound to an item's canonical address."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from concord.store.errors import IntegrityError
from concord.store.ids import canonical_address

ENCRYPTION_VERSION = 1
NONCE_BYTES = 12


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8; NaN and infinities refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def address_digest(pk: str, sk: str) -> bytes:
    """SHA-256 of the item's canonical address: the AAD of its envelope."""
    return hashlib.sha256(canonical_address(pk, sk).encode()).digest()


@dataclass(frozen=True)
class Envelope:
    """The envelope attributes stored on an item."""

    content_encrypted: bytes
    content_nonce: bytes
    key_id: str
    aad_hash: str
    encryption_version: int = ENCRYPTION_VERSION

    def attributes(self) -> dict[str, Any]:
        """As item attributes."""
        return {
            "content_encrypted": self.content_encrypted,
            "content_nonce": self.content_nonce,
            "key_id": self.key_id,
            "aad_hash": self.aad_hash,
            "encryption_version": self.encryption_version,
        }


def seal(key: bytes, key_id: str, pk: str, sk: str, fields: dict[str, Any], nonce: bytes | None = None) -> Envelope:
    """Encrypt an item's secret fields under `key`, bound to its (pk, sk) address."""
    aad = address_digest(pk, sk)
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, canonical_json(fields), aad)
    return Envelope(ciphertext, nonce, key_id, aad.hex())


def open_item(key: bytes | AESGCM, item: dict[str, Any]) -> dict[str, Any]:
    """Decrypt an item's envelope, recomputing the AAD from the item's own keys."""
    version = item.get("encryption_version")
    if version != ENCRYPTION_VERSION:
        raise IntegrityError(f"{describe(item)}: unsupported encryption_version {version!r}")
    cipher = key if isinstance(key, AESGCM) else AESGCM(key)
    try:
        aad = address_digest(item["pk"], item["sk"])
        plaintext = cipher.decrypt(item["content_nonce"], item["content_encrypted"], aad)
    except (InvalidTag, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(
            f"{describe(item)}: envelope does not open under {item.get('key_id')} "
            "(tampered, moved from another item, or the wrong key)"
        ) from exc
    try:
        return orjson.loads(plaintext)
    except orjson.JSONDecodeError:  # NaN or infinities, which stdlib JSON wrote before they were refused
        return json.loads(plaintext)


def envelope_hash(item: dict[str, Any]) -> str:
    """SHA-256 over the stored envelope (key id, nonce, ciphertext) of an item; IntegrityError when one is missing."""
    try:
        key_id, nonce, ciphertext = item["key_id"], item["content_nonce"], item["content_encrypted"]
    except KeyError as exc:
        raise IntegrityError(f"{describe(item)}: envelope has no {exc.args[0]}") from exc
    digest = hashlib.sha256()
    digest.update(str(key_id).encode() + b"\x00")
    digest.update(bytes(nonce) + b"\x00")
    digest.update(bytes(ciphertext))
    return digest.hexdigest()


def describe(item: dict[str, Any]) -> str:
    """`dialogue X, entity Y` for error messages."""
    pk = str(item.get("pk", "?")).removeprefix("dialogue#")
    return f"dialogue {pk}, item {item.get('sk', '?')}"
