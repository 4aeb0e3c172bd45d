"""`concord run`, `resume`, `show` and `list`: running dialogues and reading where they stand."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from concord.orchestrator.cli.command import ExitCode, emit, with_stores
from concord.orchestrator.cli.parser import Commands, UsageError, add_command, positive_int, share
from concord.orchestrator.engine.grounding import collect_grounding
from concord.orchestrator.engine.providers import Provider, make_provider
from concord.orchestrator.engine.run import Orchestrator, RunResult, RunSettings
from concord.orchestrator.panel.pools import load_pool
from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.progress.peers import PeerLink
from concord.orchestrator.progress.terminal import ProgressView
from concord.store.analytics import MAX_PAGE, AnalyticsStore
from concord.store.config import Settings
from concord.store.factory import Stores
from concord.store.model import DIALOGUE_STATUSES, Dialogue
from concord.store.rules import DEFAULT_QUORUM


def add_commands(commands: Commands) -> None:
    """Add run, resume, show and list."""
    run = add_command(commands, "run", "run a dialogue to its verdict")
    run.add_argument("--question", required=True, help="the question the panel deliberates on")
    run.add_argument("--pool", required=True, metavar="FILE", help="the expert pool (expert-pool.json)")
    run.add_argument("--title", help="the dialogue's title (default: the question)")
    run.add_argument(
        "--provider",
        choices=["anthropic", "sim", "replay"],
        default="sim",
        help="who answers: the Anthropic API, the offline simulated panel, or a recorded dialogue (default: %(default)s)",
    )
    run.add_argument("--replay", metavar="DIR", help="the recorded dialogue directory --provider replay answers from")
    run.add_argument(
        "--judge",
        choices=["rules", "llm"],
        default="rules",
        help="who scores the experts: the deterministic rules or an Anthropic model (default: %(default)s)",
    )
    run.add_argument("--model", default="claude-sonnet-4-6", help="the experts' model (default: %(default)s)")
    run.add_argument(
        "--max-rounds",
        type=positive_int,
        default=10,
        metavar="N",
        help="round cap; a verdict at the cap is forced (default: %(default)s)",
    )
    run.add_argument(
        "--panel-size", type=positive_int, metavar="N", help="experts per round (default: the whole pool, at most 12)"
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the panel sampler and the sim (default: %(default)s)")
    run.add_argument(
        "--concurrency", type=positive_int, default=8, metavar="N", help="agent calls at once (default: %(default)s)"
    )
    run.add_argument(
        "--quorum",
        type=share,
        default=DEFAULT_QUORUM,
        metavar="SHARE",
        help="share of the seated panel that must answer for a round to count toward convergence (default: 2/3)",
    )
    run.add_argument(
        "--budget-tokens", type=positive_int, metavar="N", help="stop the run once it used this many tokens"
    )
    run.add_argument(
        "--out", default="dialogues", metavar="DIR", help="where the dialogue's directory goes (default: %(default)s)"
    )
    run.add_argument(
        "--pause-after-round",
        action="store_true",
        help="stop after every round (exit 5) so a moderator can read it and add a `concord note`; resume continues",
    )
    run.add_argument(
        "--ground",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="text files, or directories of them, every expert reads first; copied into the dialogue folder",
    )
    run.add_argument(
        "--anonymous", action="store_true", help="show peers as Expert A, Expert B, ... without names or roles"
    )
    run.add_argument("--quiet", action="store_true", help="no live progress view")
    run.set_defaults(func=run_command)

    resume = add_command(
        commands, "resume", "continue an interrupted or paused dialogue; answers already received are reused"
    )
    resume.add_argument("dialogue_id", help="the dialogue to continue")
    resume.add_argument(
        "--no-pause", action="store_true", help="run to the end even if the dialogue pauses after every round"
    )
    resume.add_argument("--quiet", action="store_true", help="no live progress view")
    resume.set_defaults(func=resume_command)

    note = add_command(commands, "note", "add a moderator note that the next round's prompts (and later ones) carry")
    note.add_argument("dialogue_id", help="the dialogue the note is for")
    note.add_argument("text", help="the note, as the panel will read it")
    note.set_defaults(func=note_command)

    show = add_command(commands, "show", "print a dialogue's scoreboard and tensions")
    show.add_argument("dialogue_id", help="the dialogue to show")
    show.set_defaults(func=show_command)

    listing = add_command(commands, "list", "list the tenant's dialogues, oldest update first")
    listing.add_argument("--status", choices=DIALOGUE_STATUSES, help="only dialogues with this status")
    listing.set_defaults(func=list_command)


# --- run / resume ----------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """`concord run`: validate everything, then create the dialogue and run it."""
    if not args.question.strip():
        raise UsageError("--question must not be empty")
    if args.replay and args.provider != "replay":
        raise UsageError("--replay DIR answers only with --provider replay")
    pool = load_pool(Path(args.pool))
    grounding = collect_grounding(args.ground)
    run_settings = RunSettings(
        provider=args.provider,
        judge=args.judge,
        model=args.model,
        max_rounds=args.max_rounds,
        panel_size=args.panel_size,
        seed=args.seed,
        concurrency=args.concurrency,
        budget_tokens=args.budget_tokens,
        quorum=args.quorum,
        pause_after_round=args.pause_after_round,
        replay_dir=str(Path(args.replay).resolve()) if args.replay else None,
        anonymous=args.anonymous,
    )
    settings = Settings.from_env()
    provider, judge = agents_for(run_settings, settings)

    async def action(stores: Stores) -> int:
        orchestrator = Orchestrator(stores.dialogues, provider, bus=ProgressBus(), judge_provider=judge)
        try:
            async with PeerLink(orchestrator.bus, settings):  # `concord serve` subscribers see this run too
                out = Path(args.out)
                dialogue_id = await orchestrator.create(
                    args.question, pool, run_settings, out, title=args.title, grounding=grounding
                )
                result = await follow_run(orchestrator, dialogue_id, quiet=args.quiet or args.json)
        finally:
            await close_agents(provider, judge)
        return finish(args, result)

    return asyncio.run(with_stores(settings, action))


def resume_command(args: argparse.Namespace) -> int:
    """`concord resume`: continue a dialogue with the settings it was started with."""
    settings = Settings.from_env()

    async def action(stores: Stores) -> int:
        dialogue = await stores.dialogues.get_dialogue(args.dialogue_id)
        provider, judge = agents_for(RunSettings.from_json(dialogue.settings), settings)
        orchestrator = Orchestrator(stores.dialogues, provider, bus=ProgressBus(), judge_provider=judge)
        try:
            async with PeerLink(orchestrator.bus, settings):
                result = await follow_run(
                    orchestrator,
                    args.dialogue_id,
                    quiet=args.quiet or args.json,
                    pause_after_round=False if args.no_pause else None,
                )
        finally:
            await close_agents(provider, judge)
        return finish(args, result)

    return asyncio.run(with_stores(settings, action))


def note_command(args: argparse.Namespace) -> int:
    """`concord note`: a moderator note for the next round, stored sealed and audited like any write."""

    async def action(stores: Stores) -> int:
        note = await stores.dialogues.add_note(args.dialogue_id, args.text)
        data = {"dialogue_id": args.dialogue_id, "round": note.round, "seq": note.seq}
        emit(args, data, f"note {note.seq} added to dialogue {args.dialogue_id}; round {note.round} on carries it")
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


def agents_for(run_settings: RunSettings, settings: Settings) -> tuple[Provider, Provider | None]:
    """The experts' provider and the llm judge's (None for the rules judge); UsageError for what is missing."""
    name = run_settings.provider
    if (name == "anthropic" or run_settings.judge == "llm") and not settings.anthropic_api_key:
        flag = "--provider anthropic" if name == "anthropic" else "--judge llm"
        raise UsageError(f"{flag} needs ANTHROPIC_API_KEY in the environment")
    if name == "replay":
        if not run_settings.replay_dir:
            raise UsageError("--provider replay needs --replay DIR, a recorded dialogue directory")
        provider = make_provider("replay", directory=Path(run_settings.replay_dir))
    elif name == "sim":
        provider = make_provider("sim", seed=run_settings.seed)
    else:
        provider = _anthropic(settings)
    return provider, _anthropic(settings) if run_settings.judge == "llm" else None


def _anthropic(settings: Settings) -> Provider:
    return make_provider("anthropic", api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url)


async def close_agents(provider: Provider, judge: Provider | None) -> None:
    """Release the agents' connections."""
    await provider.aclose()
    if judge is not None:
        await judge.aclose()


async def follow_run(
    orchestrator: Orchestrator, dialogue_id: str, *, quiet: bool, pause_after_round: bool | None = None
) -> RunResult:
    """Run a dialogue while the progress view follows it."""
    view = None if quiet else asyncio.create_task(ProgressView().follow(orchestrator.bus, dialogue_id))
    await asyncio.sleep(0)
    try:
        return await orchestrator.run(dialogue_id, pause_after_round=pause_after_round)
    finally:
        if view is not None:
            await asyncio.sleep(0)
            view.cancel()


def finish(args: argparse.Namespace, result: RunResult) -> int:
    """Print where the run ended and return its exit code."""
    emit(args, result.to_json(), describe_result(result))
    return outcome(result)


def outcome(result: RunResult) -> ExitCode:
    """0 converged, 3 verdict forced at the round cap, 4 stopped by the token budget, 5 paused, 1 otherwise."""
    if result.status == "budget_exceeded":
        return ExitCode.BUDGET_STOPPED
    if result.status == "paused":
        return ExitCode.PAUSED
    if result.verdict is not None and result.verdict.forced:
        return ExitCode.FORCED
    return ExitCode.OK if result.status == "converged" else ExitCode.ERROR


def describe_result(result: RunResult) -> str:
    """Human summary of a finished run."""
    lines = [f"dialogue {result.dialogue_id}: {result.status} after {result.rounds} round(s)"]
    if result.simulated:
        lines.append("(simulated panel: answers are generated offline, not by a model)")
    if result.status == "budget_exceeded":
        lines.append("stopped by its token budget; `concord resume` continues it")
    if result.status == "paused":
        lines.append(
            f"paused; `concord note {result.dialogue_id} TEXT` adds a moderator note, `concord resume` continues"
        )
    if result.verdict is not None and result.verdict.forced:
        lines.append(f"verdict forced: {result.verdict.warning}")
    lines.append(f"prompt and answer files: {result.directory}")
    lines.append(f"tokens used: {result.tokens}")
    return "\n".join(lines)


# --- show / list -----------------------------------------------------------------------------------------


def show_command(args: argparse.Namespace) -> int:
    """`concord show`: scoreboard and tensions of one dialogue."""
    from concord.orchestrator.blue.judge_files import render_scoreboard, render_tensions

    async def action(stores: Stores) -> int:
        snap = await stores.dialogues.load_partition(args.dialogue_id)
        data = {
            "dialogue_id": snap.dialogue.id,
            "title": snap.dialogue.title,
            "status": snap.dialogue.status,
            "rounds": [
                {
                    "round": r.number,
                    "velocity": r.velocity,
                    "converge_percent": r.converge_percent,
                    "w": r.totals.w,
                    "c": r.totals.c,
                    "t": r.totals.t,
                    "r": r.totals.r,
                    "score": r.totals.total,
                }
                for r in snap.rounds.values()
            ],
            "tensions": [{"id": t.id, "label": t.label, "status": t.status} for t in snap.of_kind("tension")],
        }
        text = f"{snap.dialogue.title} [{snap.dialogue.status}]\n\n{render_scoreboard(snap)}\n{render_tensions(snap)}"
        emit(args, data, text)
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


def list_command(args: argparse.Namespace) -> int:
    """`concord list`: every dialogue of the tenant (or those with one status), as a table or JSON."""

    async def action(stores: Stores) -> int:
        statuses = [args.status] if args.status else DIALOGUE_STATUSES
        found = [d async for d in dialogues_with(stores.analytics, statuses)]
        found.sort(key=lambda d: (d.updated_at, d.id))
        data = {"count": len(found), "dialogues": [_listed(d) for d in found]}
        emit(args, data, dialogue_table(found))
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


async def dialogues_with(
    analytics: AnalyticsStore, statuses: Iterable[str], *, page_size: int = MAX_PAGE
) -> AsyncIterator[Dialogue]:
    """Every dialogue with one of `statuses`, paging through the status index until it has no next page."""
    for status in statuses:
        cursor = None
        while True:
            page = await analytics.list_dialogues(status, limit=page_size, cursor=cursor)
            for dialogue in page.dialogues:
                yield dialogue
            if page.cursor is None:
                break
            cursor = page.cursor


def _listed(dialogue: Dialogue) -> dict[str, Any]:
    return {
        "id": dialogue.id,
        "status": dialogue.status,
        "rounds": dialogue.total_rounds,
        "created_at": dialogue.created_at,
        "updated_at": dialogue.updated_at,
        "title": dialogue.title,
    }


def dialogue_table(dialogues: list[Dialogue]) -> str:
    """One line per dialogue under a header, columns aligned; a sentence when there are none."""
    if not dialogues:
        return "no dialogues"
    rows = [("ID", "STATUS", "ROUNDS", "UPDATED", "TITLE")] + [
        (d.id, d.status, str(d.total_rounds), d.updated_at, d.title) for d in dialogues
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    )
