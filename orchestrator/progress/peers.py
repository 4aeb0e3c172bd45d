"""Progress events shared by the Concord processes (API workers, CLI runs) that use one store.

Each linked process binds a Unix datagram socket in a directory under `$CONCORD_HOME/progress/`
named after its store, and sends what it publishes to every other socket there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent
from concord.store.config import Settings
from concord.store.private_files import private_dir

log = logging.getLogger("concord.progress")

#: The kernel keeps a socket path in 108 bytes, the last one a NUL.
MAX_SOCKET_PATH = 107
#: Events kept for a peer that is not reading; past this its oldest are dropped, as a slow subscriber's are.
BACKLOG = 1000
#: First and longest pause before sending again to a peer that could not take an event.
RETRY_SECONDS = (0.005, 0.1)
#: How long closing a link waits for busy peers to take the events still kept for them.
DRAIN_SECONDS = 2.0
#: A socket that refuses events for longer than this belongs to no one, whatever process has its PID now.
STALE_SECONDS = 2.0


def store_scope(settings: Settings) -> str:
    """What a dialogue id is unique within: the SQLite file, or the DynamoDB table at its endpoint and region."""
    if settings.store == "dynamodb":
        return f"dynamodb:{settings.dynamodb_endpoint or ''}:{settings.aws_region or ''}:{settings.table}"
    return f"sqlite:{settings.database.resolve()}"


class PeerLink:
    """Joins a bus to the buses of the other linked processes of the same store, while open."""

    def __init__(self, bus: ProgressBus, settings: Settings) -> None:
        self.bus = bus
        scope = store_scope(settings)
        self.directory = settings.home / "progress" / hashlib.sha256(scope.encode()).hexdigest()[:8]
        self.path = self.directory / f"{os.getpid()}-{secrets.token_hex(3)}.sock"
        self._transport: asyncio.BaseTransport | None = None
        self._sender: socket.socket | None = None
        self._unrelay: Callable[[], None] | None = None
        self._backlogs: dict[Path, deque[bytes]] = {}
        self._refused_since: dict[Path, float] = {}

    @property
    def linked(self) -> bool:
        """True while events cross to and from other processes."""
        return self._sender is not None

    async def __aenter__(self) -> Self:
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            log.warning("progress events stay in this process: %s is too long for a socket path", self.path)
            return self
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            private_dir(self.directory)
            self.directory.chmod(0o700)
            receiver.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Receiver(self.bus), sock=receiver
            )
        except OSError as exc:
            receiver.close()
            self.path.unlink(missing_ok=True)
            log.warning("progress events stay in this process: cannot listen on %s (%s)", self.path, exc)
            return self
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        self._unrelay = self.bus.relay_to(self.send)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            deadline = time.monotonic() + DRAIN_SECONDS
            while self._backlogs and time.monotonic() < deadline:  # a run's last events are the ones that matter
                await asyncio.sleep(RETRY_SECONDS[0])
            for peer, backlog in self._backlogs.items():
                log.warning("%d progress events not delivered to %s: it is not reading", len(backlog), peer.name)
        finally:
            self._close()

    def _close(self) -> None:
        self._backlogs.clear()
        self._refused_since.clear()
        if self._unrelay is not None:
            self._unrelay()
            self._unrelay = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self.path.unlink(missing_ok=True)

    def send(self, event: ProgressEvent) -> None:
        """Send an event to every other linked process, in the order published."""
        if self._sender is None:
            return
        datagram = json.dumps(dataclasses.asdict(event), default=str).encode()
        for peer in self.directory.glob("*.sock"):
            if peer == self.path:
                continue
            waiting = peer in self._backlogs  # then this event queues behind what waits, to keep the order
            self._backlogs.setdefault(peer, deque(maxlen=BACKLOG)).append(datagram)
            if not waiting:
                self._flush(peer, RETRY_SECONDS[0])

    def _flush(self, peer: Path, pause: float) -> None:
        """Send what waits for one peer; retry later if it cannot take it now; forget a peer that is gone."""
        backlog = self._backlogs.get(peer)
        while backlog and self._sender is not None:
            try:
                self._sender.sendto(backlog[0], str(peer))
            except (BlockingIOError, ConnectionRefusedError) as exc:
                # A full queue, or a socket still being bound: wait. A refusal from a process that ended, or
                # for longer than binding takes (its PID reused by another process): forget the peer.
                if isinstance(exc, ConnectionRefusedError):
                    refused_since = self._refused_since.setdefault(peer, time.monotonic())
                    if not _alive(peer) or time.monotonic() - refused_since > STALE_SECONDS:
                        _remove(peer)
                        break
                asyncio.get_running_loop().call_later(pause, self._flush, peer, min(pause * 2, RETRY_SECONDS[1]))
                return
            except FileNotFoundError:  # its process closed the link
                break
            except OSError as exc:  # an event too large for one datagram, or not a socket
                log.warning("progress event not sent to %s: %s", peer.name, exc)
            self._refused_since.pop(peer, None)
            backlog.popleft()
        self._backlogs.pop(peer, None)
        self._refused_since.pop(peer, None)


def _alive(peer: Path) -> bool:
    """Whether the process named by a peer's socket file (`{pid}-{suffix}.sock`) still runs."""
    try:
        os.kill(int(peer.name.split("-", 1)[0]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _remove(peer: Path) -> None:
    """Delete the socket file a process left behind."""
    try:
        peer.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove %s, left by a process that ended: %s", peer, exc)


class _Receiver(asyncio.DatagramProtocol):
    """Delivers the events other processes send to this process's subscribers."""

    def __init__(self, bus: ProgressBus) -> None:
        self.bus = bus

    def datagram_received(self, data: bytes, addr: object) -> None:
        event = _event(data)
        if event is None:
            log.warning("ignored a progress datagram of %d bytes that is not an event", len(data))
            return
        self.bus.deliver(event)


def _event(data: bytes) -> ProgressEvent | None:
    """The event a datagram holds, or None when it holds something else."""
    try:
        fields: Any = json.loads(data)
        event = ProgressEvent(**fields)
    except (ValueError, TypeError):
        return None
    well_formed = (
        isinstance(event.dialogue_id, str)
        and isinstance(event.kind, str)
        and isinstance(event.round, (int, type(None)))
        and isinstance(event.expert, (str, type(None)))
        and isinstance(event.data, dict)
        and isinstance(event.at, str)
    )
    return event if well_formed else None
