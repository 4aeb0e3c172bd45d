"""Settings: the one place Concord reads its environment (where state lives, backend, keys, model access)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from concord.store.errors import BadInput

STORES = ("sqlite", "dynamodb")
KEY_PROVIDERS = ("local", "kms")
API_PROVIDERS = ("sim", "anthropic")


@dataclass(frozen=True)
class Settings:
    """Where Concord keeps its state, which backend and key provider it uses, and how it reaches the model."""

    home: Path
    tenant: str = "local"
    epoch: int = 1
    store: str = "sqlite"
    table: str = "concord_dialogues"
    key_provider: str = "local"
    kms_key_id: str | None = None
    kms_mac_key_id: str | None = None
    api_provider: str = "sim"
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    aws_region: str | None = None
    dynamodb_endpoint: str | None = None

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the CONCORD_*, ANTHROPIC_* and AWS region/endpoint variables, with the embedded defaults; BadInput names a wrong one."""
        env = os.environ if environ is None else environ
        epoch = env.get("CONCORD_KEK_EPOCH", "1")
        if not epoch.isdigit() or int(epoch) < 1:
            raise BadInput(f"CONCORD_KEK_EPOCH must be a positive integer, not {epoch!r}")
        return cls(
            home=Path(env.get("CONCORD_HOME") or Path.home() / ".concord").expanduser(),
            tenant=env.get("CONCORD_TENANT", "local"),
            epoch=int(epoch),
            store=_one_of(env, "CONCORD_STORE", STORES),
            table=env.get("CONCORD_TABLE", "concord_dialogues"),
            key_provider=_one_of(env, "CONCORD_KEY_PROVIDER", KEY_PROVIDERS),
            kms_key_id=env.get("CONCORD_KMS_KEY_ID") or None,
            kms_mac_key_id=env.get("CONCORD_KMS_MAC_KEY_ID") or None,
            api_provider=_one_of(env, "CONCORD_API_PROVIDER", API_PROVIDERS),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
            aws_region=env.get("AWS_REGION") or None,
            dynamodb_endpoint=env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None,
        )

    def environment(self) -> dict[str, str]:
        """The variables that make `from_env` return these settings, for a child process's environment."""
        variables = {
            "CONCORD_HOME": str(self.home),
            "CONCORD_TENANT": self.tenant,
            "CONCORD_KEK_EPOCH": str(self.epoch),
            "CONCORD_STORE": self.store,
            "CONCORD_TABLE": self.table,
            "CONCORD_KEY_PROVIDER": self.key_provider,
            "CONCORD_KMS_KEY_ID": self.kms_key_id,
            "CONCORD_KMS_MAC_KEY_ID": self.kms_mac_key_id,
            "CONCORD_API_PROVIDER": self.api_provider,
            "ANTHROPIC_API_KEY": self.anthropic_api_key,
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "AWS_REGION": self.aws_region,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
        }
        return {name: value for name, value in variables.items() if value is not None}


def _one_of(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or choices[0]
    if value not in choices:
        raise BadInput(f"{name} must be {' or '.join(repr(c) for c in choices)}, not {value!r}")
    return value
