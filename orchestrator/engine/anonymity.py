"""Anonymous dialogues: one label per expert for a whole round, and the texts with every expert's name masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import ascii_uppercase

from concord.store.snapshot import Snapshot


def letters(index: int) -> str:
    """A, B, … Z, AA, AB, … for 0, 1, …"""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = ascii_uppercase[rest] + text
    return text


def label_letters(snap: Snapshot, number: int) -> dict[str, str]:
    """Slug -> letter for round `number`: the previous round's panel by sorted slug first, then every other expert."""
    previous = snap.rounds.get(number - 1)
    first = sorted({seat.slug for seat in previous.panel}) if previous else []
    rest = sorted(set(snap.experts) - set(first))
    return {slug: letters(i) for i, slug in enumerate([*first, *rest])}


def mask(text: str, names: Mapping[str, str]) -> str:
    """`text` with every expert's name (any case, whole words) replaced by the label `names` maps its slug to."""
    if not names:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(s) for s in sorted(names, key=len, reverse=True)) + r")\b", re.I)
    return pattern.sub(lambda m: names[m.group(1).lower()], text)
