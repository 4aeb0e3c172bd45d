"""Progress events crossing processes: API workers and CLI runs that share a CONCORD_HOME see each other's runs."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import websockets

from orchestrator.events import ProgressBus, ProgressEvent
from orchestrator.peers import PeerLink
from store.config import Settings
from store.factory import open_stores
from tests.graphql_helpers import build_dialogue
from tests.services import HOST, free_port
from tests.test_crash_resume import concord, environment
from tests.test_faults import ROOT, WAIT, served

SUBSCRIBE = "subscription($d: ID!) { dialogueEvents(dialogueId: $d) { kind round expert } }"


async def collecting(bus: ProgressBus, dialogue_id: str, count: int) -> asyncio.Task[list[tuple[str, int | None]]]:
    """A task gathering the next `count` events (kind, round) of a dialogue; returned once it listens."""

    async def collect() -> list[tuple[str, int | None]]:
        events = bus.subscribe(dialogue_id)
        return [(e.kind, e.round) for e in [await anext(events) for _ in range(count)]]

    task = asyncio.create_task(collect())
    while bus.subscribers(dialogue_id) == 0:
        await asyncio.sleep(0)
    return task


async def received(task: asyncio.Task[list[tuple[str, int | None]]]) -> list[tuple[str, int | None]]:
    """What a collecting task gathered; fails instead of waiting for ever."""
    return await asyncio.wait_for(task, WAIT)


class Listener(asyncio.DatagramProtocol):
    """Keeps every datagram sent to its socket, decoded."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.events.append(json.loads(data))


async def test_an_event_published_in_one_bus_reaches_the_subscribers_of_every_linked_bus(tmp_path: Path) -> None:
    first, second = ProgressBus(), ProgressBus()
    async with PeerLink(first, tmp_path) as one, PeerLink(second, tmp_path) as two:
        assert one.linked and two.linked
        here, there = await collecting(first, "d-1", 3), await collecting(second, "d-1", 3)
        for kind in ("round_started", "round_closed", "verdict"):
            first.publish(ProgressEvent("d-1", kind, 0))
        expected = [("round_started", 0), ("round_closed", 0), ("verdict", 0)]
        assert await received(here) == expected  # its own events once, not echoed back
        assert await received(there) == expected
        back = await collecting(first, "d-2", 1)
        second.publish(ProgressEvent("d-2", "dialogue_stopped", 1))
        assert await received(back) == [("dialogue_stopped", 1)]


async def test_link_files_are_private_and_removed_on_close(tmp_path: Path) -> None:
    async with PeerLink(ProgressBus(), tmp_path) as link:
        assert stat.S_IMODE(link.directory.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(link.path.stat().st_mode) and stat.S_IMODE(link.path.stat().st_mode) == 0o600
    assert not link.path.exists()


async def test_the_socket_of_a_process_that_died_is_cleared_and_publishing_goes_on(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, tmp_path) as link:
        dead = link.directory / "999999-dead.sock"
        orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        orphan.bind(str(dead))
        orphan.close()  # the file stays, as after a SIGKILL
        events = await collecting(bus, "d-1", 1)
        bus.publish(ProgressEvent("d-1", "verdict", 2))
        assert await received(events) == [("verdict", 2)]
        assert not dead.exists()


async def test_a_peer_that_is_slow_to_read_gets_every_event_in_order_later(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, tmp_path) as link:
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        idle.bind(str(link.directory / "slow.sock"))
        for n in range(50):  # far more than a Unix datagram queue holds (net.unix.max_dgram_qlen, often 10)
            bus.publish(ProgressEvent("d-1", "expert_answered", n))
        await asyncio.sleep(0.05)
        transport, listener = await asyncio.get_running_loop().create_datagram_endpoint(Listener, sock=idle)
        deadline = time.monotonic() + WAIT
        while len(listener.events) < 50:
            assert time.monotonic() < deadline, len(listener.events)
            await asyncio.sleep(0.01)
        transport.close()
    assert [e["round"] for e in listener.events] == list(range(50))


async def test_a_datagram_that_is_not_an_event_is_ignored(tmp_path: Path) -> None:
    bus = ProgressBus()
    async with PeerLink(bus, tmp_path) as link:
        events = await collecting(bus, "d-1", 1)
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for junk in (b"not json", b"[1, 2]", json.dumps({"dialogue_id": "d-1", "kind": 3}).encode(),
                     json.dumps({"dialogue_id": "d-1", "kind": "verdict", "extra": 1}).encode()):
            sender.sendto(junk, str(link.path))
        sender.sendto(json.dumps({"dialogue_id": "d-1", "kind": "verdict", "round": 1}).encode(), str(link.path))
        sender.close()
        assert await received(events) == [("verdict", 1)]


async def test_a_home_too_long_for_a_socket_path_keeps_events_in_process(tmp_path: Path) -> None:
    home = tmp_path / ("x" * 120)
    bus = ProgressBus()
    async with PeerLink(bus, home) as link:
        assert not link.linked
        events = await collecting(bus, "d-1", 1)
        bus.publish(ProgressEvent("d-1", "verdict", 0))
        assert await received(events) == [("verdict", 0)]


async def test_events_of_another_process_arrive_in_order(tmp_path: Path) -> None:
    bus = ProgressBus()
    script = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from orchestrator.events import ProgressBus, ProgressEvent
        from orchestrator.peers import PeerLink

        async def main():
            bus = ProgressBus()
            async with PeerLink(bus, Path({str(tmp_path)!r})):
                for n in range(20):
                    bus.publish(ProgressEvent("d-1", "expert_answered", n, "muffin", {{"tokens": n}}))
                bus.publish(ProgressEvent("d-1", "verdict", 20))

        asyncio.run(main())
    """)
    async with PeerLink(bus, tmp_path):
        events = await collecting(bus, "d-1", 21)
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=ROOT)
        assert await asyncio.wait_for(child.wait(), WAIT) == 0
        assert await received(events) == [("expert_answered", n) for n in range(20)] + [("verdict", 20)]
    assert list((tmp_path / "progress").iterdir()) == []


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
    added = subprocess.run(concord("tokens", "add", "--tenant", "local", "--scopes", "read", "--json"),
                           env=environment(home, "http://127.0.0.1:9"), cwd=ROOT, capture_output=True, text=True,
                           timeout=WAIT, check=False)
    assert added.returncode == 0, added.stderr
    token = json.loads(added.stdout)["token"]
    port = free_port()

    async def subscribe(received: list[str]) -> None:
        async with websockets.connect(f"ws://{HOST}:{port}/graphql", subprotocols=["graphql-transport-ws"],
                                      additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": SUBSCRIBE, "variables": {"d": dialogue_id}}}))
            while (message := json.loads(await ws.recv()))["type"] == "next":
                assert "errors" not in message["payload"], message
                received.append(message["payload"]["data"]["dialogueEvents"]["kind"])
            assert message["type"] == "complete", message

    async def watch() -> list[list[str]]:
        bus = ProgressBus()
        async with PeerLink(bus, home):
            deadline = time.monotonic() + WAIT
            while len(list((home / "progress").glob("*.sock"))) < 3:  # both workers and this test
                assert time.monotonic() < deadline, "the serve workers did not link their progress"
                await asyncio.sleep(0.05)
            received: list[list[str]] = [[] for _ in range(6)]
            streams = asyncio.gather(*(subscribe(r) for r in received))
            while not all(received):  # until every subscription is listening, wherever it was accepted
                assert time.monotonic() < deadline and not streams.done(), received
                bus.publish(ProgressEvent(dialogue_id, "round_started", 0))
                await asyncio.sleep(0.05)
            bus.publish(ProgressEvent(dialogue_id, "verdict", 0))
            await asyncio.wait_for(streams, WAIT)
            return received

    with served(home, port, workers=2):
        received = asyncio.run(watch())
    assert list((home / "progress").iterdir()) == []  # stopped workers take their sockets with them
    for kinds in received:
        assert kinds[-1] == "verdict" and set(kinds[:-1]) == {"round_started"}, kinds


async def test_a_cli_run_publishes_its_progress_to_linked_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "progress").mkdir(parents=True, mode=0o700)
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listening.bind(str(home / "progress" / "listener.sock"))
    transport, listener = await asyncio.get_running_loop().create_datagram_endpoint(Listener, sock=listening)
    run = await asyncio.create_subprocess_exec(
        *concord("run", "--question", "Should progress cross processes?", "--pool",
                 str(ROOT / "orchestrator" / "demo-pool.json"), "--provider", "sim", "--seed", "3", "--max-rounds", "2",
                 "--out", str(tmp_path / "out"), "--quiet", "--json"),
        env=environment(home, "http://127.0.0.1:9"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(run.communicate(), WAIT)
    assert run.returncode == 0, err.decode()
    dialogue_id = json.loads(out)["dialogue_id"]
    deadline = time.monotonic() + WAIT
    while not listener.events or listener.events[-1]["kind"] not in ("verdict", "dialogue_stopped"):
        assert time.monotonic() < deadline, [e["kind"] for e in listener.events]
        await asyncio.sleep(0.01)
    transport.close()
    kinds = [e["kind"] for e in listener.events]
    assert all(e["dialogue_id"] == dialogue_id for e in listener.events)
    assert kinds[0] == "dialogue_started" and kinds.count("round_started") == kinds.count("round_closed") >= 1, kinds
    assert "expert_answered" in kinds, kinds
