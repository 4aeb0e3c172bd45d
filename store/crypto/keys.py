"""Key hierarchy: UMK (file or KMS) -> tenant KEK -> per-dialogue DEKs, plus derived tenant secrets."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from concord.store.errors import KeyMaterialError
from concord.store.private_files import private_dir

UMK_BYTES = 32
DEK_BYTES = 32


@dataclass(frozen=True)
class WrappedKey:
    """A DEK as stored: ciphertext, nonce (empty for KMS) and the id of the key that wraps it."""

    ciphertext: bytes
    nonce: bytes
    wrapping_key: str


class KeyProvider(Protocol):
    """Creates and unwraps per-dialogue DEKs and derives tenant-level secrets."""

    name: str

    async def new_dek(self, tenant: str, epoch: int, dialogue_id: str, version: int) -> tuple[bytes, WrappedKey]:
        """A fresh random DEK and its wrapped form."""

    async def unwrap(self, tenant: str, epoch: int, dialogue_id: str, version: int, wrapped: WrappedKey) -> bytes:
        """The plaintext DEK of a wrapped one; KeyMaterialError if it does not unwrap."""

    async def tenant_secret(self, tenant: str, epoch: int, purpose: str) -> bytes:
        """A 32-byte secret derived from the tenant KEK for one purpose (blind index, MAC)."""


def hkdf_sha256(key: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 with an empty salt."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def kek_info(tenant: str, epoch: int) -> bytes:
    """HKDF info string of a tenant KEK."""
    return f"concord:kek:{tenant}:{epoch}".encode()


def dek_aad(dialogue_id: str, version: int) -> bytes:
    """AAD binding a wrapped DEK to its dialogue and version."""
    return f"concord:dek:{dialogue_id}:{version}".encode()


def check_private_file(path: Path) -> None:
    """Refuse a secret file that the group or others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )


def write_private_file(path: Path, data: bytes) -> None:
    """Create a 0600 file exclusively; never overwrites."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalKeyProvider:
    """UMK in a 0600 key file; KEKs by HKDF; DEKs wrapped with AES-GCM under the KEK."""

    name = "local"

    def __init__(self, key_file: Path, *, store_is_empty: Callable[[], Awaitable[bool]] | None = None) -> None:
        self.key_file = key_file
        self.store_is_empty = store_is_empty
        self._umk: bytes | None = None
        self._secrets: dict[tuple[str, int, str], bytes] = {}

    @staticmethod
    def create_key_file(key_file: Path) -> None:
        """Write a new random UMK; refuses to overwrite an existing key file."""
        if key_file.exists():
            raise KeyMaterialError(f"key file {key_file} already exists; refusing to overwrite it")
        write_private_file(key_file, os.urandom(UMK_BYTES).hex().encode() + b"\n")

    async def _first_write(self) -> None:
        """Create the key file for the first data key of a store that holds nothing yet (and only then)."""
        if self.store_is_empty is None or self.key_file.exists() or not await self.store_is_empty():
            return
        try:
            self.create_key_file(self.key_file)
        except KeyMaterialError:
            pass  # another process's first write made it a moment ago: use that one

    def umk(self) -> bytes:
        """The UMK from the key file, checked for presence, permissions and length."""
        if self._umk is None:
            if not self.key_file.exists():
                raise KeyMaterialError(
                    f"key file {self.key_file} is missing but encrypted data exists; "
                    "restore it (a new key cannot read existing data)"
                )
            check_private_file(self.key_file)
            try:
                umk = bytes.fromhex(self.key_file.read_text().strip())
            except ValueError as exc:
                raise KeyMaterialError(f"key file {self.key_file} is not a hex-encoded key") from exc
            if len(umk) != UMK_BYTES:
                raise KeyMaterialError(f"key file {self.key_file} holds {len(umk)} bytes, expected {UMK_BYTES}")
            self._umk = umk
        return self._umk

    def kek(self, tenant: str, epoch: int) -> bytes:
        """The tenant KEK for an epoch."""
        return hkdf_sha256(self.umk(), kek_info(tenant, epoch))

    async def new_dek(self, tenant: str, epoch: int, dialogue_id: str, version: int) -> tuple[bytes, WrappedKey]:
        await self._first_write()
        dek = os.urandom(DEK_BYTES)
        return dek, self.wrap(dek, tenant, epoch, dialogue_id, version)

    def wrap(
        self, dek: bytes, tenant: str, epoch: int, dialogue_id: str, version: int, nonce: bytes | None = None
    ) -> WrappedKey:
        """Wrap a DEK under the tenant KEK."""
        nonce = nonce if nonce is not None else os.urandom(12)
        ciphertext = AESGCM(self.kek(tenant, epoch)).encrypt(nonce, dek, dek_aad(dialogue_id, version))
        return WrappedKey(ciphertext, nonce, f"kek#{tenant}#{epoch}")

    async def unwrap(self, tenant: str, epoch: int, dialogue_id: str, version: int, wrapped: WrappedKey) -> bytes:
        try:
            return AESGCM(self.kek(tenant, epoch)).decrypt(
                wrapped.nonce, wrapped.ciphertext, dek_aad(dialogue_id, version)
            )
        except (InvalidTag, ValueError) as exc:
            raise KeyMaterialError(
                f"the data key of dialogue {dialogue_id} (v{version}) does not unwrap with the key in "
                f"{self.key_file}: wrong key file or tenant"
            ) from exc

    async def tenant_secret(self, tenant: str, epoch: int, purpose: str) -> bytes:
        key = (tenant, epoch, purpose)
        if key not in self._secrets:
            self._secrets[key] = hkdf_sha256(self.kek(tenant, epoch), f"concord:{purpose}".encode())
        return self._secrets[key]


class DekCache:
    """Unwrapped DEKs in memory, least recently used evicted past `capacity`."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, dialogue_id: str, version: int) -> bytes | None:
        """The cached DEK or None."""
        key = self._keys.get((dialogue_id, version))
        if key is not None:
            self._keys.move_to_end((dialogue_id, version))
        return key

    def put(self, dialogue_id: str, version: int, dek: bytes) -> None:
        """Remember a DEK, evicting the oldest past capacity."""
        self._keys[(dialogue_id, version)] = dek
        self._keys.move_to_end((dialogue_id, version))
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def forget(self, dialogue_id: str) -> None:
        """Drop every cached DEK of a dialogue."""
        for key in [k for k in self._keys if k[0] == dialogue_id]:
            del self._keys[key]

    def __len__(self) -> int:
        return len(self._keys)


def normalise_role(role: str) -> str:
    """Role text as compared by the blind index: case-folded, whitespace collapsed."""
    return " ".join(role.casefold().split())


def blind_index(secret: bytes, role: str) -> str:
    """16 hex digits of HMAC-SHA256 over the normalised role."""
    return hmac.new(secret, normalise_role(role).encode(), hashlib.sha256).hexdigest()[:16]


def wrapped_from_item(item: dict[str, Any]) -> WrappedKey:
    """The WrappedKey stored in a `dek#{v}` item."""
    return WrappedKey(bytes(item["content_encrypted"]), bytes(item.get("content_nonce", b"")), str(item["key_id"]))
