"""`concord`: run, resume, show, import, export, lint, audit, keys, store, tokens, serve, schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from concord.orchestrator.engine.providers import make_provider
from concord.orchestrator.engine.run import Orchestrator, RunSettings
from concord.orchestrator.panel.pools import PoolError, load_pool
from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.progress.peers import PeerLink
from concord.orchestrator.progress.terminal import ProgressView
from concord.store.config import Settings
from concord.store.errors import StoreError
from concord.store.factory import Stores, open_stores

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: one clear line, exit code 2, nothing written."""


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """Print one JSON object with --json, else the human text."""
    print(json.dumps(data, indent=2, default=str) if args.json else text)


async def with_stores(action: Callable[[Stores], Awaitable[int]], *, principal: str | None = None) -> int:
    """Open the configured stores around one action."""
    stores = await open_stores(principal=principal)
    try:
        return await action(stores)
    finally:
        await stores.close()


# --- run / resume / show -----------------------------------------------------------------


def judge_provider_for(settings: RunSettings) -> Any:
    """The model behind `--judge llm` (Anthropic), or None for the rules judge."""
    if settings.judge != "llm":
        return None
    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise UsageError("--judge llm needs ANTHROPIC_API_KEY in the environment")
    return make_provider("anthropic", base_url=os.environ.get("ANTHROPIC_BASE_URL"))


def provider_for(name: str, settings: RunSettings) -> Any:
    """The agent provider a run uses, with a clear error for missing configuration."""
    if name == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise UsageError("--provider anthropic needs ANTHROPIC_API_KEY in the environment")
    if name == "replay":
        if not settings.replay_dir or not Path(settings.replay_dir).is_dir():
            raise UsageError("--provider replay needs --replay DIR, a recorded dialogue directory")
        return make_provider("replay", directory=Path(settings.replay_dir))
    if name == "sim":
        return make_provider("sim", seed=settings.seed)
    return make_provider(name, base_url=os.environ.get("ANTHROPIC_BASE_URL"))


async def follow_run(orchestrator: Orchestrator, dialogue_id: str, quiet: bool) -> Any:
    """Run a dialogue while the progress view follows it."""
    view = None if quiet else asyncio.create_task(ProgressView().follow(orchestrator.bus, dialogue_id))
    await asyncio.sleep(0)
    try:
        return await orchestrator.run(dialogue_id)
    finally:
        if view is not None:
            await asyncio.sleep(0)
            view.cancel()


def cmd_run(args: argparse.Namespace) -> int:
    if not args.question or not args.question.strip():
        raise UsageError("--question must not be empty")
    try:
        pool = load_pool(Path(args.pool))
    except PoolError as exc:
        raise UsageError(str(exc).replace("\n", "; ")) from exc
    settings = RunSettings(
        provider=args.provider,
        judge=args.judge,
        model=args.model,
        max_rounds=args.max_rounds,
        panel_size=args.panel_size,
        seed=args.seed,
        concurrency=args.concurrency,
        budget_tokens=args.budget_tokens,
        replay_dir=str(Path(args.replay).resolve()) if args.replay else None,
    )
    provider, judge = provider_for(args.provider, settings), judge_provider_for(settings)

    async def action(stores: Stores) -> int:
        bus = ProgressBus()
        orchestrator = Orchestrator(stores.dialogues, provider, bus=bus, judge_provider=judge)
        try:
            async with PeerLink(bus, stores.settings):  # `concord serve` subscribers see this run too
                dialogue_id = await orchestrator.create(args.question, pool, settings, Path(args.out), title=args.title)
                result = await follow_run(orchestrator, dialogue_id, args.quiet or args.json)
        finally:
            await provider.aclose()
            if judge is not None:
                await judge.aclose()
        emit(args, result.to_json(), describe_result(result))
        return 0

    return asyncio.run(with_stores(action))


def describe_result(result: Any) -> str:
    """Human summary of a finished run."""
    lines = [f"dialogue {result.dialogue_id}: {result.status} after {result.rounds} round(s)"]
    if result.simulated:
        lines.append("(simulated panel: answers are generated offline, not by a model)")
    if result.verdict is not None and result.verdict.forced:
        lines.append(f"verdict forced: {result.verdict.warning}")
    lines.append(f"prompt and answer files: {result.directory}")
    lines.append(f"tokens used: {result.tokens}")
    return "\n".join(lines)


def cmd_resume(args: argparse.Namespace) -> int:
    async def action(stores: Stores) -> int:
        dialogue = await stores.dialogues.get_dialogue(args.dialogue_id)
        settings = RunSettings.from_json(dialogue.settings)
        provider, judge = provider_for(settings.provider, settings), judge_provider_for(settings)
        bus = ProgressBus()
        orchestrator = Orchestrator(stores.dialogues, provider, bus=bus, judge_provider=judge)
        try:
            async with PeerLink(bus, stores.settings):
                result = await follow_run(orchestrator, args.dialogue_id, args.quiet or args.json)
        finally:
            await provider.aclose()
            if judge is not None:
                await judge.aclose()
        emit(args, result.to_json(), describe_result(result))
        return 0

    return asyncio.run(with_stores(action))


def cmd_show(args: argparse.Namespace) -> int:
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
        return 0

    return asyncio.run(with_stores(action))


# --- import / export / lint / compare ------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from concord.orchestrator.blue.importer import format_import, import_dialogue

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")

    async def action(stores: Stores) -> int:
        result = await import_dialogue(stores.dialogues, directory)
        emit(args, result.to_json(), format_import(result))
        return 0

    return asyncio.run(with_stores(action))


def cmd_export(args: argparse.Namespace) -> int:
    from concord.orchestrator.blue.exporter import export_dialogue, format_export

    async def action(stores: Stores) -> int:
        result = await export_dialogue(stores.dialogues, args.dialogue_id, Path(args.directory))
        emit(args, result.to_json(), format_export(result))
        return 0

    return asyncio.run(with_stores(action))


def cmd_lint(args: argparse.Namespace) -> int:
    from concord.orchestrator.blue.lint import LintError, format_lint, lint_directory

    try:
        report = lint_directory(Path(args.directory))
    except LintError as exc:
        raise UsageError(str(exc)) from exc
    emit(args, report.to_json(), format_lint(report))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from concord.orchestrator.blue.compare import compare_recorded, format_comparison

    async def action(stores: Stores) -> int:
        comparison = compare_recorded(await stores.dialogues.load_partition(args.dialogue_id))
        emit(args, comparison.to_json(), format_comparison(comparison))
        return 0

    return asyncio.run(with_stores(action))


# --- audit, keys, store ----------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from concord.store.checkpoint import load_signing_key, read_checkpoint, verify_checkpoint
    from concord.store.errors import NotFound

    async def action(stores: Stores) -> int:
        heads: dict[str, tuple[int, str]] = {}
        if args.checkpoint:
            key = load_signing_key(stores.settings.checkpoint_key)
            heads = verify_checkpoint(read_checkpoint(Path(args.checkpoint)), key, stores.dialogues.tenant)
        ids = (
            [args.dialogue_id] if args.dialogue_id else sorted(set(await stores.analytics.dialogue_ids()) | set(heads))
        )
        results = []
        for dialogue_id in ids:
            try:
                dialogue = await stores.dialogues.get_dialogue(dialogue_id)
            except NotFound:
                results.append(
                    {
                        "dialogue_id": dialogue_id,
                        "ok": False,
                        "entries": 0,
                        "files_checked": 0,
                        "problem": "in the checkpoint but gone from the store (deleted)",
                    }
                )
                continue
            root = Path(dialogue.output_dir) if dialogue.output_dir else None
            report = await stores.dialogues.verify_audit(
                dialogue_id, files_root=root, checkpoint=heads.get(dialogue_id)
            )
            results.append(vars(report))
        ok = all(r["ok"] for r in results)
        lines = [
            f"{r['dialogue_id']}: {'ok' if r['ok'] else 'BROKEN'} ({r['entries']} entries, {r['files_checked']} files)"
            + ("" if r["ok"] else f" - {r['problem']}")
            for r in results
        ]
        emit(args, {"ok": ok, "checkpoint": args.checkpoint, "dialogues": results}, "\n".join(lines) or "no dialogues")
        return 0 if ok else 1

    return asyncio.run(with_stores(action))


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from concord.store.checkpoint import create_signing_key, load_signing_key, sign_checkpoint

    async def action(stores: Stores) -> int:
        key_path = stores.settings.checkpoint_key
        if not key_path.exists():
            create_signing_key(key_path)
        heads = await stores.analytics.chain_heads()
        document = sign_checkpoint(load_signing_key(key_path), stores.dialogues.tenant, heads)
        out = Path(args.out)
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        emit(
            args,
            {"path": str(out), "dialogues": len(heads)},
            f"signed checkpoint of {len(heads)} dialogue chain(s) -> {out}",
        )
        return 0

    return asyncio.run(with_stores(action))


def cmd_keys_init(args: argparse.Namespace) -> int:
    from concord.store.crypto.keys import LocalKeyProvider

    settings = Settings.from_env()
    LocalKeyProvider.create_key_file(settings.key_file)
    emit(
        args,
        {"key_file": str(settings.key_file)},
        f"created {settings.key_file} (mode 0600); back it up: it cannot be recreated",
    )
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    async def action(stores: Stores) -> int:
        version = await stores.dialogues.rotate_key(args.dialogue)
        emit(
            args,
            {"dialogue_id": args.dialogue, "version": version},
            f"{args.dialogue}: new data key v{version}; run `concord keys sweep --dialogue {args.dialogue}`",
        )
        return 0

    return asyncio.run(with_stores(action))


def cmd_keys_sweep(args: argparse.Namespace) -> int:
    async def action(stores: Stores) -> int:
        ids = [args.dialogue] if args.dialogue else await stores.analytics.dialogue_ids()
        counts = {dialogue_id: await stores.dialogues.sweep_keys(dialogue_id) for dialogue_id in ids}
        emit(
            args,
            {"rewritten": counts},
            "\n".join(f"{k}: {v} item(s) re-encrypted" for k, v in counts.items()) or "nothing to sweep",
        )
        return 0

    return asyncio.run(with_stores(action))


def cmd_store_init(args: argparse.Namespace) -> int:
    settings = Settings.from_env()

    async def run() -> int:
        if settings.store == "dynamodb":
            from concord.store.backends.dynamodb import DynamoDBBackend

            backend = DynamoDBBackend(settings.table)
            await backend.open()
            try:
                created = await backend.create_table()
            finally:
                await backend.close()
            text = f"table {settings.table} {'created' if created else 'already exists'}"
        else:
            stores = await open_stores(settings)
            await stores.close()
            text = f"database {settings.database} ready"
        if settings.key_provider == "local" and not settings.key_file.exists():
            from concord.store.crypto.keys import LocalKeyProvider

            LocalKeyProvider.create_key_file(settings.key_file)
            text += f"; created key file {settings.key_file}"
        emit(args, {"store": settings.store, "message": text}, text)
        return 0

    return asyncio.run(run())


# --- API: tokens, serve, schema --------------------------------------------------------------


def cmd_tokens_add(args: argparse.Namespace) -> int:
    from concord.resolvers.tokens import add_token

    settings = Settings.from_env()
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    token = add_token(settings.tokens_file, args.tenant, scopes, args.name)
    emit(
        args,
        {"token": token, "tenant": args.tenant, "scopes": scopes},
        f"{token}\n(shown once; only its hash is stored in {settings.tokens_file})",
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from concord.orchestrator.serving.server import serve

    serve(
        Settings.from_env(),
        host=args.host,
        port=args.port,
        dev=args.dev,
        workers=args.workers,
        starter="concord.orchestrator.serving.starter:make_starter",
    )
    return 0


def cmd_schema_export(args: argparse.Namespace) -> int:
    from concord.resolvers.schema import write_sdl

    path = write_sdl(Path(args.output)) if args.output else write_sdl()
    emit(args, {"path": str(path)}, f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from concord.orchestrator.cli.demo import run_demo

    return run_demo(serve_after=not args.no_serve, port=args.port)


# --- parser -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object")
    top = argparse.ArgumentParser(prog="concord", description="Run and audit alignment dialogues.")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run a dialogue")
    run.add_argument("--question", required=True)
    run.add_argument("--pool", required=True, help="expert-pool.json")
    run.add_argument("--title")
    run.add_argument("--provider", choices=["anthropic", "sim", "replay"], default="sim")
    run.add_argument("--replay", help="recorded dialogue directory for --provider replay")
    run.add_argument("--judge", choices=["rules", "llm"], default="rules")
    run.add_argument("--model", default="claude-sonnet-4-6")
    run.add_argument("--max-rounds", type=int, default=10)
    run.add_argument("--panel-size", type=int)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--concurrency", type=int, default=8)
    run.add_argument("--budget-tokens", type=int)
    run.add_argument("--out", default="dialogues")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", parents=[common], help="continue an interrupted dialogue")
    resume.add_argument("dialogue_id")
    resume.add_argument("--quiet", action="store_true")
    resume.set_defaults(func=cmd_resume)

    show = sub.add_parser("show", parents=[common], help="scoreboard and tensions of a dialogue")
    show.add_argument("dialogue_id")
    show.set_defaults(func=cmd_show)

    imp = sub.add_parser("import", parents=[common], help="import a recorded dialogue directory")
    imp.add_argument("directory")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", parents=[common], help="write a dialogue back as a directory")
    exp.add_argument("dialogue_id")
    exp.add_argument("directory")
    exp.set_defaults(func=cmd_export)

    lint = sub.add_parser("lint", parents=[common], help="report format drift in a dialogue directory")
    lint.add_argument("directory")
    lint.set_defaults(func=cmd_lint)

    compare = sub.add_parser("compare", parents=[common], help="rules judge vs the recorded scoreboard")
    compare.add_argument("dialogue_id")
    compare.set_defaults(func=cmd_compare)

    audit = sub.add_parser("audit", help="audit chain").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", parents=[common], help="verify audit chains and recorded files")
    verify.add_argument("dialogue_id", nargs="?")
    verify.add_argument("--checkpoint", help="a signed checkpoint every chain must still extend")
    verify.set_defaults(func=cmd_audit_verify)
    checkpoint = audit.add_parser("checkpoint", parents=[common], help="sign every dialogue's chain head")
    checkpoint.add_argument("--out", default="concord-checkpoint.json")
    checkpoint.set_defaults(func=cmd_audit_checkpoint)

    keys = sub.add_parser("keys", help="key management").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("init", parents=[common], help="create the local key file").set_defaults(func=cmd_keys_init)
    rotate = keys.add_parser("rotate", parents=[common], help="new data key version for a dialogue")
    rotate.add_argument("--dialogue", required=True)
    rotate.set_defaults(func=cmd_keys_rotate)
    sweep = keys.add_parser("sweep", parents=[common], help="re-encrypt items under older key versions")
    sweep.add_argument("--dialogue")
    sweep.set_defaults(func=cmd_keys_sweep)

    store = sub.add_parser("store", help="storage").add_subparsers(dest="store_command", required=True)
    store.add_parser("init", parents=[common], help="create the database or table").set_defaults(func=cmd_store_init)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="tokens_command", required=True)
    add = tokens.add_parser("add", parents=[common], help="create a bearer token (printed once)")
    add.add_argument("--tenant", required=True)
    add.add_argument("--scopes", default="read")
    add.add_argument("--name", default="token")
    add.set_defaults(func=cmd_tokens_add)

    serve = sub.add_parser("serve", help="serve the GraphQL API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--dev", action="store_true", help="enable GraphiQL and introspection")
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve, json=False)

    schema = sub.add_parser("schema", help="GraphQL schema").add_subparsers(dest="schema_command", required=True)
    export_sdl = schema.add_parser("export", parents=[common], help="write schema/schema.graphql")
    export_sdl.add_argument("--output")
    export_sdl.set_defaults(func=cmd_schema_export)

    demo = sub.add_parser("demo", help="run a simulated dialogue and serve it (make run)")
    demo.add_argument("--no-serve", action="store_true")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=cmd_demo, json=False)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `concord` console script."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"concord: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, ValueError) as exc:
        print(f"concord: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"concord: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("concord: interrupted; the dialogue can be continued with `concord resume`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
