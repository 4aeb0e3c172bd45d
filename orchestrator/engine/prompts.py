"""Render the prompt templates of prompts/ into the exact text sent to experts and the llm judge."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template
from types import MappingProxyType

from concord.orchestrator.panel.panels import EMOJI
from concord.store.errors import BadInput
from concord.store.model import PanelSeat

#: The prompt templates, package data of concord.prompts (the repository's prompts/ folder).
PROMPTS = resources.files("concord.prompts")
GROUNDING_CAP = 16_000  # bytes of one grounding file inlined into a prompt
#: Bytes of last round's answers inlined into one prompt, all together; each answer gets an equal share
#: when they do not fit (an over-long prompt would also exceed a model's context and the store's item limit).
PEER_ANSWERS_CAP = 160_000
BRIEF_TENSIONS = 5
BRIEF_SUMMARY_CHARS = 500
BRIEF_PANEL_LINES = 8
ELLIPSIS = "..."

_SECTION = re.compile(r"^<!-- section: (\w+) -->$", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class PromptContext:
    """What the orchestrator knows at round N for one expert."""

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
def _sections(name: str) -> dict[str, Template]:
    """Load prompts/<name>.md as its named sections."""
    text = (PROMPTS / f"{name}.md").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    if parts[0].strip():
        raise ValueError(f"prompts/{name}.md has text before its first section line")
    return {key: Template(body.strip("\n")) for key, body in zip(parts[1::2], parts[2::2], strict=False)}


def _fill(file: str, section: str, /, **values: object) -> str:
    """Render one section of a template file; a missing placeholder value is an error."""
    return _sections(file)[section].substitute({k: str(v) for k, v in values.items()}).strip("\n")


def _layout(file: str, section: str, blocks: Mapping[str, str]) -> str:
    """Join the blocks a layout section lists, in its order, dropping the empty ones."""
    lines = _sections(file)[section].template.splitlines()
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


def _grounding(files: Mapping[str, str], cap: int = GROUNDING_CAP) -> str:
    """Inline the grounding files, each cut to `cap` bytes with a note when it was longer."""
    if not files:
        return ""
    parts = []
    for name, text in files.items():
        shown, total = _cap(text, cap)
        body = _fenced(shown)
        if total > cap:
            body += "\n\n" + _fill("expert", "grounding_truncated", shown=len(shown.encode("utf-8")), total=total)
        parts.append(_fill("expert", "grounding_file", file=name, text=body))
    return _fill("expert", "grounding", files="\n\n".join(parts))


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


def render_read_context(ctx: PromptContext) -> str:
    """Render the previous round's material every expert gets from round 1: tensions, summary, answers."""
    if ctx.round < 1:
        return ""
    previous = ctx.round - 1
    table = ctx.tensions_table.strip()
    summary = ctx.previous_summary.strip()
    answers = []
    share = _answer_share(ctx.peer_answers)
    for name, text in ctx.peer_answers.items():
        own = name.casefold() == ctx.expert.name.casefold()
        who = _who(name, ctx.previous_panel)
        shown, total = _cap(text, share)
        body = _fenced(shown)
        if total > share:
            body += "\n\n" + _fill(
                "read_context",
                "answer_truncated",
                shown=len(shown.encode("utf-8")),
                total=total,
                previous=ctx.round - 1,
                file=f"{name.lower()}.md",
            )
        answers.append(_fill("read_context", "own" if own else "peer", emoji=EMOJI, who=who, text=body))
    if not (table or summary or answers):
        return ""
    return _layout(
        "read_context",
        "layout",
        {
            "header": _fill("read_context", "header", previous=previous),
            "tensions": _fill("read_context", "tensions", table=_fenced(table, "markdown")) if table else "",
            "summary": _fill("read_context", "summary", previous=previous, summary=_fenced(summary, "markdown"))
            if summary
            else "",
            "answers": _fill("read_context", "answers", previous=previous, answers="\n\n".join(answers))
            if answers
            else "",
        },
    )


def _context(ctx: PromptContext) -> str:
    """The round's context: the brief for newcomers, then the read-context block for everyone."""
    brief = render_context_brief(ctx) if ctx.newcomer else ""
    return "\n\n".join(part for part in (brief, render_read_context(ctx)) if part)


def _system(ctx: PromptContext) -> str:
    """The expert's system part: identity, optional focus line, duties."""
    member = ctx.expert
    return _layout(
        "expert",
        "system",
        {
            "identity": _fill("expert", "identity", name=member.name, emoji=EMOJI, role=member.role),
            "focus": _fill("expert", "focus", focus=ctx.focus) if ctx.focus else "",
            "duties": _fill("expert", "duties"),
        },
    )


def _shared_blocks(ctx: PromptContext) -> dict[str, str]:
    """Blocks the expert prompt and the repair prompt have in common."""
    return {
        "question": _fill("expert", "question", question=ctx.question.strip()),
        "context": _context(ctx),
        "structure": _fill("expert", "structure"),
        "closing": _fill("expert", "closing"),
        "grounding": _grounding(ctx.grounding),
    }


def render_expert_prompt(ctx: PromptContext) -> RenderedPrompt:
    """Render one expert's round prompt in the section order of protocol.md §4."""
    blocks = _shared_blocks(ctx)
    blocks["output"] = _fill("expert", "output", round=ctx.round, slug=ctx.expert.slug)
    return RenderedPrompt(system=_system(ctx), user=_layout("expert", "user", blocks))


def render_repair_prompt(ctx: PromptContext, bad_answer: str) -> RenderedPrompt:
    """Render the one repair request for an answer holding no marker Concord can parse."""
    blocks = _shared_blocks(ctx)
    blocks["problem"] = _fill("repair", "problem", round=ctx.round)
    blocks["answer"] = _fill("repair", "answer", text=_fenced(bad_answer)) if bad_answer.strip() else ""
    return RenderedPrompt(system=_system(ctx), user=_layout("repair", "user", blocks))


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
