"""`concord demo` (`make run`): a simulated (or, with ANTHROPIC_API_KEY, live) dialogue, then the API serving it."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from rich.console import Console

from concord.orchestrator.cli.command import ExitCode
from concord.orchestrator.cli.parser import Commands, add_command, port_number
from concord.orchestrator.engine.providers import make_provider
from concord.orchestrator.engine.run import Orchestrator, RunResult, RunSettings
from concord.orchestrator.panel.pools import load_pool
from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.progress.terminal import ProgressView
from concord.store.config import Settings
from concord.store.factory import open_stores

DEMO_POOL = Path(__file__).resolve().parent.parent / "demo-pool.json"
DEMO_QUESTION = "How should a small team store deliberation records so they stay private, queryable and auditable?"


def add_commands(commands: Commands) -> None:
    """Add demo."""
    demo = add_command(
        commands, "demo", "run a simulated dialogue, then serve it with a fresh dev token (make run)", json_output=False
    )
    demo.add_argument("--no-serve", action="store_true", help="stop after the dialogue instead of serving it")
    demo.add_argument("--port", type=port_number, default=8000, help="port of the API (default: %(default)s)")
    demo.set_defaults(func=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    """`concord demo`."""
    return run_demo(Settings.from_env(), serve_after=not args.no_serve, port=args.port)


async def run_dialogue(settings: Settings, out_dir: Path) -> RunResult:
    """Run one demo dialogue to its verdict with live progress."""
    name = "anthropic" if settings.anthropic_api_key else "sim"
    provider = (
        make_provider("anthropic", api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url)
        if name == "anthropic"
        else make_provider("sim", seed=7)
    )
    stores = await open_stores(settings)
    try:
        orchestrator = Orchestrator(stores.dialogues, provider, bus=ProgressBus())
        run_settings = RunSettings(provider=name, panel_size=8, seed=7, max_rounds=6)
        dialogue_id = await orchestrator.create(
            DEMO_QUESTION, load_pool(DEMO_POOL), run_settings, out_dir, title="Demo: storing deliberation records"
        )
        view = asyncio.create_task(ProgressView().follow(orchestrator.bus, dialogue_id))
        await asyncio.sleep(0)
        result = await orchestrator.run(dialogue_id)
        await asyncio.sleep(0)
        view.cancel()
        return result
    finally:
        await provider.aclose()
        await stores.close()


def ready_query(dialogue_id: str) -> str:
    """A query that shows the dialogue, its tensions and the links out of each."""
    return (
        f'{{ dialogue(id: "{dialogue_id}") {{ title status rounds {{ number velocity convergePercent }} '
        f"tensions {{ id label status links(maxDepth: 2) {{ depth entity {{ id label }} }} }} }} }}"
    )


def run_demo(settings: Settings, *, serve_after: bool = True, port: int = 8000) -> int:
    """Run the demo dialogue, print where its files are, then serve it with a fresh dev token."""
    console = Console()
    result = asyncio.run(run_dialogue(settings, Path("dialogues")))
    console.print(
        f"\n[bold]{result.dialogue_id}[/]: {result.status} after {result.rounds} round(s)"
        + (" [yellow](simulated panel)[/]" if result.simulated else "")
    )
    console.print(f"prompt and answer files: {result.directory}")
    if not serve_after:
        return ExitCode.OK
    from concord.orchestrator.serving.server import WorkerApp, serve
    from concord.orchestrator.serving.starter import make_starter
    from concord.resolvers.tokens import add_token

    token = add_token(settings.tokens_file, settings.tenant, ["read", "write"], "demo")
    body = json.dumps({"query": ready_query(result.dialogue_id)})
    console.print(f"\ndev token (shown once): {token}")
    console.print(f"GraphiQL: http://127.0.0.1:{port}/graphql  (Authorization: Bearer <token>)")
    console.print(
        "try:\n" + f"curl -s http://127.0.0.1:{port}/graphql -H 'Authorization: Bearer {token}' "
        f"-H 'Content-Type: application/json' -d '{body}'",
        soft_wrap=True,
    )
    serve(WorkerApp(settings, dev=True, starter=make_starter), host="127.0.0.1", port=port)
    return ExitCode.OK
