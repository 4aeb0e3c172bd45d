"""KMS key provider: DEKs from GenerateDataKey/Decrypt, tenant secrets from an HMAC KMS key.

The CMK never leaves KMS. Each DEK is wrapped by KMS under the encryption context
{tenant, dialogue_id, version}, so a wrapped key copied to another dialogue, version or tenant
does not decrypt. Tenant secrets (the blind-index key) cannot be derived from a symmetric CMK
without exposing it, and KMS Encrypt is not deterministic, so they come from a second KMS key of
spec HMAC_256 (usage GENERATE_VERIFY_MAC): secret = GenerateMac(HMAC_SHA_256,
`concord:{purpose}:{tenant}:{epoch}`). Same inputs, same secret, in every process; the MAC key
never leaves KMS either. Secrets are cached in memory; DEKs are cached by the DialogueStore.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from concord.store.crypto.keys import WrappedKey
from concord.store.errors import BackendUnavailable, KeyMaterialError

#: KMS error codes that mean the service is overloaded or failing, not that the key is wrong.
UNAVAILABLE_CODES = {"ThrottlingException", "KMSInternalException", "DependencyTimeoutException"}

#: KMS error codes that mean a wrapped key does not decrypt under this key and context.
MISMATCH_CODES = {"InvalidCiphertextException", "IncorrectKeyException", "AccessDeniedException"}


def encryption_context(tenant: str, dialogue_id: str, version: int) -> dict[str, str]:
    """The KMS encryption context that binds a wrapped DEK to its tenant, dialogue and version."""
    return {"tenant": tenant, "dialogue_id": dialogue_id, "version": str(version)}


def mac_message(tenant: str, epoch: int, purpose: str) -> bytes:
    """The message MACed by the HMAC KMS key to derive one tenant secret."""
    return f"concord:{purpose}:{tenant}:{epoch}".encode()


class KmsKeyProvider:
    """KeyProvider over AWS KMS (or a KMS-compatible endpoint) through aioboto3."""

    name = "kms"

    def __init__(
        self,
        key_id: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        mac_key_id: str | None = None,
        max_attempts: int = 3,
    ) -> None:
        """Arguments left None resolve from the standard AWS environment when the client opens."""
        self.key_id = key_id
        self.mac_key_id = mac_key_id
        self.endpoint_url = endpoint_url
        self.region = region
        self.calls: Counter[str] = Counter()
        self._config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=5, read_timeout=20
        )
        self._secrets: dict[tuple[str, int, str], bytes] = {}
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()

    @property
    def wrapping_key(self) -> str:
        """The `key_id` recorded on the dek items this provider writes."""
        return f"kms#{self.key_id}"

    async def new_dek(self, tenant: str, epoch: int, dialogue_id: str, version: int) -> tuple[bytes, WrappedKey]:
        """GenerateDataKey (AES_256) under the CMK, bound to the dialogue's encryption context."""
        response = await self._call(
            "GenerateDataKey",
            f"creating data key v{version} of dialogue {dialogue_id}",
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=encryption_context(tenant, dialogue_id, version),
        )
        return bytes(response["Plaintext"]), WrappedKey(bytes(response["CiphertextBlob"]), b"", self.wrapping_key)

    async def unwrap(self, tenant: str, epoch: int, dialogue_id: str, version: int, wrapped: WrappedKey) -> bytes:
        """Decrypt a wrapped DEK with the same encryption context; KeyMaterialError if it does not match."""
        if not wrapped.wrapping_key.startswith("kms#"):
            raise KeyMaterialError(
                f"the data key of dialogue {dialogue_id} (v{version}) is wrapped by {wrapped.wrapping_key}, "
                "not by KMS: open this dialogue with the key provider that wrote it"
            )
        response = await self._call(
            "Decrypt",
            f"unwrapping data key v{version} of dialogue {dialogue_id}",
            mismatch=f"the data key of dialogue {dialogue_id} (v{version}) does not unwrap under KMS key "
            f"{self.key_id}: wrong key, tenant or encryption context",
            CiphertextBlob=wrapped.ciphertext,
            KeyId=self.key_id,
            EncryptionContext=encryption_context(tenant, dialogue_id, version),
        )
        return bytes(response["Plaintext"])

    async def tenant_secret(self, tenant: str, epoch: int, purpose: str) -> bytes:
        """GenerateMac over `concord:{purpose}:{tenant}:{epoch}` with the HMAC KMS key; cached."""
        cached = self._secrets.get((tenant, epoch, purpose))
        if cached is not None:
            return cached
        if self.mac_key_id is None:
            raise KeyMaterialError(
                f"the {purpose} secret of tenant {tenant} needs an HMAC KMS key (key spec HMAC_256, usage "
                "GENERATE_VERIFY_MAC): set CONCORD_KMS_MAC_KEY_ID"
            )
        response = await self._call(
            "GenerateMac",
            f"deriving the {purpose} secret of tenant {tenant}",
            KeyId=self.mac_key_id,
            MacAlgorithm="HMAC_SHA_256",
            Message=mac_message(tenant, epoch, purpose),
        )
        secret = bytes(response["Mac"])
        self._secrets[(tenant, epoch, purpose)] = secret
        return secret

    async def close(self) -> None:
        """Close the KMS client; the provider reopens it on its next call."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def _open(self) -> Any:
        """The KMS client, opened on first use."""
        async with self._opening:
            if self._client is None:
                stack = AsyncExitStack()
                session = aioboto3.Session(region_name=self.region)
                try:
                    self._client = await stack.enter_async_context(
                        session.client("kms", endpoint_url=self.endpoint_url, config=self._config)
                    )
                except NoRegionError:
                    await stack.aclose()
                    raise BackendUnavailable("no AWS region for KMS: set AWS_REGION") from None
                self._stack = stack
        return self._client

    async def _call(self, operation: str, doing: str, *, mismatch: str | None = None, **params: Any) -> dict[str, Any]:
        """Send and count one KMS request; map failures to store errors (`mismatch`: wrong key or context)."""
        client = await self._open()
        self.calls[operation] += 1
        where = client.meta.endpoint_url
        try:
            response: dict[str, Any] = await getattr(client, xform_name(operation))(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            if mismatch is not None and code in MISMATCH_CODES:
                raise KeyMaterialError(f"{mismatch} ({code})") from None
            if code in UNAVAILABLE_CODES:
                raise BackendUnavailable(f"KMS at {where} is unavailable while {doing}: {code}") from None
            raise KeyMaterialError(f"KMS {operation} failed while {doing}: {code}: {message}") from None
        except (BotoConnectionError, HTTPClientError) as exc:
            raise BackendUnavailable(
                f"cannot reach KMS at {where} while {doing} ({type(exc).__name__}): is it running?"
            ) from None
        except NoCredentialsError:
            raise BackendUnavailable(
                "no AWS credentials for KMS: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from None
        except BotoCoreError as exc:
            raise BackendUnavailable(f"KMS {operation} failed while {doing}: {type(exc).__name__}") from None
        return response
