"""Tolerant parser for the bracket markers in expert answers (protocol.md §3).

Variants recorded answers use instead of the canonical words (protocol §3.2's "Unknown" row) are
read as the marker they stand for; the marker's `name` keeps the word as written:
- `[RESOLUTION T03: …]` is a RESOLVED;
- `[ACKNOWLEDGED T09: …]`, `[ACCEPT]` and `[CONCEDE-WITH-SCOPE: scope]` are CONCESSIONs (an
  acknowledgement, an acceptance, a concession limited to the scope in its label);
- `[DEFER T04: …]` is kind `defer`: the expert postpones the tension; it stays open, and the judge
  notes the deferral on the round (it is no act on the tension, so it neither counts as a move
  nor changes a status).
`[MOVE:CONDITIONAL-CONVERGE]` stays unknown on purpose: a signal with conditions is not the
unconditional `[MOVE:CONVERGE]` the gate counts (it appears only in a recorded judge's scoreboard).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from concord.orchestrator.judging.written_ids import Reference, ids_in_prose, parse_reference
from concord.store.model import MOVE_TYPES
from concord.store.rules import REF_TYPES

CONTENT_KINDS: frozenset[str] = frozenset(
    {
        "perspective",
        "tension",
        "refinement",
        "concession",
        "resolved",
        "recommendation",
        "evidence",
        "claim",
    }
)

_PLAIN_KINDS: dict[str, str] = {
    "PERSPECTIVE": "perspective",
    "TENSION": "tension",
    "REFINEMENT": "refinement",
    "CONCESSION": "concession",
    "RESOLVED": "resolved",
    "RESOLUTION": "resolved",
    "ACKNOWLEDGED": "concession",
    "ACCEPT": "concession",
    "CONCEDE-WITH-SCOPE": "concession",
    "DEFER": "defer",
    "DISSENT": "dissent",
}
#: Variant words, as `name`; the canonical words of a kind get no name.
_VARIANT_NAMES = frozenset({"RESOLUTION", "ACKNOWLEDGED", "ACCEPT", "CONCEDE-WITH-SCOPE"})
# Markers whose header names the entities they act on.
_TARGETING_KINDS: frozenset[str] = frozenset({"refinement", "concession", "resolved", "defer", "unknown"})
_LETTER_KINDS: dict[str, str] = {
    "P": "perspective",
    "T": "tension",
    "R": "recommendation",
    "E": "evidence",
    "C": "claim",
    "S": "stance",
}

# Possessive quantifiers keep every pattern linear on adversarial input.
_BRACKET_RE = re.compile(r"\[([^\[\]\n]*+)\]")
_WORD_RE = re.compile(
    r"[ \t]*+(?P<word>(?:MOVE|RE)[ \t]*+:[ \t]*+[A-Z][A-Z0-9_-]*+|[A-Z]{2}[A-Z0-9_-]*+)"
    r"(?=$|[ \t:,])"
)
_LOCAL_ID_WORD_RE = re.compile(r"[A-Z]{2,}[0-9]*+-(?P<letter>[PRTECS])[0-9]{2,4}")
_LOCAL_ID_TOKEN_RE = re.compile(r"[A-Z][A-Z0-9]*+(?:-[A-Z0-9]++)*+")
_SEPARATOR_RE = re.compile(r":|—|–|--|\s/\s")
_DECORATION_RE = re.compile(r"[\s#>*_+\-0-9.)]*+")
_CONFIDENCE_RE = re.compile(r"[0-9]++(?:\.[0-9]++)?|\.[0-9]++")
_LIST_SPLIT_RE = re.compile(r",|&|\band\b")
_TOKEN_SPLIT_RE = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Marker:
    """One bracket marker found in an answer, with its label and body."""

    kind: str
    local_id: str | None
    label: str
    body: str
    line: int
    raw: str
    targets: tuple[Reference, ...] = ()
    #: The marker's own word in lowercase: a ref or move type (`support`, `concede`, `converge`), a stance
    #: position (`approve`), a variant word (`acknowledged`, `resolution`), or what an unknown marker says
    #: (`perspectiv`, `move:conditional-converge`).
    name: str = ""
    confidence: float | None = None
    addressee: str | None = None
    in_table: bool = False


@dataclass
class ParsedAnswer:
    """All markers of one answer plus the answer-level facts the judge needs."""

    markers: list[Marker]
    converge: bool
    ends_with_rule: bool
    word_count: int

    def of(self, kind: str) -> list[Marker]:
        """Return the markers of one kind, in source order."""
        return [m for m in self.markers if m.kind == kind]

    @property
    def unknown(self) -> list[Marker]:
        """Return the marker-like brackets the parser could not classify."""
        return self.of("unknown")

    @property
    def has_content(self) -> bool:
        """Tell whether the answer carries at least one content marker."""
        return any(m.kind in CONTENT_KINDS for m in self.markers)

    @property
    def is_valid(self) -> bool:
        """Tell whether this is a usable answer: a content marker, or the `[MOVE:CONVERGE]` signal alone."""
        return self.has_content or self.converge


@dataclass(frozen=True)
class _Head:
    """What the bracket text alone says about a marker."""

    kind: str
    name: str = ""
    local_id: str | None = None
    label: str = ""
    targets: tuple[Reference, ...] = ()
    confidence: float | None = None
    addressee: str | None = None


@dataclass(frozen=True)
class _Found:
    """A classified bracket and where it sits in the source."""

    head: _Head
    line: int
    start: int
    end: int
    raw: str
    in_table: bool


def parse_answer(text: str) -> ParsedAnswer:
    """Parse an expert answer into markers; never raises on any string."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    found = [item for index, line in enumerate(lines) for item in _scan_line(line, index)]
    rules = [i for i, line in enumerate(lines) if line.strip() == "---"]
    markers = [
        _to_marker(item, found[i + 1] if i + 1 < len(found) else None, lines, rules) for i, item in enumerate(found)
    ]
    non_empty = [line for line in lines if line.strip()]
    return ParsedAnswer(
        markers=markers,
        converge=any(m.kind == "converge" and not m.in_table for m in markers),
        ends_with_rule=bool(non_empty) and non_empty[-1].strip() == "---",
        word_count=len(text.split()),
    )


def _scan_line(line: str, index: int) -> list[_Found]:
    """Find the marker-like brackets on one line."""
    if "[" not in line:
        return []
    in_table = line.lstrip().startswith("|")
    found = []
    for match in _BRACKET_RE.finditer(line):
        if line.startswith("(", match.end()):
            continue  # markdown link text
        head = _classify(match.group(1))
        if head is not None:
            found.append(_Found(head, index, match.start(), match.end(), match.group(0), in_table))
    return found


def _classify(content: str) -> _Head | None:
    """Classify the text between the brackets, or None when it is not marker-like."""
    match = _WORD_RE.match(content)
    if match is None:
        return None
    word = re.sub(r"[ \t]", "", match["word"])
    rest = content[match.end() :]
    if word in _PLAIN_KINDS:
        kind = _PLAIN_KINDS[word]
        if kind in ("perspective", "tension"):
            local_id, label = _split_local_id(rest)
            return _Head(kind, local_id=local_id, label=label)
        if kind == "dissent":
            return _Head(kind, label=_strip_separator(rest))
        return _targeting_head(kind, word.lower() if word in _VARIANT_NAMES or kind == "defer" else "", rest)
    if word == "MINORITY" and rest.lstrip().startswith("VERDICT"):
        return _Head("minority_verdict", label=_strip_separator(rest.lstrip()[len("VERDICT") :]))
    if word.startswith("MOVE:"):
        return _move_head(word.removeprefix("MOVE:"), rest)
    if word.startswith("RE:"):
        ref_type = word.removeprefix("RE:").lower()
        if ref_type in REF_TYPES:
            return _Head("ref", name=ref_type, label=rest.strip(), targets=_token_refs(rest))
        return _targeting_head("unknown", word.lower(), rest)
    local = _LOCAL_ID_WORD_RE.fullmatch(word)
    if local is not None:
        return _local_id_head(word, _LETTER_KINDS[local["letter"]], rest)
    return _targeting_head("unknown", word.lower(), rest)


def _move_head(move: str, rest: str) -> _Head:
    """Classify a MOVE marker by its move type."""
    move = move.lower()
    if move == "converge":
        return _Head("converge", name=move, label=_strip_separator(rest))
    if move in MOVE_TYPES:
        return _Head("move", name=move, label=rest.strip(), targets=_token_refs(rest))
    return _targeting_head("unknown", f"move:{move}", rest)


def _local_id_head(word: str, kind: str, rest: str) -> _Head:
    """Build the head of an extended-vocabulary marker such as MUFFIN-P0101."""
    label = _strip_separator(rest)
    if kind != "stance":
        return _Head(kind, local_id=word, label=label)
    position, _, confidence = label.partition("|")
    words = position.split()
    number = _CONFIDENCE_RE.fullmatch(confidence.strip())
    return _Head(
        "stance",
        local_id=word,
        label=label,
        name=words[0].lower() if words else "",
        confidence=float(number.group(0)) if number else None,
    )


def _targeting_head(kind: str, name: str, rest: str) -> _Head:
    """Build the head of a marker whose header may name targets (RESOLVED, CONCESSION, ...)."""
    separator = _SEPARATOR_RE.search(rest)
    header = rest[: separator.start()] if separator else rest
    description = rest[separator.end() :].strip() if separator else ""
    parsed = _parse_header(header)
    if parsed is None:
        addressee: str | None = None
        header_refs: list[Reference] = []
        label = _strip_separator(rest)
    else:
        addressee, header_refs = parsed
        label = description
    return _Head(
        kind,
        name=name,
        label=label,
        targets=_dedupe([*header_refs, *_qualified_ids(label)]),
        addressee=addressee,
    )


def _parse_header(header: str) -> tuple[str | None, list[Reference]] | None:
    """Read `[to Name] [on] id[, id...]`; None when the header is prose instead."""
    tokens = header.split()
    addressee: str | None = None
    if tokens and tokens[0].lower() == "to":
        if len(tokens) < 2 or not tokens[1][:1].isupper():
            return None
        named = (
            3
            if tokens[1].lower() == "expert" and len(tokens) > 2 and tokens[2].isalpha() and tokens[2].isupper()
            else 2
        )
        addressee = " ".join(tokens[1:named]).lower()  # "Expert B": a peer's label in an anonymous dialogue
        tokens = tokens[named:]
    if tokens and tokens[0].lower() == "on":
        tokens = tokens[1:]
        if not tokens:
            return None
    refs = []
    for piece in _LIST_SPLIT_RE.split(" ".join(tokens)):
        if not piece.strip():
            continue
        ref = parse_reference(piece)
        if ref is None:
            return None
        refs.append(ref)
    if addressee is None and not refs and header.strip():
        return None
    return addressee, refs


def _split_local_id(rest: str) -> tuple[str | None, str]:
    """Split `P01: label` into the local id (if any) and the label."""
    stripped = rest.strip()
    match = _LOCAL_ID_TOKEN_RE.match(stripped)
    if match is not None:
        candidate = match.group(0)
        after = stripped[match.end() :]
        ends_cleanly = not after or after[0] in " \t:—–-/"
        looks_like_id = "-" in candidate or any(ch.isdigit() for ch in candidate)
        if ends_cleanly and looks_like_id:
            return candidate, _strip_separator(after)
    return None, _strip_separator(stripped)


def _strip_separator(text: str) -> str:
    """Drop a leading `:`, `—`, `--` or `/` separator and surrounding blanks."""
    stripped = text.strip()
    match = _SEPARATOR_RE.match(stripped)
    if match is None and stripped.startswith("/"):
        return stripped[1:].strip()
    return stripped[match.end() :].strip() if match else stripped


def _token_refs(text: str) -> tuple[Reference, ...]:
    """Return the ids a RE: or MOVE: marker points at: an id list, else any id-shaped tokens."""
    parsed = _parse_header(text)
    if parsed is not None:
        return _dedupe(parsed[1])
    refs = (parse_reference(token) for token in _TOKEN_SPLIT_RE.split(text))
    return _dedupe([ref for ref in refs if ref is not None])


def _qualified_ids(text: str) -> list[Reference]:
    """The ids a marker's description names unambiguously: a bare `T02` there is often someone else's
    (`former Scone T02`), so only global and namespaced ids become targets."""
    return [ref for ref in ids_in_prose(text) if ref.is_qualified]


def _dedupe(refs: list[Reference]) -> tuple[Reference, ...]:
    """Drop references naming the same entity twice, keeping the first spelling."""
    seen: set[tuple[object, ...]] = set()
    unique = []
    for ref in refs:
        key = (ref.kind, ref.number, ref.expert, ref.round, ref.is_global)
        if key not in seen:
            seen.add(key)
            unique.append(ref)
    return tuple(unique)


def _to_marker(item: _Found, following: _Found | None, lines: list[str], rules: list[int]) -> Marker:
    """Attach body and trailing-label text to a classified bracket."""
    line_text = lines[item.line]
    same_line_end = following.start if following and following.line == item.line else len(line_text)
    trailing = _clean_trailing(line_text[item.end : same_line_end])
    head = item.head
    label = head.label
    targets = head.targets
    # `[CONCESSION to Strudel on T01]: text` puts its description after the bracket.
    if not label and line_text[item.end : same_line_end].lstrip("*_ ").startswith(":"):
        label = trailing
        if head.kind in _TARGETING_KINDS:
            targets = _dedupe([*targets, *_qualified_ids(label)])
    return Marker(
        kind=head.kind,
        local_id=head.local_id,
        label=label,
        body=_body(item, following, trailing, lines, rules),
        line=item.line + 1,
        raw=item.raw,
        targets=targets,
        name=head.name,
        confidence=head.confidence,
        addressee=head.addressee,
        in_table=item.in_table,
    )


def _clean_trailing(text: str) -> str:
    """Strip closing emphasis and a leading colon from the text after a bracket."""
    return text.lstrip("*_").strip().removeprefix(":").strip()


def _body(item: _Found, following: _Found | None, trailing: str, lines: list[str], rules: list[int]) -> str:
    """Collect the text from the marker to the next marker or `---` line."""
    if following is not None and following.line == item.line:
        return trailing
    rule_index = bisect_right(rules, item.line)
    next_rule = rules[rule_index] if rule_index < len(rules) else len(lines)
    stop = min(following.line if following else len(lines), next_rule)
    parts = [trailing, *lines[item.line + 1 : stop]]
    if following is not None and following.line == stop:
        prefix = lines[stop][: following.start]
        # A heading or bullet prefix belongs to the next marker, prose before it to this body.
        if not _DECORATION_RE.fullmatch(prefix):
            parts.append(prefix)
    return "\n".join(parts).strip()
