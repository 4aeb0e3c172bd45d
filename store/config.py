"""Settings from the environment: where state lives, which backend and key provider."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where Concord keeps its state and which backend and key provider it uses."""

    home: Path
    tenant: str = "local"
    epoch: int = 1
    store: str = "sqlite"
    table: str = "concord_dialogues"
    key_provider: str = "local"
    kms_key_id: str | None = None
    kms_mac_key_id: str | None = None

    @property
    def database(self) -> Path:
        """The embedded SQLite database file."""
        return self.home / "concord.db"

    @property
    def key_file(self) -> Path:
        """The local UMK file (0600)."""
        return self.home / "umk.key"

    @property
    def checkpoint_key(self) -> Path:
        """Ed25519 key that signs audit checkpoints (0600), separate from data keys."""
        return self.home / "checkpoint.key"

    @property
    def tokens_file(self) -> Path:
        """API bearer tokens (hashes only, 0600)."""
        return self.home / "tokens.json"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read CONCORD_* variables, with the embedded defaults."""
        env = os.environ if environ is None else environ
        store = env.get("CONCORD_STORE", "sqlite")
        if store not in ("sqlite", "dynamodb"):
            raise ValueError(f"CONCORD_STORE must be 'sqlite' or 'dynamodb', not {store!r}")
        provider = env.get("CONCORD_KEY_PROVIDER", "local")
        if provider not in ("local", "kms"):
            raise ValueError(f"CONCORD_KEY_PROVIDER must be 'local' or 'kms', not {provider!r}")
        try:
            epoch = int(env.get("CONCORD_KEK_EPOCH", "1"))
        except ValueError as exc:
            raise ValueError("CONCORD_KEK_EPOCH must be an integer") from exc
        return cls(
            home=Path(env.get("CONCORD_HOME") or Path.home() / ".concord").expanduser(),
            tenant=env.get("CONCORD_TENANT", "local"),
            epoch=epoch,
            store=store,
            table=env.get("CONCORD_TABLE", "concord_dialogues"),
            key_provider=provider,
            kms_key_id=env.get("CONCORD_KMS_KEY_ID"),
            kms_mac_key_id=env.get("CONCORD_KMS_MAC_KEY_ID"),
        )
