"""Open the configured backend, key provider and stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from concord.store.analytics import AnalyticsStore
from concord.store.backends.base import Backend
from concord.store.clock import Clock, utc_now
from concord.store.config import Settings
from concord.store.crypto.keys import KeyProvider, LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import KeyMaterialError
from concord.store.private_files import private_dir

if TYPE_CHECKING:
    from concord.store.backends.dynamodb import DynamoDBBackend
    from concord.store.backends.sqlite import SQLiteBackend

#: The backends Concord ships (each can also tell whether it holds anything at all).
OwnBackend: TypeAlias = "SQLiteBackend | DynamoDBBackend"


@dataclass
class Stores:
    """The open stores over one backend; close when done."""

    settings: Settings
    backend: Backend
    keys: KeyProvider
    dialogues: DialogueStore
    analytics: AnalyticsStore

    async def close(self) -> None:
        """Release the backend and the key provider's connections."""
        await self.backend.close()
        close_keys = getattr(self.keys, "close", None)
        if close_keys is not None:
            await close_keys()

    async def __aenter__(self) -> Stores:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def open_backend(settings: Settings) -> OwnBackend:
    """The configured backend, opened."""
    if settings.store == "dynamodb":
        from concord.store.backends.dynamodb import DynamoDBBackend

        backend = DynamoDBBackend(settings.table, endpoint_url=settings.dynamodb_endpoint, region=settings.aws_region)
        await backend.open()
        return backend
    from concord.store.backends.sqlite import SQLiteBackend

    private_dir(settings.home)
    return await SQLiteBackend(settings.database).open()


def key_provider(settings: Settings, backend: OwnBackend) -> KeyProvider:
    """The configured key provider; a missing local key file is created by the first write into `backend`
    while it is empty (and never otherwise)."""
    if settings.key_provider == "kms":
        from concord.store.crypto.kms import KmsKeyProvider

        if not settings.kms_key_id:
            raise KeyMaterialError("CONCORD_KEY_PROVIDER=kms needs CONCORD_KMS_KEY_ID (a KMS key id or ARN)")
        return KmsKeyProvider(settings.kms_key_id, mac_key_id=settings.kms_mac_key_id, region=settings.aws_region)
    return LocalKeyProvider(settings.key_file, store_is_empty=backend.is_empty)


async def check_key_file(settings: Settings, backend: OwnBackend) -> None:
    """KeyMaterialError naming the local key file when it is missing but the store holds data."""
    if settings.key_provider == "local" and not settings.key_file.exists() and not await backend.is_empty():
        raise KeyMaterialError(
            f"key file {settings.key_file} is missing but the store holds encrypted data; restore it "
            "(a new key cannot read existing data, so none is created)"
        )


async def open_stores(
    settings: Settings | None = None,
    *,
    principal: str | None = None,
    clock: Clock = utc_now,
    tenant: str | None = None,
) -> Stores:
    """Open backend, keys and both stores as configured (environment by default); refused when the key file is
    missing but data exists."""
    settings = settings or Settings.from_env()
    backend = await open_backend(settings)
    try:
        await check_key_file(settings, backend)
        keys = key_provider(settings, backend)
    except BaseException:
        await backend.close()
        raise
    dialogues = DialogueStore(
        backend, keys, tenant=tenant or settings.tenant, epoch=settings.epoch, principal=principal, clock=clock
    )
    return Stores(settings, backend, keys, dialogues, AnalyticsStore(backend, keys, dialogues))
