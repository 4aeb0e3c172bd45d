"""Render the prompt templates of prompts/ into the exact text sent to experts and the llm judge.

Every expert prompt puts what the whole round shares first (system part, then question, grounding, moderator
notes, entities, synthesis, tensions, answers) and the expert's own part last, so a round's prompts differ
only after one point (prompt caching).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template
from types import MappingProxyType

from concord.orchestrator.engine.entity_notes import EntityNote
from concord.orchestrator.judging.synthesis import Standing, Synthesis
from concord.orchestrator.panel.panels import EMOJI
from concord.store.errors import BadInput
from concord.store.grounding import GROUNDING_DIR
from concord.store.model import PanelSeat

#: The prompt templates, package data of concord.prompts (the repository's prompts/ folder).
PROMPTS = resources.files("concord.prompts")
GROUNDING_CAP = 16_000  # bytes of one grounding file inlined into a prompt
GROUNDING_TOTAL_CAP = 64_000  # bytes of all grounding files together; each gets an equal share when they do not fit
#: Bytes of last round's answers inlined into one prompt, all together; each answer gets an equal share
#: when they do not fit (an over-long prompt would also exceed a model's context and the store's item limit).
PEER_ANSWERS_CAP = 160_000
#: Bytes of the entity listing; past it, earlier rounds' bodies go first, then whole entries.
ENTITIES_CAP = 48_000
LAST_BODY_CAP = 1_500  # bytes of one body from the last round
EARLIER_BODY_CAP = 400  # bytes of one body from an earlier round
BRIEF_TENSIONS = 5
BRIEF_SUMMARY_CHARS = 500
BRIEF_PANEL_LINES = 8
ELLIPSIS = "..."

_SECTION = re.compile(r"^<!-- section: (\w+) -->$", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class PromptContext:
    """What the orchestrator knows at round N for one expert.

    `peer_answers` and `entities` name experts as the prompt shows them (labels when `anonymous`); `alias` is the
    label the expert's own earlier contributions carry there, empty when it has none.
    """

    question: str
    round: int
    expert: PanelSeat
    newcomer: bool
    focus: str | None = None
    tensions_table: str = ""
    previous_summary: str = ""
    previous_panel: Sequence[PanelSeat] = ()
    peer_answers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    grounding: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    entities: Sequence[EntityNote] = ()
    synthesis: Synthesis | None = None
    own_ids: Sequence[str] = ()
    moderator_notes: Sequence[str] = ()
    anonymous: bool = False
    alias: str = ""


class NotAPromptFile(BadInput):
    """A file in a dialogue's round directory that should hold a prompt but does not."""


@dataclass(frozen=True)
class RenderedPrompt:
    """The system and user parts of one request."""

    system: str
    user: str

    def as_markdown(self) -> str:
        """Return the text written to round-N/<name>.prompt.md: both parts under their own headings."""
        return f"{_SYSTEM_HEADING}{self.system}{_USER_HEADING}{self.user}\n"

    @classmethod
    def from_markdown(cls, text: str) -> RenderedPrompt:
        """The prompt a prompt file holds (the inverse of as_markdown)."""
        if not text.startswith(_SYSTEM_HEADING) or _USER_HEADING not in text:
            raise NotAPromptFile("not a prompt file: expected '# System' and '# User' parts")
        system, _, user = text[len(_SYSTEM_HEADING) :].partition(_USER_HEADING)
        return cls(system=system, user=user.removesuffix("\n"))


_SYSTEM_HEADING = "# System\n\n"
_USER_HEADING = "\n\n# User\n\n"


def is_newcomer(member: PanelSeat, round: int) -> bool:
    """Tell whether an expert gets the context brief: anyone not retained, from round 1 on."""
    return round >= 1 and member.source != "retained"


@cache
def template_sections(name: str) -> dict[str, Template]:
    """Load prompts/<name>.md as its named sections."""
    text = (PROMPTS / f"{name}.md").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    if parts[0].strip():
        raise ValueError(f"prompts/{name}.md has text before its first section line")
    return {key: Template(body.strip("\n")) for key, body in zip(parts[1::2], parts[2::2], strict=False)}


def _fill(file: str, section: str, /, **values: object) -> str:
    """Render one section of a template file; a missing placeholder value is an error."""
    return template_sections(file)[section].substitute({k: str(v) for k, v in values.items()}).strip("\n")


def _layout(file: str, section: str, blocks: Mapping[str, str]) -> str:
    """Join the blocks a layout section lists, in its order, dropping the empty ones."""
    lines = template_sections(file)[section].template.splitlines()
    rendered = (Template(line).substitute(blocks).strip("\n") for line in lines if line.strip())
    return "\n\n".join(part for part in rendered if part.strip())


def _fenced(text: str, info: str = "text") -> str:
    """Wrap verbatim text in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.strip(chr(10))}\n{fence}"


def _tension_rows(table: str) -> list[str]:
    """Return the rows of a tensions table that describe a tension (they start with `| T`)."""
    return [line.rstrip() for line in table.splitlines() if line.startswith("| T")]


def _cap(text: str, cap: int) -> tuple[str, int]:
    """Cut text to at most `cap` UTF-8 bytes on a character boundary; return it and its full size."""
    data = text.encode("utf-8")
    return data[:cap].decode("utf-8", errors="ignore"), len(data)


def _answer_share(answers: Mapping[str, str], cap: int = PEER_ANSWERS_CAP) -> int:
    """Bytes each answer may take: all of it when everything fits in `cap`, else an equal share of the room."""
    sizes = sorted(len(text.encode("utf-8")) for text in answers.values())
    if sum(sizes) <= cap:
        return max(sizes, default=0)
    room, left = cap, len(sizes)
    for size in sizes:  # small answers keep their whole text; the rest share what remains
        if size * left > room:
            return room // left
        room, left = room - size, left - 1
    return room


def _grounding(files: Mapping[str, str]) -> str:
    """List the grounding files by name and inline each, within its own cap and its share of the total cap."""
    if not files:
        return ""
    cap = min(GROUNDING_CAP, _answer_share(files, GROUNDING_TOTAL_CAP))
    parts = []
    for name, text in files.items():
        shown, total = _cap(text, cap)
        body = _fenced(shown)
        if total > cap:
            body += "\n\n" + _fill(
                "expert",
                "grounding_truncated",
                shown=len(shown.encode("utf-8")),
                total=total,
                file=f"{GROUNDING_DIR}/{name}",
            )
        parts.append(_fill("expert", "grounding_file", file=name, text=body))
    names = ", ".join(f"`{name}`" for name in files)
    return _fill("expert", "grounding", names=names, files="\n\n".join(parts))


def anonymous_name(letter: str) -> str:
    """The name an anonymous dialogue shows for the expert labelled `letter` (Expert A, Expert B, …)."""
    return _fill("expert", "anonymous_name", letter=letter)


def render_context_brief(ctx: PromptContext) -> str:
    """Render the brief for experts joining after round 0; empty in round 0 or when there is nothing to say.

    At most five tension rows then "... and K more tensions", the previous summary cut to 500
    characters plus "...", and at most eight "- 🧁 Name: Role" lines of the previous panel.
    Whether an expert gets it is the caller's choice (see `is_newcomer`).
    """
    if ctx.round < 1:
        return ""
    previous = ctx.round - 1
    rows = _tension_rows(ctx.tensions_table)
    tensions = ""
    if rows:
        shown = "\n".join(rows[:BRIEF_TENSIONS])
        if len(rows) > BRIEF_TENSIONS:
            shown += "\n" + _fill("context_brief", "more_tensions", count=len(rows) - BRIEF_TENSIONS)
        tensions = _fill("context_brief", "tensions", rows=shown)
    summary_text = ctx.previous_summary.strip()
    summary = ""
    if summary_text:
        if len(summary_text) > BRIEF_SUMMARY_CHARS:
            summary_text = summary_text[:BRIEF_SUMMARY_CHARS] + ELLIPSIS
        summary = _fill("context_brief", "summary", previous=previous, summary=_fenced(summary_text, "markdown"))
    lines = [
        _fill("context_brief", "panel_line", emoji=EMOJI, name=m.name, role=m.role)
        for m in ctx.previous_panel[:BRIEF_PANEL_LINES]
    ]
    panel = _fill("context_brief", "panel", previous=previous, lines="\n".join(lines)) if lines else ""
    if not (tensions or summary or panel):
        return ""
    return _layout(
        "context_brief",
        "layout",
        {
            "header": _fill("context_brief", "header", round=ctx.round),
            "tensions": tensions,
            "summary": summary,
            "panel": panel,
            "task": _fill("context_brief", "task"),
        },
    )


def _who(name: str, panel: Sequence[PanelSeat]) -> str:
    """Name an expert with the role it held on the given panel, when known."""
    role = next((m.role for m in panel if m.name.casefold() == name.casefold() and m.role), "")
    return f"{name} ({role})" if role else name


def _entity(note: EntityNote, cap: int) -> str:
    """One entity line, its body (cut to `cap` bytes, with a pointer to its file) indented under it."""
    line = _fill(
        "read_context",
        "entity",
        id=note.id,
        kind=note.kind,
        status=note.status,
        authors=", ".join(note.authors) or "?",
        label=note.label.strip(),
    )
    body = note.body.strip()
    if not body or body == note.label.strip():
        return line
    shown, total = _cap(body, cap)
    text = shown.rstrip()
    if total > cap:
        text = (text + "\n" if text else "") + _fill("read_context", "entity_cut", file=note.file)
    return line + "".join(f"\n  {row}" if row.strip() else "\n" for row in text.splitlines())


def _entity_groups(ctx: PromptContext, last_cap: int, earlier_cap: int, most: int) -> str:
    """The listing of the first `most` entities, the last round's bodies cut to `last_cap`, earlier ones' to `earlier_cap`."""
    previous = ctx.round - 1
    shown = ctx.entities[:most]
    last = [_entity(n, last_cap) for n in shown if n.round == previous]
    earlier = [_entity(n, earlier_cap) for n in shown if n.round != previous]
    groups = [
        _fill("read_context", "entities_last", previous=previous, notes="\n".join(last)) if last else "",
        _fill("read_context", "entities_earlier", notes="\n".join(earlier)) if earlier else "",
    ]
    if len(ctx.entities) > most:
        groups.append(_fill("read_context", "entities_more", count=len(ctx.entities) - most))
    return _fill("read_context", "entities", previous=previous, groups="\n\n".join(g for g in groups if g))


def _entities(ctx: PromptContext, cap: int = ENTITIES_CAP) -> str:
    """The entity listing within `cap` bytes: full, else without earlier bodies, else the first entries that fit."""
    if not ctx.entities:
        return ""
    for last_cap, earlier_cap in ((LAST_BODY_CAP, EARLIER_BODY_CAP), (LAST_BODY_CAP, 0), (0, 0)):
        text = _entity_groups(ctx, last_cap, earlier_cap, len(ctx.entities))
        if len(text.encode("utf-8")) <= cap:
            return text
    low, high = 1, len(ctx.entities) - 1  # the most entries that fit, found by bisection (at least one is shown)
    while low < high:
        middle = (low + high + 1) // 2
        if len(_entity_groups(ctx, 0, 0, middle).encode("utf-8")) <= cap:
            low = middle
        else:
            high = middle - 1
    return _entity_groups(ctx, 0, 0, low)


def _standings(section: str, standings: Sequence[Standing]) -> list[str]:
    """One synthesis line per standing."""
    lines = []
    for s in standings:
        by = _fill("read_context", "synthesis_by", ids=", ".join(s.by)) if s.by else ""
        lines.append(
            _fill("read_context", section, id=s.id, label=s.label.strip(), status=s.status, count=s.count, by=by)
        )
    return lines


def _synthesis(synthesis: Synthesis | None) -> str:
    """The synthesis of the rounds so far: agreed (resolved, most backed) and contested (open, opposed) ids."""
    if synthesis is None:
        return ""
    agreed = _standings("synthesis_resolved", synthesis.resolved) + _standings(
        "synthesis_supported", synthesis.supported
    )
    contested = _standings("synthesis_open", synthesis.open) + _standings("synthesis_opposed", synthesis.opposed)
    parts = [
        _fill("read_context", "synthesis_agreed", lines="\n".join(agreed)) if agreed else "",
        _fill("read_context", "synthesis_contested", lines="\n".join(contested)) if contested else "",
    ]
    text = "\n\n".join(p for p in parts if p) or _fill("read_context", "synthesis_nothing")
    return _fill("read_context", "synthesis", previous=synthesis.round, parts=text)


def render_read_context(ctx: PromptContext) -> str:
    """Render what every expert of a round reads from round 1: entities, synthesis, tensions, every answer.

    Nothing in it depends on the recipient, so it is the same text in every prompt of the round.
    """
    if ctx.round < 1:
        return ""
    previous = ctx.round - 1
    table = ctx.tensions_table.strip()
    answers = []
    share = _answer_share(ctx.peer_answers)
    for name, text in ctx.peer_answers.items():
        shown, total = _cap(text, share)
        body = _fenced(shown)
        if total > share:
            body += "\n\n" + _fill(
                "read_context",
                "answer_truncated",
                shown=len(shown.encode("utf-8")),
                total=total,
                file=f"round-{previous}/" if ctx.anonymous else f"round-{previous}/{name.lower()}.md",
            )
        answers.append(_fill("read_context", "peer", emoji=EMOJI, who=_who(name, ctx.previous_panel), text=body))
    entities = _entities(ctx)
    synthesis = _synthesis(ctx.synthesis)
    if not (table or answers or entities or synthesis):
        return ""
    return _layout(
        "read_context",
        "layout",
        {
            "header": _fill("read_context", "header", previous=previous),
            "entities": entities,
            "synthesis": synthesis,
            "tensions": _fill("read_context", "tensions", table=_fenced(table, "markdown")) if table else "",
            "answers": _fill("read_context", "answers", previous=previous, answers="\n\n".join(answers))
            if answers
            else "",
        },
    )


def _system() -> str:
    """The system part, the same for every expert of every round: what the dialogue is and the duties."""
    return _layout("expert", "system", {"intro": _fill("expert", "intro"), "duties": _fill("expert", "duties")})


def _moderator(notes: Sequence[str]) -> str:
    """The moderator's notes to the whole panel; empty without notes."""
    lines = [_fill("expert", "moderator_note", note=note.strip()) for note in notes if note.strip()]
    return _fill("expert", "moderator", notes="\n".join(lines)) if lines else ""


def _blocks(ctx: PromptContext) -> dict[str, str]:
    """Blocks the expert prompt and the repair prompt have in common: the shared part, then the expert's own."""
    member = ctx.expert
    own = ", ".join(ctx.own_ids)
    return {
        # shared by every expert of the round
        "question": _fill("expert", "question", question=ctx.question.strip()),
        "grounding": _grounding(ctx.grounding),
        "moderator": _moderator(ctx.moderator_notes),
        "context": render_read_context(ctx),
        # this expert's own
        "brief": render_context_brief(ctx) if ctx.newcomer else "",
        "seat": _fill("expert", "seat"),
        "identity": _fill("expert", "identity", name=member.name, emoji=EMOJI, role=member.role),
        "focus": _fill("expert", "focus", focus=ctx.focus) if ctx.focus else "",
        "anonymous": _fill("expert", "anonymous") if ctx.anonymous else "",
        "alias": _fill("expert", "alias", alias=ctx.alias) if ctx.anonymous and ctx.alias else "",
        "own": _fill("expert", "own_ids", ids=own) if own else "",
        "structure": _fill("expert", "structure"),
        "closing": _fill("expert", "closing"),
    }


def render_expert_prompt(ctx: PromptContext) -> RenderedPrompt:
    """Render one expert's round prompt: the round's shared material first, the expert's own part last."""
    blocks = _blocks(ctx)
    blocks["output"] = _fill("expert", "output", round=ctx.round, slug=ctx.expert.slug)
    return RenderedPrompt(system=_system(), user=_layout("expert", "user", blocks))


def render_repair_prompt(ctx: PromptContext, bad_answer: str) -> RenderedPrompt:
    """Render the one repair request for an answer holding no marker Concord can parse."""
    blocks = _blocks(ctx)
    blocks["problem"] = _fill("repair", "problem", round=ctx.round)
    blocks["answer"] = _fill("repair", "answer", text=_fenced(bad_answer)) if bad_answer.strip() else ""
    return RenderedPrompt(system=_system(), user=_layout("repair", "user", blocks))


def render_judge_prompt(
    question: str,
    round: int,
    answers: Mapping[str, str],
    *,
    tensions_table: str = "",
    panel: Sequence[PanelSeat] = (),
) -> RenderedPrompt:
    """Render the llm judge's request to assess one round's answers (W/C/T/R per expert, as JSON)."""
    table = tensions_table.strip()
    answer_blocks = [
        _fill("judge", "answer", emoji=EMOJI, who=_who(name, panel), text=_fenced(text))
        for name, text in answers.items()
    ]
    system = _layout(
        "judge",
        "system",
        {
            "identity": _fill("judge", "identity", round=round),
            "scale": _fill("judge", "scale"),
            "output": _fill("judge", "output"),
        },
    )
    user = _layout(
        "judge",
        "user",
        {
            "question": _fill("judge", "question", question=question.strip()),
            "tensions": _fill("judge", "tensions", table=_fenced(table, "markdown")) if table else "",
            "answers": _fill("judge", "answers", round=round, answers="\n\n".join(answer_blocks)),
            "reminder": _fill("judge", "reminder"),
        },
    )
    return RenderedPrompt(system=system, user=user)
