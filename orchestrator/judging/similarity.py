"""Lexical similarity of short texts: content words, Jaccard overlap and vocabulary novelty."""

from __future__ import annotations

import re

#: Letters kept per word: a crude stem, so "denormalize" and "denormalization" count as one word.
STEM_LENGTH = 6

_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    """
    a about after all also an and any are as at be been before being both but by can could did do
    does done each every for from had has have he her here his how i if in into is it its just may
    might more most must my no not of on only or our over per she should so such than that the their
    them then there these they this those to under very via vs versus was we were what when where
    which who whom why will with would you your
    """.split()
)


def content_words(text: str) -> frozenset[str]:
    """The distinct stemmed content words of a text: lowercased, stop words and 1-letter words dropped."""
    return frozenset(
        word[:STEM_LENGTH] for word in _WORD.findall(text.lower()) if len(word) > 1 and word not in _STOP_WORDS
    )


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|, 0.0 for two empty sets."""
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def novelty(words: frozenset[str], known: frozenset[str]) -> float:
    """Share of `words` absent from `known` (1.0 when every word is new, 0.0 for no words)."""
    return len(words - known) / len(words) if words else 0.0
