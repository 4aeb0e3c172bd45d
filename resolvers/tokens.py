"""The bearer-token file: SHA-256 of each token mapped to its name, tenant and scopes, kept 0600."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from concord.store.errors import BadInput
from concord.store.private_files import private_dir

SCOPES = ("read", "write")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class TokensError(BadInput):
    """The tokens file is unsafe or unreadable, or a token request is invalid."""


@dataclass(frozen=True)
class Caller:
    """Who a token belongs to: its name (the audit principal), tenant and scopes."""

    name: str
    tenant: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """True when the token carries `scope`."""
        return scope in self.scopes


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: all the file keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> dict[str, Caller]:
    """Token hash -> caller; refuses a file that the group or others may read or write."""
    return {digest: _caller(path, entry) for digest, entry in _entries(path).items()}


def _caller(path: Path, entry: object) -> Caller:
    """The caller one entry names, or TokensError unless it has a string name and tenant and a list of scopes."""
    if not isinstance(entry, dict):
        raise TokensError(f"{path} is not a Concord tokens file: an entry is not an object")
    name, tenant, scopes = entry.get("name"), entry.get("tenant"), entry.get("scopes")
    if not isinstance(name, str) or not isinstance(tenant, str):
        raise TokensError(f"{path} is not a Concord tokens file: an entry's name or tenant is not a string")
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise TokensError(f"{path} is not a Concord tokens file: the scopes of {name!r} are not a list of strings")
    return Caller(name, tenant, frozenset(scopes))


def _entries(path: Path) -> dict[str, dict[str, object]]:
    """The raw entries of a safe tokens file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TokensError(
            f"no tokens file at {path}: create a token with `concord tokens add --tenant T --scopes read,write`"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokensError(
            f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    try:
        entries = json.loads(path.read_text())["tokens"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TokensError(f"{path} is not a Concord tokens file: {exc!r}") from exc
    if not isinstance(entries, dict):
        raise TokensError(f"{path} is not a Concord tokens file: 'tokens' is not an object")
    return entries


def add_token(path: Path, tenant: str, scopes: list[str] | tuple[str, ...], name: str) -> str:
    """Create a token for a tenant with scopes, store only its hash, and return it (shown this once)."""
    wanted = frozenset(scopes)
    if not wanted or not wanted <= set(SCOPES):
        raise TokensError(
            f"scopes must be a non-empty subset of {', '.join(SCOPES)}, not {', '.join(sorted(scopes)) or 'none'}"
        )
    if not _TENANT.match(tenant):
        raise TokensError(f"tenant {tenant!r} must be lowercase letters, digits, '-' or '_' (at most 64)")
    if not _NAME.match(name):
        raise TokensError(f"token name {name!r} must be letters, digits, '.', '_', '@' or '-' (at most 64)")
    entries = _entries(path) if path.exists() else {}
    if any(entry.get("name") == name for entry in entries.values()):
        raise TokensError(f"a token named {name!r} already exists in {path}; names identify callers in the audit chain")
    token = "concord_" + secrets.token_urlsafe(32)
    entries[token_hash(token)] = {
        "name": name,
        "tenant": tenant,
        "scopes": sorted(wanted),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_private(path, json.dumps({"version": 1, "tokens": entries}, indent=2, sort_keys=True) + "\n")
    return token


def _write_private(path: Path, text: str) -> None:
    """Replace the file atomically with a new 0600 one."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
