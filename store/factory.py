"""Open the configured backend, key provider and stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concord.store.analytics import AnalyticsStore
from concord.store.backends.base import Backend
from concord.store.clock import Clock, utc_now
from concord.store.config import Settings
from concord.store.crypto.keys import KeyProvider, LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import KeyMaterialError


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


async def open_backend(settings: Settings) -> Backend:
    """The configured backend, opened."""
    if settings.store == "dynamodb":
        from concord.store.backends.dynamodb import DynamoDBBackend

        backend = DynamoDBBackend(settings.table, endpoint_url=settings.dynamodb_endpoint, region=settings.aws_region)
        await backend.open()
        return backend
    from concord.store.backends.sqlite import SQLiteBackend

    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return await SQLiteBackend(settings.database).open()


def key_provider(settings: Settings, *, create_if_new: bool) -> KeyProvider:
    """The configured key provider; a local key file is created only for a brand-new database."""
    if settings.key_provider == "kms":
        from concord.store.crypto.kms import KmsKeyProvider

        if not settings.kms_key_id:
            raise KeyMaterialError("CONCORD_KEY_PROVIDER=kms needs CONCORD_KMS_KEY_ID (a KMS key id or ARN)")
        return KmsKeyProvider(settings.kms_key_id, mac_key_id=settings.kms_mac_key_id, region=settings.aws_region)
    provider = LocalKeyProvider(settings.key_file)
    if create_if_new and not settings.key_file.exists():
        LocalKeyProvider.create_key_file(settings.key_file)
    return provider


async def open_stores(
    settings: Settings | None = None,
    *,
    principal: str | None = None,
    clock: Clock = utc_now,
    tenant: str | None = None,
) -> Stores:
    """Open backend, keys and both stores as configured (environment by default)."""
    settings = settings or Settings.from_env()
    database_is_new = settings.store == "sqlite" and not settings.database.exists()
    keys = key_provider(settings, create_if_new=database_is_new)
    backend = await open_backend(settings)
    dialogues = DialogueStore(
        backend, keys, tenant=tenant or settings.tenant, epoch=settings.epoch, principal=principal, clock=clock
    )
    return Stores(settings, backend, keys, dialogues, AnalyticsStore(backend, keys, dialogues))
