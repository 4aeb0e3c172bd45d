"""What every command shares: the stores it runs against, its one result (text or JSON) and its exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any

from concord.store.config import Settings
from concord.store.factory import Stores, open_stores


class ExitCode(IntEnum):
    """The exit codes of `concord` (README "Commands"): 0, 3, 4 and 5 say how a `run`/`resume` ended."""

    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    FORCED = 3
    BUDGET_STOPPED = 4
    PAUSED = 5
    INTERRUPTED = 130


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """Print one JSON object with --json, else the human text."""
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def print_error(code: str, message: str, *, as_json: bool, problems: list[dict[str, Any]] | None = None) -> None:
    """An error as {"error": {"code", "message"[, "problems"]}} on stdout with --json, else one line on stderr."""
    if as_json:
        error: dict[str, Any] = {"code": code, "message": message}
        if problems is not None:
            error["problems"] = problems
        print(json.dumps({"error": error}, indent=2))
    else:
        print(f"concord: {message}", file=sys.stderr)


async def with_stores(settings: Settings, action: Callable[[Stores], Awaitable[int]]) -> int:
    """Open the configured stores around one action."""
    async with await open_stores(settings) as stores:
        return await action(stores)
