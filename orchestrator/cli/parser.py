"""The argument parser's parts: a parser whose errors are BadInput, and the shared options and value types."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any, NoReturn, TypeAlias

from concord.store.errors import BadInput

#: The subcommands of one parser level (argparse names its type privately).
Commands: TypeAlias = "argparse._SubParsersAction[CommandParser]"
#: The units a duration may have.
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UsageError(BadInput):
    """Bad input from the command line: one clear line, exit code 2, nothing written."""

    code = "usage"

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of exiting, so `main` reports it like any bad input."""

    def error(self, message: str) -> NoReturn:
        """Raise what argparse would print before exiting 2."""
        raise UsageError(f"{message} (see `{self.prog} --help`)", usage=self.format_usage())


def json_option() -> CommandParser:
    """The parent parser that gives a command `--json`."""
    parent = CommandParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parent


def add_command(
    commands: Commands, name: str, summary: str, *, json_output: bool = True, **options: Any
) -> CommandParser:
    """A subcommand whose one-line summary is both its entry in the list and its description; --json unless told."""
    parents = [json_option()] if json_output else []
    command = commands.add_parser(name, help=summary, description=_sentence(summary), parents=parents, **options)
    if not json_output:
        command.set_defaults(json=False)
    return command


def add_group(commands: Commands, name: str, summary: str) -> Commands:
    """A command with subcommands of its own (`concord keys init`), returned as their Commands."""
    group = commands.add_parser(name, help=summary, description=_sentence(summary))
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND", title="commands")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def share(text: str) -> float:
    """An argparse type: a share of the panel, a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]")
    return value


def _sentence(summary: str) -> str:
    return summary[0].upper() + summary[1:] + "."


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value


def duration(text: str) -> timedelta:
    """An argparse type: a whole positive number of minutes, hours, days or weeks (`90m`, `12h`, `30d`, `2w`)."""
    match = re.fullmatch(r"([0-9]+)([mhdw])", text.strip())
    if match is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a whole number of at least 1 and a unit, m, h, d or w (e.g. 12h or 30d)"
        )
    return timedelta(**{DURATION_UNITS[match[2]]: int(match[1])})
