"""Progress events crossing processes: API workers and CLI runs of one store see each other's runs."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import websockets

from concord.orchestrator.progress import peers
from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent
from concord.orchestrator.progress.peers import PeerLink
from concord.store.config import Settings
from concord.store.factory import open_stores
from tests.graphql_helpers import build_dialogue
from tests.services import HOST, ROOT, concord, environment, free_port, served

#: Seconds any single wait may take before the test fails instead of hanging.
WAIT = 60.0
SUBSCRIBE = "subscription($d: ID!) { dialogueEvents(dialogueId: $d) { kind round expert } }"
Received = list[tuple[str, int | None]]


async def collecting(bus: ProgressBus, dialogue_id: str, count: int) -> asyncio.Task[Received]:
    """A task gathering the next `count` events (kind, round) of a dialogue; returned once it listens."""

    async def collect() -> Received:
        events = bus.subscribe(dialogue_id)
        return [(e.kind, e.round) for e in [await anext(events) for _ in range(count)]]

    task = asyncio.create_task(collect())
    while bus.subscribers(dialogue_id) == 0:
        await asyncio.sleep(0)
    return task


async def received(task: asyncio.Task[Received]) -> Received:
    """What a collecting task gathered; fails instead of waiting for ever."""
    return await asyncio.wait_for(task, WAIT)


async def wait_for(check: object, what: str) -> None:
    """Poll a predicate until it holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


class Listener(asyncio.DatagramProtocol):
    """Keeps every datagram sent to its socket, decoded."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.events.append(json.loads(data))


def dead_pid() -> int:
    """The PID of a process that has ended."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(child.stdout)


async def test_an_event_published_in_one_bus_reaches_the_subscribers_of_every_linked_bus(tmp_path: Path) -> None:
    first, second = ProgressBus(), ProgressBus()
    settings = Settings(home=tmp_path)
    async with PeerLink(first, settings) as one, PeerLink(second, settings) as two:
        assert one.linked and two.linked
        here, there = await collecting(first, "d-1", 3), await collecting(second, "d-1", 2)
        first.publish(ProgressEvent("d-1", "round_started", 0))
        first.publish(ProgressEvent("d-1", "round_closed", 0))
        assert await received(there) == [("round_started", 0), ("round_closed", 0)]
        second.publish(ProgressEvent("d-1", "verdict", 0))
        # Its own events once, then the other's: an echo of its own would come before the verdict.
        assert await received(here) == [("round_started", 0), ("round_closed", 0), ("verdict", 0)]


async def test_a_relay_that_fails_never_reaches_the_run(tmp_path: Path) -> None:
    bus = ProgressBus()

    def broken(event: ProgressEvent) -> None:
        raise OSError("disk gone")

    bus.relay_to(broken)
    events = await collecting(bus, "d-1", 1)
    bus.publish(ProgressEvent("d-1", "verdict", 0))
    assert await received(events) == [("verdict", 0)]


async def test_each_store_has_its_own_channel(tmp_path: Path) -> None:
    def link(table: str) -> PeerLink:
        return PeerLink(ProgressBus(), Settings(home=tmp_path, store="dynamodb", table=table))

    assert link("a").directory == link("a").directory != link("b").directory
    assert PeerLink(ProgressBus(), Settings(home=tmp_path)).directory not in (link("a").directory, link("b").directory)


def test_one_table_name_at_two_endpoints_or_regions_gets_two_channels(tmp_path: Path) -> None:
    def channel(endpoint: str, region: str) -> Path:
        settings = Settings(home=tmp_path, store="dynamodb", table="t", dynamodb_endpoint=endpoint, aws_region=region)
        return PeerLink(ProgressBus(), settings).directory

    local = channel("http://localhost:8000", "eu-west-1")
    assert local == channel("http://localhost:8000", "eu-west-1")
    assert local != channel("http://localhost:8001", "eu-west-1")
    assert local != channel("http://localhost:8000", "us-east-1")


async def test_link_files_are_private_and_removed_on_close(tmp_path: Path) -> None:
    async with PeerLink(ProgressBus(), Settings(home=tmp_path)) as link:
        assert stat.S_IMODE(link.directory.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(link.path.stat().st_mode) and stat.S_IMODE(link.path.stat().st_mode) == 0o600
    assert not link.path.exists()


async def test_the_socket_of_a_process_that_died_is_cleared_and_publishing_goes_on(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, Settings(home=tmp_path)) as link:
        dead = link.directory / f"{dead_pid()}-gone.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as orphan:
            orphan.bind(str(dead))  # closed with its file left behind, as after a SIGKILL
        events = await collecting(bus, "d-1", 1)
        bus.publish(ProgressEvent("d-1", "verdict", 2))
        assert await received(events) == [("verdict", 2)]
        assert not dead.exists()


async def test_a_refusing_socket_of_a_live_process_is_kept_and_served_once_it_listens(tmp_path: Path) -> None:
    """What a peer sees while another process is between creating its socket file and listening on it."""
    bus = ProgressBus()
    async with PeerLink(bus, Settings(home=tmp_path)) as link:
        starting = link.directory / f"{os.getpid()}-starting.sock"  # a process that is alive
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as early:
            early.bind(str(starting))
        bus.publish(ProgressEvent("d-1", "round_started", 0))
        await asyncio.sleep(0.05)
        assert starting.exists()
        starting.unlink()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready:
            ready.bind(str(starting))
            transport, listener = await asyncio.get_running_loop().create_datagram_endpoint(Listener, sock=ready)
            await wait_for(lambda: listener.events, "the kept event never arrived")
            transport.close()
    assert [(e["kind"], e["round"]) for e in listener.events] == [("round_started", 0)]


async def test_a_socket_that_keeps_refusing_is_dropped_though_its_pid_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PID reused by an unrelated process must not keep a dead peer's socket alive for ever."""
    monkeypatch.setattr(peers, "STALE_SECONDS", 0.2)
    bus = ProgressBus()
    async with PeerLink(bus, Settings(home=tmp_path)) as link:
        stale = link.directory / f"{os.getpid()}-stale.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as left:
            left.bind(str(stale))
        bus.publish(ProgressEvent("d-1", "round_started", 0))
        await wait_for(lambda: not stale.exists(), "the stale socket was kept")


async def test_a_peer_that_is_slow_to_read_gets_every_event_in_order_later(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, Settings(home=tmp_path)) as link:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as idle:
            idle.bind(str(link.directory / f"{os.getpid()}-slow.sock"))
            for n in range(50):  # far more than a Unix datagram queue holds (net.unix.max_dgram_qlen, often 10)
                bus.publish(ProgressEvent("d-1", "expert_answered", n))
            await asyncio.sleep(0.05)
            transport, listener = await asyncio.get_running_loop().create_datagram_endpoint(Listener, sock=idle)
            await wait_for(lambda: len(listener.events) == 50, "not every event arrived")
            transport.close()
    assert [e["round"] for e in listener.events] == list(range(50))


async def test_a_datagram_that_is_not_an_event_is_ignored(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, Settings(home=tmp_path)) as link:
        events = await collecting(bus, "d-1", 1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            for junk in (
                {"dialogue_id": "d-1", "kind": 3},
                {"dialogue_id": "d-1", "kind": "verdict", "extra": 1},
                {"dialogue_id": "d-1", "kind": "verdict", "round": "one"},
                [1, 2],
            ):
                sender.sendto(json.dumps(junk).encode(), str(link.path))
            sender.sendto(b"not json", str(link.path))
            sender.sendto(json.dumps({"dialogue_id": "d-1", "kind": "verdict", "round": 1}).encode(), str(link.path))
        assert await received(events) == [("verdict", 1)]


async def test_a_home_too_long_for_a_socket_path_keeps_events_in_process(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, Settings(home=tmp_path / ("x" * 120))) as link:
        assert not link.linked
        events = await collecting(bus, "d-1", 1)
        bus.publish(ProgressEvent("d-1", "verdict", 0))
        assert await received(events) == [("verdict", 0)]


async def test_events_of_another_process_arrive_in_order(tmp_path: Path) -> None:
    bus = ProgressBus()
    script = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent
        from concord.orchestrator.progress.peers import PeerLink
        from concord.store.config import Settings

        async def main():
            bus = ProgressBus()
            async with PeerLink(bus, Settings(home=Path({str(tmp_path)!r}))):
                for n in range(20):
                    bus.publish(ProgressEvent("d-1", "expert_answered", n, "muffin", {{"tokens": n}}))
                bus.publish(ProgressEvent("d-1", "verdict", 20))

        asyncio.run(main())
    """)
    async with PeerLink(bus, Settings(home=tmp_path)) as link:
        events = await collecting(bus, "d-1", 21)
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=ROOT)
        assert await asyncio.wait_for(child.wait(), WAIT) == 0
        assert await received(events) == [("expert_answered", n) for n in range(20)] + [("verdict", 20)]
    assert list(link.directory.iterdir()) == []


def test_every_serve_worker_delivers_events_published_by_another_process(tmp_path: Path) -> None:
    """Subscriptions spread over two `concord serve` workers all see a run published from outside them."""
    home = tmp_path / "home"

    async def prepare() -> str:
        stores = await open_stores(Settings(home=home))
        try:
            return await build_dialogue(stores.dialogues, 2)
        finally:
            await stores.close()

    dialogue_id = asyncio.run(prepare())
    added = subprocess.run(
        concord("tokens", "add", "--tenant", "local", "--scopes", "read", "--json"),
        env=environment(home, "http://127.0.0.1:9"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    token = json.loads(added.stdout)["token"]
    port = free_port()
    channel = PeerLink(ProgressBus(), Settings(home=home)).directory

    async def subscribe(kinds: list[str]) -> None:
        async with websockets.connect(
            f"ws://{HOST}:{port}/graphql",
            subprotocols=["graphql-transport-ws"],
            additional_headers={"Authorization": f"Bearer {token}"},
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"d": dialogue_id}}}
                )
            )
            while (message := json.loads(await ws.recv()))["type"] == "next":
                assert "errors" not in message["payload"], message
                kinds.append(message["payload"]["data"]["dialogueEvents"]["kind"])
            assert message["type"] == "complete", message

    async def watch() -> list[list[str]]:
        bus = ProgressBus()
        async with PeerLink(bus, Settings(home=home)):
            await wait_for(lambda: len(list(channel.glob("*.sock"))) == 3, "the serve workers did not link")
            streams: list[list[str]] = [[] for _ in range(6)]
            listening = asyncio.gather(*(subscribe(kinds) for kinds in streams))
            deadline = time.monotonic() + WAIT
            while not all(streams):  # until every subscription listens, whichever worker accepted it
                assert time.monotonic() < deadline and not listening.done(), streams
                bus.publish(ProgressEvent(dialogue_id, "round_started", 0))
                await asyncio.sleep(0.05)
            bus.publish(ProgressEvent(dialogue_id, "verdict", 0))
            await asyncio.wait_for(listening, WAIT)
            return streams

    with served(home, port, workers=2):
        streams = asyncio.run(watch())
    assert list(channel.iterdir()) == []  # stopped workers take their sockets with them
    for kinds in streams:
        assert kinds[-1] == "verdict" and set(kinds[:-1]) == {"round_started"}, kinds


async def test_a_cli_run_publishes_its_progress_to_linked_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    channel = PeerLink(ProgressBus(), Settings(home=home)).directory
    channel.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listening:
        listening.bind(str(channel / f"{os.getpid()}-listener.sock"))
        transport, listener = await asyncio.get_running_loop().create_datagram_endpoint(Listener, sock=listening)
        run = await asyncio.create_subprocess_exec(
            *concord(
                "run",
                "--question",
                "Should progress cross processes?",
                "--pool",
                str(ROOT / "orchestrator" / "demo-pool.json"),
                "--provider",
                "sim",
                "--seed",
                "3",
                "--max-rounds",
                "2",
                "--out",
                str(tmp_path / "out"),
                "--quiet",
                "--json",
            ),
            env=environment(home, "http://127.0.0.1:9"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(run.communicate(), WAIT)
        assert run.returncode == 3, err.decode()  # the verdict is forced at the 2-round cap
        await wait_for(
            lambda: listener.events and listener.events[-1]["kind"] in ("verdict", "dialogue_stopped"),
            "the run's last event never arrived",
        )
        transport.close()
    kinds = [e["kind"] for e in listener.events]
    assert {e["dialogue_id"] for e in listener.events} == {json.loads(out)["dialogue_id"]}
    assert kinds[0] == "dialogue_started" and kinds.count("round_started") == kinds.count("round_closed") >= 1, kinds
    assert "expert_answered" in kinds, kinds
