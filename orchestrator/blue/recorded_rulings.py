"""What a recording's judge ruled on its tensions, read from its own files, so an import can honour it.

A recorded judge closes tensions in its files, not only through expert markers: rfc-0058's
tensions.md resolves MACARON-T01 "in R1" and marks others SUPERSEDED or NARROWED, its verdict.md
lists every tension under "Resolved Tensions"; jira's tensions.md says "Resolved R1" and "Deferred
to RFC". Read here, each of these is a `Ruling` on a recorded id:

- sources: tensions.md (`### ID (Rn): label` sections, under `## RESOLVED`-style headings, with
  `**Status: …**` lines; or `| ID | Tension | Status |` rows), the tension rows of the context
  briefs in round-N prompts (`| T01 | **label** — … | Open | Muffin, Brioche |`: the judge's state
  after round N-1, with who raised each), and verdict.md's "Resolved Tensions" table;
- status: resolved for RESOLVED, SUPERSEDED, SUBSUMED, DEFERRED, ACCEPTED, ELIMINATED (none of them
  counts toward velocity, protocol §5); addressed for NARROWED, PARTIALLY …, REFINED; nothing for OPEN;
- round: the first `Rn` the ruling's text names ("Resolved in R1"), else the round whose state the
  file shows (a brief in round N: N-1; tensions.md: the latest round it names; verdict.md: the
  last round). None of these depends on how many rounds the directory holds beyond what the file
  says, so importing a recording in progress and again later gives what one import of it gives.

A recorded judge also merged duplicates under one id (jira merged 17 round-0 tensions into 7):
`merged_members` puts beside an id's alias the tensions its brief row's raisers wrote and those
whose labels match its recorded label, and a ruling on the id applies to the whole group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from concord.orchestrator.blue.aliases import MIN_LABEL_SCORE, Candidate
from concord.orchestrator.blue.markdown_tables import plain, read_tables
from concord.orchestrator.judging.similarity import content_words
from concord.orchestrator.judging.written_ids import NAMESPACED_IN_PROSE, parse_reference

_SECTION = re.compile(rf"^(#{{2,6}})\s+(?P<id>{NAMESPACED_IN_PROSE}|T[0-9]{{2}})\b(?:\s*\(R[0-9]+\))?", re.MULTILINE)
_GROUP_HEADING = re.compile(r"^##\s+(?P<title>.+)$", re.MULTILINE)
_BOX_ROW = re.compile(r"^│\s*(?P<id>[^│]+?)\s*│\s*(?P<text>[^│]*?)\s*│\s*$", re.MULTILINE)
_ROUND = re.compile(r"\bR([0-9]{1,2})\b")
_CLOSING = re.compile(r"\b(resolved|superseded|subsumed|deferred|accepted|eliminated)\b", re.IGNORECASE)
_ADDRESSING = re.compile(r"\b(narrowed|partially|refined|addressed)\b", re.IGNORECASE)
_NAMES = re.compile(r"[A-Z][a-z]+")


@dataclass(frozen=True)
class Ruling:
    """A recorded judge's status for one of its tension ids, from the end of `round` on."""

    id: str
    status: str
    round: int
    reason: str
    raisers: tuple[str, ...] = ()
    label: str = ""
    #: True when the ruling's own text names its round ("Resolved in R1").
    dated: bool = False


@dataclass
class RecordedRulings:
    """Every ruling found in a recording, in the order its files were read."""

    rulings: list[Ruling] = field(default_factory=list)

    def raisers(self) -> dict[str, tuple[int, tuple[str, ...], str]]:
        """Recorded id -> (round of the state, raisers, label) from the first brief row naming raisers."""
        found: dict[str, tuple[int, tuple[str, ...], str]] = {}
        for r in self.rulings:
            if r.raisers:
                found.setdefault(r.id, (r.round, r.raisers, r.label))
        return found


def status_of(text: str) -> str | None:
    """resolved, addressed or None (still open / says nothing) for a recorded status text."""
    cleaned = re.sub(r"\b(?:un|partially\s+)resolved\b", "partially", text, flags=re.IGNORECASE)
    if plain(cleaned).lower().startswith("open"):
        return None
    if _CLOSING.search(cleaned):
        return "resolved"
    return "addressed" if _ADDRESSING.search(cleaned) else None


def read_rulings(
    tensions: str | None, verdict: str | None, briefs: Mapping[int, Iterable[str]], last_round: int
) -> RecordedRulings:
    """Every ruling in tensions.md, the round prompts' briefs (round -> prompt texts) and verdict.md."""
    found = RecordedRulings()
    for number in sorted(briefs):
        for text in briefs[number]:
            found.rulings += _brief_rows(text, number - 1)
    if tensions:
        state = _state_round(tensions, last_round)
        found.rulings += _sections(tensions, state) + _table_rows(tensions, state)
    if verdict:
        found.rulings += _verdict_rows(verdict, last_round)
    return found


def merged_members(
    raisers: Mapping[str, tuple[int, tuple[str, ...], str]],
    labels: Mapping[str, str],
    candidates: Sequence[Candidate],
    taken: Iterable[str],
) -> dict[str, list[str]]:
    """Recorded plain id -> the local ids of the tensions its judge merged under it, besides its alias.

    First, per raiser a brief row names, that raiser's tension of the row's round or before sharing
    the most content words with the row's label (one sharing none only when it is the raiser's only
    tension left). Then any tension still in no group whose label covers at least MIN_LABEL_SCORE of
    a recorded label's content words (the alias rule, `aliases`), joining the best-covered one.
    """
    groups: dict[str, list[str]] = {}
    used = set(taken)
    for rid, (state_round, names, label) in sorted(raisers.items()):
        words = content_words(label)
        for name in names:
            theirs = [c for c in candidates if c.author == name.lower() and c.round <= state_round]
            theirs = [c for c in theirs if c.local_id not in used]
            scored = sorted(((len(words & content_words(c.label)), -c.round, c.local_id) for c in theirs), reverse=True)
            if scored and (scored[0][0] > 0 or len(scored) == 1):
                groups.setdefault(rid, []).append(scored[0][2])
                used.add(scored[0][2])
    for c in candidates:
        if c.local_id in used:
            continue
        label_words = content_words(c.label)
        best = max(
            (
                (_coverage(content_words(label), label_words), rid)
                for rid, label in sorted(labels.items())
                if _is_plain(rid)
            ),
            default=(0.0, ""),
        )
        if best[0] >= MIN_LABEL_SCORE:
            groups.setdefault(best[1], []).append(c.local_id)
            used.add(c.local_id)
    return groups


def _coverage(recorded: frozenset[str], theirs: frozenset[str]) -> float:
    """The share of a recorded label's content words found in a tension's label."""
    return len(recorded & theirs) / len(recorded) if recorded else 0.0


def _ruling(rid: str, text: str, state_round: int) -> Ruling | None:
    status = status_of(text)
    if status is None or not _is_recorded_id(rid):
        return None
    named = _ROUND.search(text)
    number = min(int(named.group(1)), state_round) if named else state_round
    return Ruling(rid, status, number, f"recorded judge: {' '.join(text.split())[:160]}", dated=named is not None)


def _brief_rows(text: str, state_round: int) -> list[Ruling]:
    """`| T01 | **label** — desc | Open | Muffin, Brioche |` rows of a context brief."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| T") or len(cells) < 3 or not _is_recorded_id(cells[0]):
            continue
        label = re.split(r"\s+[—–]\s+|\s+--\s+", plain(cells[1]), maxsplit=1)[0]
        raisers = tuple(n for n in _NAMES.findall(cells[3])) if len(cells) > 3 else ()
        status = status_of(cells[2])
        rows.append(Ruling(cells[0], status or "open", state_round, f"recorded judge: {cells[2]}", raisers, label))
    return rows


def _sections(text: str, last_round: int) -> list[Ruling]:
    """`### ID (Rn): label` sections; a section's status is its `**Status:**` line, else its group heading."""
    groups = [(m.start(), m["title"]) for m in _GROUP_HEADING.finditer(text)]
    heads = list(_SECTION.finditer(text))
    rulings = []
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
        body = text[head.end() : end]
        group = next((title for start, title in reversed(groups) if start < head.start()), "")
        stated = re.search(r"\*\*Status:\s*([^*]+)\*\*", body)
        closing = stated.group(1) if stated else group
        rounds = _ROUND.search(body)
        ruling = _ruling(head["id"], f"{closing} {('R' + rounds.group(1)) if rounds else ''}", last_round)
        if ruling is not None:
            rulings.append(ruling)
    return rulings


def _table_rows(text: str, last_round: int) -> list[Ruling]:
    """`| ID | Tension | Status |` rows of a tensions.md table."""
    rulings = []
    for table in read_tables(text):
        id_col, status_col = table.column("ID"), table.column("Status")
        if id_col is None or status_col is None:
            continue
        for row in table.rows:
            if max(id_col, status_col) < len(row):
                ruling = _ruling(plain(row[id_col]), plain(row[status_col]), last_round)
                if ruling is not None:
                    rulings.append(ruling)
    return rulings


def _verdict_rows(text: str, last_round: int) -> list[Ruling]:
    """Rows of verdict.md's box-drawn "Resolved Tensions" table: each one resolved by the verdict."""
    start = text.find("## Resolved Tensions")
    if start < 0:
        return []
    end = text.find("\n## ", start + 1)
    rulings = []
    for row in _BOX_ROW.finditer(text[start : end if end > 0 else len(text)]):
        rid = re.sub(r"\s*\(R[0-9]+\)$", "", row["id"])
        if _is_recorded_id(rid):
            rulings.append(Ruling(rid, "resolved", last_round, f"recorded verdict: {row['text'].strip()}"))
    return rulings


def _state_round(text: str, last_round: int) -> int:
    """The round a judge file's state is from: the latest round it names (it is overwritten each round,
    and rfc-0058's was last written after round 1), else the import's last round."""
    named = [int(n) for n in _ROUND.findall(text)]
    return min(max(named), last_round) if named else last_round


def _is_plain(text: str) -> bool:
    """A recorded judge's own plain id (`T01`): namespaced ids name their one tension exactly."""
    ref = parse_reference(text)
    return ref is not None and ref.expert is None and not ref.is_global


def _is_recorded_id(text: str) -> bool:
    """A recorded judge's tension id (`T01`, `MUFFIN-T01`, `MUFFIN R1-T01`), not one of Concord's display ids."""
    ref = parse_reference(text)
    return ref is not None and ref.kind == "T" and not ref.is_global


def rulings_by_round(
    found: RecordedRulings, labels: Mapping[str, str], aliases: Mapping[str, str], candidates: Sequence[Candidate]
) -> dict[int, list[tuple[str, Ruling]]]:
    """Round -> (local id, ruling) for every entity a ruling names: the entity its id is an alias of,
    and the tensions merged under it; addressed before resolved in a round. A ruling that names no
    round takes effect no earlier than the round after the tension was raised (a judge rules on what
    a round raised once the round is over)."""
    merged = merged_members(found.raisers(), labels, candidates, aliases.values())
    raised = {c.local_id: c.round for c in candidates}
    plan: dict[int, list[tuple[str, Ruling]]] = {}
    for ruling in found.rulings:
        if ruling.status == "open":
            continue
        members = ([aliases[ruling.id]] if ruling.id in aliases else []) + merged.get(ruling.id, [])
        for local_id in members:
            number = ruling.round
            if not ruling.dated and local_id in raised:
                number = max(number, raised[local_id] + 1)
            plan.setdefault(number, []).append((local_id, ruling))
    for items in plan.values():
        items.sort(key=lambda item: item[1].status == "resolved")
    return plan
