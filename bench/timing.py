"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """Fastest of several timed calls, in seconds (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


async def alternating(
    first: Callable[[], Any], second: Callable[[], Any], repeats: int
) -> tuple[list[float], list[float]]:
    """Times in seconds of `first` and `second` called in turn, so both see the same machine weather."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, seen in zip((first, second), times, strict=False):
            started = time.perf_counter()
            result = fn()
            if inspect.isawaitable(result):
                result = await result
            del result  # each call frees what it made inside its own time, not inside the next call's
            seen.append(time.perf_counter() - started)
    return times


#: A call counts as run at the machine's fast speed within this factor of the fastest call (speeds here differ by ~2x).
FAST_SLACK = 1.5


def pair_ratios(first: list[float], second: list[float], *, fast_only: bool = False) -> list[float]:
    """first/second for each pair `alternating` timed back to back; with `fast_only`, only pairs whose calls both ran
    within FAST_SLACK of their fastest."""
    fastest_first, fastest_second = min(first), min(second)
    return [
        a / b
        for a, b in zip(first, second, strict=True)
        if not fast_only or (a <= FAST_SLACK * fastest_first and b <= FAST_SLACK * fastest_second)
    ]
