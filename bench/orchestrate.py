"""One round's wall time against the agents' latency, and the orchestrator's own time per round.

The fake Messages API runs in its own process, as a real API would, so its work does not share
this process's interpreter with the orchestrator being measured.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from concord.orchestrator.engine.providers import AnthropicProvider, Call, SimProvider  # noqa: E402
from concord.orchestrator.engine.run import Orchestrator, RunSettings  # noqa: E402
from concord.orchestrator.panel.pools import parse_pool  # noqa: E402
from concord.orchestrator.progress.bus import ProgressBus  # noqa: E402
from concord.store.config import Settings  # noqa: E402
from concord.store.factory import open_stores  # noqa: E402
from tests.fake_anthropic import fake_server_process  # noqa: E402

LATENCY = 1.0
QUESTION = "How should a small team store deliberation records?"


def pool(size: int) -> object:
    """A synthetic pool with `size` distinct roles over all three tiers."""
    tiers = ["core", "adjacent", "adjacent", "wildcard"]
    return parse_pool(
        {
            "domain": "bench",
            "experts": [
                {"role": f"Specialist {n}", "tier": tiers[n % 4], "relevance": round(0.3 + 0.6 * (n % 7) / 6, 2)}
                for n in range(size)
            ],
        }
    )


async def one_round(provider: object, experts: int, concurrency: int, home: Path) -> tuple[float, float]:
    """(wall seconds of round 0, seconds spent waiting on the provider) for one fresh dialogue."""
    stores = await open_stores(Settings(home=home))
    waiting = 0.0
    inner = provider.complete  # type: ignore[attr-defined]

    async def timed(call: object) -> object:
        nonlocal waiting
        started = time.perf_counter()
        try:
            return await inner(call)
        finally:
            waiting += time.perf_counter() - started

    provider.complete = timed  # type: ignore[attr-defined]
    try:
        bus = ProgressBus()
        orchestrator = Orchestrator(stores.dialogues, provider, bus=bus)  # type: ignore[arg-type]
        settings = RunSettings(provider="bench", panel_size=experts, max_rounds=1, concurrency=concurrency)
        did = await orchestrator.create(QUESTION, pool(max(experts, 24)), settings, home / "out")
        marks: dict[str, float] = {}

        async def watch() -> None:
            async for event in bus.subscribe(did):
                if event.kind in ("round_started", "round_closed"):
                    marks[event.kind] = time.perf_counter()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        await orchestrator.run(did)
        await asyncio.wait_for(watcher, 10)
        return marks["round_closed"] - marks["round_started"], waiting
    finally:
        provider.complete = inner  # type: ignore[attr-defined]
        await stores.close()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with fake_server_process(log=root / "requests.jsonl", latency=LATENCY) as fake:
            provider = AnthropicProvider(api_key="bench-key", base_url=fake.base_url, max_retries=0, timeout=30)
            # One call first, as a long-running orchestrator would have made: the SDK's one-time set-up
            # (lazy imports, the HTTP client) is not part of a round.
            await provider.complete(Call("warm-up", "warm-up", "muffin", 0, "claude-sonnet-4-6", 16))
            wall, _ = await one_round(provider, 12, 12, root / "live")
            await provider.aclose()
        print(f"12 experts, provider latency L={LATENCY:.1f}s, concurrency 12: round wall time {wall:.2f}s")
        own = {}
        for experts in (6, 12, 24):
            sim = SimProvider(seed=1)
            wall_sim, waiting = await one_round(sim, experts, experts, root / f"sim{experts}")
            own[experts] = wall_sim
            print(
                f"{experts:>2} experts: orchestrator's own time per round {wall_sim * 1000:.0f} ms "
                f"(provider time {waiting * 1000:.0f} ms, summed over concurrent calls)"
            )
    ratio = wall / LATENCY
    print(
        f"BENCH orchestrate ratio={ratio:.2f} target=<=1.25 own_ms_6={own[6] * 1000:.0f} "
        f"own_ms_12={own[12] * 1000:.0f} own_ms_24={own[24] * 1000:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
