"""A seeded, offline stand-in for an expert: reads its prompt and writes a marker answer of its own.

The sim reads what a real agent would read in the prompt: its identity line (name and role) and
the rows of the tensions table (`| T0001 | label | status | author … |`). It cites those global
ids, resolves its own open tensions first, and signals convergence from round 2 on, so that a
panel of sims converges under the rules judge's authority rule: a RESOLVED from a tension's
author settles it, anyone else's marks it addressed until the whole panel signals converge.
Every sentence below is Concord's own; the answer's first line says it is simulated.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass

from concord.orchestrator.panel.pools import is_valid_pastry_name

OPEN_STATUSES = frozenset({"open", "addressed", "reopened"})
_KNOWN_STATUSES = OPEN_STATUSES | {"resolved", "accepted", "deferred", "superseded", "narrowed", "partially"}
_ROW = re.compile(r"^\|\s*\**(T\d{4})\**\s*\|(.*)$", re.MULTILINE)
_IDENTITY = re.compile(r"^You are (?P<name>\w+)\W[^,\n]*,\s+(?P<role>[^\n]+?)\s+in an?\s+\S+\s+dialogue", re.MULTILINE)
_ROUND = re.compile(r"\bThis is round (\d+)\b")
_WORD = re.compile(r"\w+")

_LABEL_HEADS = (
    "Explicit ownership",
    "A staged rollout",
    "Reversible defaults",
    "Measured baselines",
    "Narrow interfaces",
    "An error budget",
    "One source of truth",
    "Observable behaviour",
    "Incremental migration",
    "A clear escalation path",
    "Bounded scope",
    "Visible running costs",
    "Human review points",
    "Versioned contracts",
    "Least privilege",
    "A written exit plan",
)
_LABEL_TAILS = (
    "before automation",
    "for every change",
    "at the boundaries",
    "over cleverness",
    "as the first milestone",
    "from day one",
    "per team",
    "under real load",
)
_OPENERS = (
    "Seen from the {role} seat, {label} decides whether the rest of the plan survives real use.",
    "As {role}, I would put {label} ahead of any feature work.",
    "My experience as {role} says that {label} is where plans like this usually fail.",
    "The {role} view is simple: without {label}, every later decision rests on unchecked guesses.",
)
_SUPPORTS = (
    "Mistakes caught at this stage cost a fraction of what they cost after launch.",
    "It also gives the panel something concrete to measure instead of opinions to trade.",
    "Teams that skip it end up rebuilding the same safeguards under pressure.",
    "It keeps the first version small enough that we can still change our minds.",
    "Nothing here needs new tools, only a decision written down where everyone can see it.",
    "It turns a vague worry into a check that either passes or fails.",
)
_SECOND_BODIES = (
    "A smaller point, but one nobody has raised: it should be owned by a named person, not a group.",
    "It also deserves a review date, so that it does not quietly become permanent.",
    "This matters most for the parts that other teams depend on.",
)
_TENSION_LABELS = (
    ("speed", "safety"),
    ("central control", "team autonomy"),
    ("building our own", "adopting a standard"),
    ("consistency", "availability"),
    ("short-term cost", "long-term upkeep"),
    ("flexibility", "a simple mental model"),
    ("strict validation", "graceful degradation"),
    ("privacy", "observability"),
)
_TENSION_BODY = "The panel has not yet said which side wins when {a} and {b} pull in different directions."
_REFINEMENTS = (
    "The conflict shrinks once we agree it only matters for the parts other teams depend on.",
    "It becomes tractable if we decide it per component rather than once for everything.",
    "Most of it disappears when the default is reversible and the exception is written down.",
)
_CONCESSIONS = (
    "{author} is right here, and I drop my earlier objection.",
    "I accept {author}'s framing; my concern is covered by it.",
    "{author} showed the risk I worried about is smaller than I claimed.",
)
_RESOLUTIONS = (
    "Settled by making it an explicit, reviewable default.",
    "Closed: the panel's answer covers it with a named owner and a review date.",
    "Resolved by deciding it per component, as discussed.",
    "No longer open; the agreed plan handles both sides.",
)
_LATE_CONCESSION = "I accept where the panel has landed and have nothing left to block."
_UNPARSABLE = (
    "I have read everything from the last round and mostly agree with it, but this time I am "
    "answering in plain prose without any of the requested structure, so there is nothing here "
    "a parser could pick up."
)


@dataclass(frozen=True)
class TensionRow:
    """One row of the tensions table as the sim reads it from its prompt."""

    id: str
    label: str
    status: str
    author: str | None

    @property
    def is_open(self) -> bool:
        """Tell whether the tension still counts as open (open, addressed or reopened)."""
        return self.status in OPEN_STATUSES


def notice(seed: int) -> str:
    """Return the first line of every simulated answer, saying what wrote it."""
    return f"<!-- simulated answer: Concord's seeded sim panel (seed {seed}), not a language model -->"


def estimate_tokens(text: str) -> int:
    """Return a rough token count (four characters a token) for simulated usage figures."""
    return max(1, math.ceil(len(text) / 4))


def read_identity(prompt: str) -> tuple[str, str] | None:
    """Return the (name, role) of the prompt's identity line, if it has one."""
    match = _IDENTITY.search(prompt)
    return (match["name"], match["role"].strip()) if match else None


def read_round(prompt: str) -> int | None:
    """Return the round number the prompt states ("This is round N"), if any."""
    match = _ROUND.search(prompt)
    return int(match.group(1)) if match else None


def _status(cell: str) -> str | None:
    """Return the status word a table cell starts with, if it is one."""
    words = _WORD.findall(cell.lower())
    return words[0] if words and words[0] in _KNOWN_STATUSES else None


def _pastry(cell: str) -> str | None:
    """Return the first expert name written in a table cell."""
    return next((w.capitalize() for w in _WORD.findall(cell) if is_valid_pastry_name(w.capitalize())), None)


def read_tensions(prompt: str) -> list[TensionRow]:
    """Return the tensions-table rows found in a prompt, first occurrence of each id, in order.

    The status is the first cell (after the label) that starts with a status word; a row with
    none counts as open. The author is the first expert named in the cell after the status,
    else in any later cell.
    """
    rows: dict[str, TensionRow] = {}
    for match in _ROW.finditer(prompt):
        tension_id = match.group(1)
        if tension_id in rows:
            continue
        cells = [cell.strip() for cell in match.group(2).split("|")]
        label = cells[0].strip("* ") if cells else ""
        status_at = next((i for i, cell in enumerate(cells[1:], 1) if _status(cell)), None)
        status = _status(cells[status_at]) if status_at is not None else "open"
        after = cells[status_at + 1 :] if status_at is not None else cells[1:]
        author = next((name for name in map(_pastry, after) if name), None)
        rows[tension_id] = TensionRow(tension_id, label, status or "open", author)
    return list(rows.values())


def _rng(seed: int, expert: str, round: int, prompt: str) -> random.Random:
    """Return the random source of one answer, fixed by seed, expert, round and prompt."""
    key = f"{seed}\x00{expert.casefold()}\x00{round}\x00{prompt}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _perspective(rng: random.Random, number: int, role: str, taken: set[str]) -> str:
    """Write one PERSPECTIVE marker with a label not yet used in this answer."""
    label = f"{rng.choice(_LABEL_HEADS)} {rng.choice(_LABEL_TAILS)}"
    while label in taken:
        label = f"{rng.choice(_LABEL_HEADS)} {rng.choice(_LABEL_TAILS)}"
    taken.add(label)
    if number > 1:
        return f"[PERSPECTIVE P{number:02d}: {label}]\n{rng.choice(_SECOND_BODIES)}"
    opener = rng.choice(_OPENERS).format(role=role or "a panel member", label=label[0].lower() + label[1:])
    body = " ".join([opener, *rng.sample(_SUPPORTS, rng.randint(1, 2))])
    return f"[PERSPECTIVE P01: {label}]\n{body}"


def _tension(rng: random.Random) -> str:
    """Write one TENSION marker."""
    a, b = rng.choice(_TENSION_LABELS)
    return f"[TENSION T01: {a.capitalize()} versus {b}]\n{_TENSION_BODY.format(a=a, b=b)}"


def _engage(rng: random.Random, row: TensionRow | None, me: str) -> str:
    """Write a REFINEMENT or CONCESSION on a cited tension (untargeted when there is none)."""
    if row is None:
        return f"[CONCESSION: {_LATE_CONCESSION}]"
    if row.author and row.author.casefold() != me.casefold() and rng.random() < 0.5:
        text = rng.choice(_CONCESSIONS).format(author=row.author)
        return f"[CONCESSION to {row.author} on {row.id}: {text}]"
    return f"[REFINEMENT on {row.id}: {rng.choice(_REFINEMENTS)}]"


def _resolve(rng: random.Random, row: TensionRow) -> str:
    """Write a RESOLVED marker for one tension."""
    return f"[RESOLVED {row.id}: {rng.choice(_RESOLUTIONS)}]"


def simulate_answer(
    *, seed: int, expert: str, round: int, prompt: str, role: str = "", unparsable: bool = False
) -> str:
    """Write one expert's answer for a round from its prompt; the same inputs give the same text.

    Round 0: one or two perspectives and one tension. Round 1: maybe a new perspective, a
    refinement or concession on a cited tension, RESOLVED on its own open tensions and now and
    then on someone else's. Round 2 on: no new perspective, RESOLVED on every open tension,
    a concession or refinement, and [MOVE:CONVERGE]. `unparsable` gives prose with no marker.
    """
    rng = _rng(seed, expert, round, prompt)
    name = expert.capitalize()
    identity = read_identity(prompt)
    role = role or (identity[1] if identity else "")
    if unparsable:
        return f"{notice(seed)}\n{_UNPARSABLE}\n"
    rows = read_tensions(prompt)
    open_rows = [r for r in rows if r.is_open]
    own = [r for r in open_rows if r.author and r.author.casefold() == name.casefold()]
    others = [r for r in open_rows if r not in own]
    blocks: list[str] = []
    labels: set[str] = set()
    if round == 0:
        blocks.append(_perspective(rng, 1, role, labels))
        if rng.random() < 0.6:
            blocks.append(_perspective(rng, 2, role, labels))
        blocks.append(_tension(rng))
    elif round == 1:
        if rng.random() < 0.5:
            blocks.append(_perspective(rng, 1, role, labels))
        cited = rng.choice(others or rows) if rows else None
        blocks.append(_engage(rng, cited, name))
        closing = own + ([rng.choice(others)] if others and rng.random() < 0.3 else [])
        blocks.extend(_resolve(rng, row) for row in closing)
    else:
        cited = rng.choice(rows) if rows else None
        blocks.append(_engage(rng, cited, name))
        blocks.extend(_resolve(rng, row) for row in own + others)
        blocks.append("[MOVE:CONVERGE]")
    return notice(seed) + "\n" + "\n\n".join(blocks) + "\n\n---\n"


_ANSWER_HEADING = re.compile(r"^### \S+ (?P<name>[A-Z][A-Za-z]*[0-9]*)\b", re.MULTILINE)


def simulate_judgement(seed: int, prompt: str) -> str:
    """A judge's JSON assessment of the answers in a judge prompt, seeded (for the fake model server)."""
    rng = random.Random(f"{seed}:judge:{prompt}")
    names = list(dict.fromkeys(m["name"] for m in _ANSWER_HEADING.finditer(prompt)))
    experts = [
        {"name": name, **{part: rng.randint(2, 9) for part in "WCTR"}, "note": "simulated assessment"} for name in names
    ]
    return json.dumps({"experts": experts, "summary": "Simulated judge: the panel is narrowing its differences."})
