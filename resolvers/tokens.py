"""The bearer-token file: SHA-256 of each token mapped to its name, tenant, scopes and expiry, kept 0600.

Every change (add, revoke, a last use) rewrites the file atomically under an exclusive lock on a 0600 lock file
beside it, so concurrent writers never lose each other's changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    """Who a token belongs to: its name (the audit principal), tenant and scopes; its hash and expiry."""

    name: str
    tenant: str
    scopes: frozenset[str]
    digest: str = ""
    expires_at: datetime | None = None

    def may(self, scope: str) -> bool:
        """True when the token carries `scope`."""
        return scope in self.scopes

    def expired(self, now: datetime) -> bool:
        """True once the token's expiry has passed."""
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True)
class TokenInfo:
    """What `concord tokens list` shows of a token: never the token or its hash."""

    name: str
    tenant: str
    scopes: list[str]
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    expired: bool


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: all the file keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> dict[str, Caller]:
    """Token hash -> caller; refuses a file that the group or others may read or write."""
    return {digest: _caller(path, digest, entry) for digest, entry in _entries(path).items()}


def list_tokens(path: Path, now: datetime | None = None) -> list[TokenInfo]:
    """Every token's name, tenant, scopes, creation, expiry and last use, by name."""
    now = now or datetime.now(UTC)
    entries = _entries(path) if path.exists() else {}
    listed = []
    for digest, entry in entries.items():
        caller = _caller(path, digest, entry)
        created, used = entry.get("created_at"), entry.get("last_used_at")
        listed.append(
            TokenInfo(
                caller.name,
                caller.tenant,
                sorted(caller.scopes),
                created if isinstance(created, str) else None,
                caller.expires_at.isoformat(timespec="seconds") if caller.expires_at else None,
                used if isinstance(used, str) else None,
                caller.expired(now),
            )
        )
    return sorted(listed, key=lambda info: info.name)


def _caller(path: Path, digest: str, entry: object) -> Caller:
    """The caller one entry names, or TokensError unless it has a string name and tenant, a list of scopes and,
    if any, an ISO expiry."""
    if not isinstance(entry, dict):
        raise TokensError(f"{path} is not a Concord tokens file: an entry is not an object")
    name, tenant, scopes = entry.get("name"), entry.get("tenant"), entry.get("scopes")
    if not isinstance(name, str) or not isinstance(tenant, str):
        raise TokensError(f"{path} is not a Concord tokens file: an entry's name or tenant is not a string")
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise TokensError(f"{path} is not a Concord tokens file: the scopes of {name!r} are not a list of strings")
    expires = entry.get("expires_at")
    return Caller(name, tenant, frozenset(scopes), digest, None if expires is None else _moment(path, name, expires))


def _moment(path: Path, name: str, value: object) -> datetime:
    """An expiry as stored: an ISO time with a zone, or TokensError."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise TokensError(f"{path} is not a Concord tokens file: the expiry of {name!r} is not an ISO time with a zone")
    return moment


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


def add_token(
    path: Path,
    tenant: str,
    scopes: list[str] | tuple[str, ...],
    name: str,
    *,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    """Create a token for a tenant with scopes (expiring `expires_in` from now, if given), store only its hash, and
    return it (shown this once)."""
    wanted = frozenset(scopes)
    if not wanted or not wanted <= set(SCOPES):
        raise TokensError(
            f"scopes must be a non-empty subset of {', '.join(SCOPES)}, not {', '.join(sorted(scopes)) or 'none'}"
        )
    if not _TENANT.match(tenant):
        raise TokensError(f"tenant {tenant!r} must be lowercase letters, digits, '-' or '_' (at most 64)")
    if not _NAME.match(name):
        raise TokensError(f"token name {name!r} must be letters, digits, '.', '_', '@' or '-' (at most 64)")
    if expires_in is not None and expires_in <= timedelta(0):
        raise TokensError(f"a token must expire in the future, not in {expires_in}")
    now = now or datetime.now(UTC)
    token = "concord_" + secrets.token_urlsafe(32)
    with _locked(path):
        entries = _entries(path) if path.exists() else {}
        if any(entry.get("name") == name for entry in entries.values()):
            raise TokensError(
                f"a token named {name!r} already exists in {path}; names identify callers in the audit chain"
            )
        entry: dict[str, object] = {
            "name": name,
            "tenant": tenant,
            "scopes": sorted(wanted),
            "created_at": now.isoformat(timespec="seconds"),
        }
        if expires_in is not None:
            entry["expires_at"] = (now + expires_in).isoformat(timespec="seconds")
        entries[token_hash(token)] = entry
        _write_entries(path, entries)
    return token


def revoke_token(path: Path, name: str) -> None:
    """Remove the token called `name`; TokensError when there is none. A server refuses it from its next check."""
    with _locked(path):
        entries = _entries(path)
        kept = {digest: entry for digest, entry in entries.items() if entry.get("name") != name}
        if len(kept) == len(entries):
            raise TokensError(f"no token named {name!r} in {path}; `concord tokens list` shows them")
        _write_entries(path, kept)


def record_use(path: Path, digest: str, when: datetime) -> None:
    """Note when the token with this hash was last used (nothing if it is gone meanwhile)."""
    with _locked(path):
        entries = _entries(path)
        if digest in entries:
            entries[digest]["last_used_at"] = when.isoformat(timespec="seconds")
            _write_entries(path, entries)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock that every change to the tokens file takes."""
    private_dir(path.parent)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_entries(path: Path, entries: dict[str, dict[str, object]]) -> None:
    """Replace the file with these entries."""
    _write_private(path, json.dumps({"version": 1, "tokens": entries}, indent=2, sort_keys=True) + "\n")


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
