"""The store's clock: what a clock is, the current UTC time, and the two forms timestamps are stored in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch (the form event keys carry)."""
    return int(moment.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    """The UTC moment `epoch_ms` gave."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
