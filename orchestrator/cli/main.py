"""`concord`: the console script. It maps Concord's own errors to exit codes and lets anything else (a bug) show.

Every command runs under umask 077, so whatever it creates (folders, files, SQLite's -wal/-shm) is owner-only.

0 converged / success   1 error   2 bad input   3 verdict forced at the round cap
4 stopped by the token budget   5 paused after a round   130 interrupted
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version

from concord.orchestrator.cli import admin, api, audit, blue, completion, demo, dialogues
from concord.orchestrator.cli.command import ExitCode, print_error
from concord.orchestrator.cli.parser import CommandParser, UsageError
from concord.store.config import Settings
from concord.store.errors import BadInput, ConcordError, ValidationFailed
from concord.store.private_files import loosened, private_umask


def build_parser() -> CommandParser:
    """The parser of every command."""
    root = CommandParser(prog="concord", description="Run and audit alignment dialogues over an encrypted store.")
    root.add_argument("--version", action="version", version=f"%(prog)s {version('concord')}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for group in (dialogues, blue, audit, admin, api, demo):
        group.add_commands(commands)
    completion.add_commands(commands, root)
    return root


def warn_about_loosened_modes() -> None:
    """One line on stderr for each of CONCORD_HOME, the key file and the database that others may access."""
    try:
        settings = Settings.from_env()
    except BadInput:
        return  # a command that reads the settings reports it
    database = settings.database
    sqlite_files = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    for line in loosened([settings.home, settings.key_file, *sqlite_files]):
        print(f"concord: warning: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command under an owner-only umask; its exit code."""
    previous_umask = private_umask()
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    finally:
        os.umask(previous_umask)


def _run(argv: list[str]) -> int:
    as_json = "--json" in argv  # before parsing succeeds, the only way to know how to report its error
    try:
        args = build_parser().parse_args(argv)
        as_json = args.json
        warn_about_loosened_modes()
        return int(args.func(args))
    except UsageError as exc:
        if exc.usage and not as_json:
            print(exc.usage, end="", file=sys.stderr)
        print_error(exc.code, str(exc), as_json=as_json)
        return ExitCode.BAD_INPUT
    except BadInput as exc:
        print_error(exc.code, str(exc), as_json=as_json)
        return ExitCode.BAD_INPUT
    except ValidationFailed as exc:
        print_error(exc.code, str(exc), as_json=as_json, problems=[p.to_json() for p in exc.problems])
        return ExitCode.ERROR
    except ConcordError as exc:
        print_error(exc.code, str(exc), as_json=as_json)
        return ExitCode.ERROR
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print_error("os_error", f"{exc.strerror or exc}{where}", as_json=as_json)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        print_error("interrupted", "interrupted; a dialogue can be continued with `concord resume`", as_json=as_json)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
