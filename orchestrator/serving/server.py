"""`concord serve`: uvicorn over the configured stores, one app per worker process.

A worker reads no environment: the parent hands each one a `WorkerApp` (the Settings, the dev flag and the
starter factory), pickled into the worker process when it is spawned.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.progress.peers import PeerLink
from concord.resolvers.app import create_app
from concord.resolvers.ports import DialogueStarter
from concord.store.config import Settings
from concord.store.errors import ConcordError
from concord.store.factory import Stores, open_stores

#: Builds the dialogue starter from a worker's stores and bus; a module-level function, so it pickles by name.
StarterFactory = Callable[[Stores, ProgressBus], DialogueStarter]
#: Seconds between checks that every worker is still running.
WATCH_INTERVAL = 0.5


class ServeFailed(ConcordError):
    """The API did not start, or a worker stopped on its own."""

    code = "serve_failed"


@dataclass(frozen=True)
class WorkerApp:
    """Everything a worker needs to build its app: uvicorn calls it (a factory) once inside each worker."""

    settings: Settings
    dev: bool = False
    starter: StarterFactory | None = None

    def __call__(self) -> Starlette:
        """The worker's app: it opens the stores inside the worker's event loop when uvicorn starts it."""
        served = _Deferred()

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            bus = ProgressBus()
            async with (
                await open_stores(self.settings, principal="concord-api") as stores,
                PeerLink(bus, self.settings),
            ):
                served.app = create_app(
                    stores,
                    bus=bus,
                    starter=self.starter(stores, bus) if self.starter else None,
                    dev=self.dev,
                    tokens_file=self.settings.tokens_file,
                )
                yield

        return Starlette(routes=[Mount("/", app=served)], lifespan=lifespan)


def serve(app: WorkerApp, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the API until interrupted: in this process for one worker, else in `workers` spawned processes."""
    config = uvicorn.Config(
        app, factory=True, host=host, port=port, lifespan="on", proxy_headers=False, server_header=False
    )
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise ServeFailed(f"the API did not start on {host}:{port}; see the log above")
        return
    _supervise(config, workers)


def _supervise(config: uvicorn.Config, workers: int) -> None:
    """Run `workers` worker processes on one listening socket until SIGINT/SIGTERM or until one of them exits."""
    listening = config.bind_socket()
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_run_worker, args=(config, listening)) for _ in range(workers)]
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        while not stop.wait(WATCH_INTERVAL):
            ended = next((p for p in processes if not p.is_alive()), None)
            if ended is not None:
                raise ServeFailed(
                    f"API worker {ended.pid} exited with code {ended.exitcode}; the server stopped (its log is above)"
                )
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes its requests and runs the lifespan shutdown
        for process in processes:
            process.join()
        listening.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_worker(config: uvicorn.Config, listening: socket.socket) -> None:
    """One worker process: its own logging, then uvicorn on the shared socket; exit code 1 if it never started."""
    config.configure_logging()
    server = uvicorn.Server(config)
    server.run(sockets=[listening])
    if not server.started:
        raise SystemExit(1)


class _Deferred:
    """The Concord app, built once the stores are open."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
