"""Signed checkpoints: an Ed25519 signature over every dialogue's audit-chain head of one tenant.

A checkpoint kept outside the store proves later that no chain was rolled back or truncated and no
dialogue deleted: each chain must still contain the recorded entry, with the recorded hash. The
signing key is separate from every data key and lives in its own 0600 file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from concord.store.crypto.envelope import canonical_json
from concord.store.crypto.keys import check_private_file, write_private_file
from concord.store.errors import IntegrityError, KeyMaterialError

FORMAT = "concord-checkpoint/1"


def create_signing_key(path: Path) -> None:
    """Write a new Ed25519 private key (hex, 0600); refuses to overwrite."""
    if path.exists():
        raise KeyMaterialError(f"checkpoint key {path} already exists; refusing to overwrite it")
    write_private_file(path, Ed25519PrivateKey.generate().private_bytes_raw().hex().encode() + b"\n")


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key, checked for presence, permissions and form."""
    if not path.exists():
        raise KeyMaterialError(f"checkpoint key {path} is missing; create one with `concord audit checkpoint`")
    check_private_file(path)
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    except ValueError as exc:
        raise KeyMaterialError(f"checkpoint key {path} is not a hex-encoded Ed25519 key") from exc


def public_hex(key: Ed25519PrivateKey) -> str:
    """The raw public key, hex."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign_checkpoint(key: Ed25519PrivateKey, tenant: str, heads: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """A checkpoint document over the given chain heads, signed."""
    body = {
        "format": FORMAT,
        "tenant": tenant,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "heads": {dialogue: {"seq": seq, "hash": head} for dialogue, (seq, head) in sorted(heads.items())},
        "public_key": public_hex(key),
    }
    return {**body, "signature": key.sign(canonical_json(body)).hex()}


def verify_checkpoint(document: dict[str, Any], key: Ed25519PrivateKey, tenant: str) -> dict[str, tuple[int, str]]:
    """The chain heads of a checkpoint signed by `key` for `tenant`; IntegrityError otherwise."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise IntegrityError(f"not a Concord checkpoint (expected format {FORMAT})")
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex(key))).verify(
            bytes.fromhex(str(document.get("signature", ""))), canonical_json(body)
        )
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError(
            "the checkpoint's signature does not verify with this installation's checkpoint key"
        ) from exc
    if document.get("tenant") != tenant:
        raise IntegrityError(f"the checkpoint is for tenant {document.get('tenant')!r}, not {tenant!r}")
    return {dialogue: (int(head["seq"]), str(head["hash"])) for dialogue, head in document["heads"].items()}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file's JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read checkpoint {path}: {exc}") from exc
