"""The rules judge's W/C/T/R: what it counts in one expert's answer, and the weights, defined once in SCORING.

What is counted, per answering expert per round (absent experts get no score):
- perspectives: PERSPECTIVE and recommendation markers that made an entity; refinements: REFINEMENT
  markers that made one;
- resolutions: RESOLVED or RE:RESOLVE markers naming at least one known tension; concessions:
  CONCESSION and MOVE:CONCEDE markers;
- evidence and claims: the entities of those kinds; grounded: the author's other entities whose text
  cites a specific (a code span, a link, or a number of two digits or more);
- others: distinct entities of other experts the author's markers point at; named: distinct other
  experts of the dialogue the answer names ("Strudel's reframe", `to Strudel`).
Round totals are summed from these per-expert scores in code. `scoring_rule()` renders SCORING as the
text the judge files print, so the weights have no second copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from concord.store.model import Score

_GROUNDED = re.compile(r"`[^`\n]+`|https?://|\b[0-9]{2,}\b")


@dataclass(frozen=True)
class Term:
    """One weighted count in a score part: `weight` times the count named `count`, described as `meaning`."""

    weight: int
    count: str
    meaning: str


#: Each part of the score, W, C, T and R, as a weighted sum of counts of an answer.
SCORING: dict[str, tuple[Term, ...]] = {
    "W": (Term(3, "perspectives", "perspectives"), Term(2, "refinements", "refinements")),
    "C": (Term(2, "resolutions", "resolutions"), Term(1, "concessions", "concessions")),
    "T": (
        Term(2, "evidence", "evidence"),
        Term(1, "claims", "claims"),
        Term(1, "grounded", "entities citing specifics"),
    ),
    "R": (Term(1, "others", "other experts' entities referenced"), Term(1, "named", "other experts named")),
}


@dataclass
class Tally:
    """What one expert's answer contributed, counted for scoring."""

    perspectives: int = 0
    refinements: int = 0
    resolutions: int = 0
    concessions: int = 0
    evidence: int = 0
    claims: int = 0
    grounded: int = 0
    others: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        """Every count SCORING weighs, by name."""
        return {
            "perspectives": self.perspectives,
            "refinements": self.refinements,
            "resolutions": self.resolutions,
            "concessions": self.concessions,
            "evidence": self.evidence,
            "claims": self.claims,
            "grounded": self.grounded,
            "others": len(self.others),
            "named": len(self.named),
        }

    def score(self) -> Score:
        """W/C/T/R by SCORING."""
        counts = self.counts()
        w, c, t, r = (sum(term.weight * counts[term.count] for term in SCORING[part]) for part in "WCTR")
        return Score(w=w, c=c, t=t, r=r)


def cites_a_specific(text: str) -> bool:
    """True when a text cites something checkable: a code span, a link, or a number of two digits or more."""
    return _GROUNDED.search(text) is not None


def scoring_rule() -> str:
    """SCORING as one line of text: `W = 3·perspectives + 2·refinements; C = …`."""
    parts = []
    for part, terms in SCORING.items():
        sums = " + ".join(term.meaning if term.weight == 1 else f"{term.weight}·{term.meaning}" for term in terms)
        parts.append(f"{part} = {sums}")
    return "; ".join(parts)
