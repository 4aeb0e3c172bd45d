"""`concord import`, `export`, `lint` and `compare`: dialogues as directories in the recorded (blue) layout."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from concord.orchestrator.cli.command import ExitCode, emit, with_stores
from concord.orchestrator.cli.parser import Commands, UsageError, add_command
from concord.store.config import Settings
from concord.store.factory import Stores


def add_commands(commands: Commands) -> None:
    """Add import, export, lint and compare."""
    imported = add_command(commands, "import", "import a recorded dialogue directory into the store")
    imported.add_argument("directory", help="the recorded dialogue directory (round-N/ folders)")
    imported.set_defaults(func=import_command)

    exported = add_command(commands, "export", "write a stored dialogue back as a directory in the same layout")
    exported.add_argument("dialogue_id", help="the dialogue to export")
    exported.add_argument("directory", help="where to write it")
    exported.set_defaults(func=export_command)

    lint = add_command(commands, "lint", "report marker counts, unknown markers and format drift in a directory")
    lint.add_argument("directory", help="the recorded dialogue directory to check")
    lint.set_defaults(func=lint_command)

    compare = add_command(commands, "compare", "score an imported dialogue with the rules judge, beside its record")
    compare.add_argument("dialogue_id", help="the imported dialogue")
    compare.set_defaults(func=compare_command)


def import_command(args: argparse.Namespace) -> int:
    """`concord import`: ingest a recorded directory (a re-import finds the same dialogue)."""
    from concord.orchestrator.blue.importer import format_import, import_dialogue

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")

    async def action(stores: Stores) -> int:
        result = await import_dialogue(stores.dialogues, directory)
        emit(args, result.to_json(), format_import(result))
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


def export_command(args: argparse.Namespace) -> int:
    """`concord export`: write a stored dialogue's files from the store alone."""
    from concord.orchestrator.blue.exporter import export_dialogue, format_export

    async def action(stores: Stores) -> int:
        result = await export_dialogue(stores.dialogues, args.dialogue_id, Path(args.directory))
        emit(args, result.to_json(), format_export(result))
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


def lint_command(args: argparse.Namespace) -> int:
    """`concord lint`: read a directory, change nothing."""
    from concord.orchestrator.blue.lint import format_lint, lint_directory

    report = lint_directory(Path(args.directory))
    emit(args, report.to_json(), format_lint(report))
    return ExitCode.OK


def compare_command(args: argparse.Namespace) -> int:
    """`concord compare`: the rules judge's scores next to the recorded scoreboard."""
    from concord.orchestrator.blue.compare import compare_recorded, format_comparison

    async def action(stores: Stores) -> int:
        comparison = compare_recorded(await stores.dialogues.load_partition(args.dialogue_id))
        emit(args, comparison.to_json(), format_comparison(comparison))
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))
