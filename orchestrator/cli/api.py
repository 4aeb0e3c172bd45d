"""`concord serve` and `concord schema export`: the GraphQL API and its SDL."""

from __future__ import annotations

import argparse
from pathlib import Path

from concord.orchestrator.cli.command import ExitCode, emit
from concord.orchestrator.cli.parser import Commands, UsageError, add_command, add_group, port_number, positive_int
from concord.store.config import Settings


def add_commands(commands: Commands) -> None:
    """Add serve and the schema group."""
    serve = add_command(commands, "serve", "serve the GraphQL API over the configured store", json_output=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=port_number, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--dev", action="store_true", help="enable GraphiQL and introspection")
    serve.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="worker processes (default: %(default)s)"
    )
    serve.set_defaults(func=serve_command)

    schema = add_group(commands, "schema", "the GraphQL schema")
    export = add_command(schema, "export", "write the schema's SDL")
    export.add_argument(
        "--out",
        metavar="FILE",
        help="where to write it (default in a checkout: schema/schema.graphql; required otherwise)",
    )
    export.set_defaults(func=schema_export_command)


def serve_command(args: argparse.Namespace) -> int:
    """`concord serve`: until interrupted; startDialogue runs the agents Settings.api_provider names."""
    from concord.orchestrator.serving.server import WorkerApp, serve
    from concord.orchestrator.serving.starter import make_starter

    app = WorkerApp(Settings.from_env(), dev=args.dev, starter=make_starter)
    serve(app, host=args.host, port=args.port, workers=args.workers)
    return ExitCode.OK


def schema_export_command(args: argparse.Namespace) -> int:
    """`concord schema export`: to --out, or to the checkout's schema/ folder; never into an installed package."""
    from concord.resolvers.schema import SDL_PATH, write_sdl

    path = Path(args.out) if args.out else checkout_sdl_path(SDL_PATH)
    if path is None:
        raise UsageError("schema export needs --out FILE: this concord is installed, not run from a checkout")
    emit(args, {"path": str(write_sdl(path))}, f"wrote {path}")
    return ExitCode.OK


def checkout_sdl_path(sdl_path: Path) -> Path | None:
    """`sdl_path` when its schema folder sits in a source checkout (beside pyproject.toml), else None."""
    return sdl_path if (sdl_path.parent.parent / "pyproject.toml").is_file() else None
