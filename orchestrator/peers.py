"""Progress events shared by the Concord processes of one CONCORD_HOME: API workers and CLI runs.

Each linked process binds a Unix datagram socket in `$CONCORD_HOME/progress/`. What one process
publishes is sent to every other socket there and delivered to that process's subscribers, so a
subscription sees a run whichever worker (or terminal) started it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from pathlib import Path
from types import TracebackType

from .events import ProgressBus, ProgressEvent

log = logging.getLogger("concord.progress")

#: The kernel keeps a socket path in 108 bytes, the last one a NUL.
MAX_SOCKET_PATH = 107
#: Events kept for a peer that is not reading; past this its oldest are dropped, as a slow subscriber's are.
BACKLOG = 1000
#: Pause before sending again to a peer whose datagram queue was full.
RETRY_SECONDS = 0.005
#: How long closing a link waits for busy peers to take the events still kept for them.
DRAIN_SECONDS = 2.0


class PeerLink:
    """Joins a bus to the buses of every other linked process under `home`, while open."""

    def __init__(self, bus: ProgressBus, home: Path) -> None:
        self.bus = bus
        self.directory = home / "progress"
        self.path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        self._transport: asyncio.BaseTransport | None = None
        self._sender: socket.socket | None = None
        self._backlogs: dict[Path, deque[bytes]] = {}

    @property
    def linked(self) -> bool:
        """True while events cross to and from other processes."""
        return self._sender is not None

    async def __aenter__(self) -> PeerLink:
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            log.warning("progress events stay in this process: %s is too long for a socket path", self.path)
            return self
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        self.bus.relay_to(self.send)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        while self._backlogs and time.monotonic() < deadline:  # the last events of a run are the ones that matter
            await asyncio.sleep(RETRY_SECONDS)
        for peer, backlog in self._backlogs.items():
            log.warning("%d progress events not delivered to %s: it is not reading", len(backlog), peer.name)
        self._backlogs.clear()
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self.path.unlink(missing_ok=True)

    def send(self, event: ProgressEvent) -> None:
        """Send an event to every other linked process, in order; a busy one gets it a little later."""
        if self._sender is None:
            return
        datagram = json.dumps(dataclasses.asdict(event)).encode()
        for peer in self.directory.glob("*.sock"):
            if peer == self.path:
                continue
            waiting = peer in self._backlogs  # then this event queues behind what waits, to keep the order
            self._backlogs.setdefault(peer, deque(maxlen=BACKLOG)).append(datagram)
            if not waiting:
                self._flush(peer)

    def _flush(self, peer: Path) -> None:
        """Send what waits for a peer until its queue is full (then retry shortly) or the peer is gone."""
        backlog = self._backlogs.get(peer)
        while backlog and self._sender is not None:
            try:
                self._sender.sendto(backlog[0], str(peer))
            except BlockingIOError:  # the peer's datagram queue is full until it reads
                asyncio.get_running_loop().call_later(RETRY_SECONDS, self._flush, peer)
                return
            except (ConnectionRefusedError, FileNotFoundError):  # its process ended, cleanly or not
                peer.unlink(missing_ok=True)
                break
            except OSError as exc:  # an event too large for one datagram
                log.warning("progress event not sent to %s: %s", peer.name, exc)
            backlog.popleft()
        self._backlogs.pop(peer, None)


class _Receiver(asyncio.DatagramProtocol):
    """Delivers the events other processes send to this process's subscribers."""

    def __init__(self, bus: ProgressBus) -> None:
        self.bus = bus

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            fields = json.loads(data)
            event = ProgressEvent(**fields)
        except (ValueError, TypeError):
            log.warning("ignored a progress datagram of %d bytes that is not an event", len(data))
            return
        if not isinstance(event.dialogue_id, str) or not isinstance(event.kind, str):
            log.warning("ignored a progress datagram without a dialogue id and kind")
            return
        self.bus.deliver(event)
