"""Tests for the prompt templates: section order, the shared part first, the newcomer brief, the read-context block
(entities, synthesis, answers), moderator notes, grounding."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from concord.orchestrator.engine.entity_notes import EntityNote
from concord.orchestrator.engine.prompts import (
    BRIEF_PANEL_LINES,
    BRIEF_SUMMARY_CHARS,
    BRIEF_TENSIONS,
    EARLIER_BODY_CAP,
    ENTITIES_CAP,
    GROUNDING_CAP,
    GROUNDING_TOTAL_CAP,
    LAST_BODY_CAP,
    PEER_ANSWERS_CAP,
    PROMPTS,
    PromptContext,
    _answer_share,
    _entities,
    is_newcomer,
    render_context_brief,
    render_expert_prompt,
    render_judge_prompt,
    render_repair_prompt,
)
from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.judging.synthesis import Standing, Synthesis
from concord.orchestrator.panel.panels import infer_panel
from concord.store.model import PanelSeat
from tests.conftest import corpus_dialogue

QUESTION = "How should the team roll out its new billing service?"
ROLES = [
    "Platform Architect",
    "Security Lead",
    "Data Engineer",
    "Product Manager",
    "SRE",
    "Finance Analyst",
    "QA Lead",
    "UX Researcher",
    "Support Lead",
    "Legal Counsel",
]
NAMES = ["Muffin", "Cupcake", "Scone", "Eclair", "Donut", "Brioche", "Croissant", "Macaron", "Cannoli", "Strudel"]

# Headings of the expert prompt.
INTRO = "This is an alignment dialogue"
SEAT = "## Your seat on the panel"
IDENTITY = "You are "
FOCUS = "**Your Focus**:"
DUTIES = "## How you take part"
QUESTION_HEADING = "## The question before the panel"
BRIEF = "## Context for Round"
READ_CONTEXT = "## What the panel has said up to round"
MODERATOR = "## Moderator notes"
OUTPUT = "## Where your answer goes"
STRUCTURE = "## Answer structure"
CLOSING = "## Closing rule"
GROUNDING = "## Reference files"


def member(name: str = "Galette", role: str = "Migration Specialist", source: str = "pool") -> PanelSeat:
    """A panel member for prompt tests."""
    return PanelSeat(name, role, "Adjacent", source, 0.7)


def table(rows: int) -> str:
    """A tensions.md in Concord's layout with `rows` tensions."""
    lines = ["# Tensions", "", "| ID | Label | Status | Raised | Resolved | Resolution |", "|---|---|---|---|---|---|"]
    for i in range(1, rows + 1):
        lines.append(f"| T00{i:02d} | Tension number {i} | open | {NAMES[i % len(NAMES)]}, R0 | | |")
    return "\n".join(lines) + "\n"


def previous_panel(size: int = 10) -> tuple[PanelSeat, ...]:
    """A round-0 panel of `size` experts."""
    return tuple(PanelSeat(NAMES[i], ROLES[i], "Core", "pool", 0.9) for i in range(size))


def peers(size: int = 10) -> dict[str, str]:
    """Round-0 answers of a panel, each with a distinctive phrase."""
    return {
        NAMES[i]: f"[PERSPECTIVE P01: point of {NAMES[i]}]\nDistinct remark number {i}.\n\n---\n" for i in range(size)
    }


def context(
    expert: PanelSeat | None = None, round: int = 1, *, newcomer: bool | None = None, **fields: object
) -> PromptContext:
    """A round-N context with a full previous round unless overridden."""
    expert = expert or member()
    values: dict[str, object] = (
        {
            "tensions_table": table(8),
            "previous_summary": "Round 0 summary. " + "The panel agreed on a staged rollout. " * 30,
            "previous_panel": previous_panel(),
            "peer_answers": peers(),
        }
        if round >= 1
        else {}
    )
    values.update(fields)
    return PromptContext(
        question=QUESTION,
        round=round,
        expert=expert,
        newcomer=is_newcomer(expert, round) if newcomer is None else newcomer,
        **values,  # type: ignore[arg-type]
    )


def section(text: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level outside code fences."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading)
    lines = text[start:].split("\n")
    fence = ""
    for index, line in enumerate(lines[1:], 1):
        run = re.match(r"`{3,}", line)
        if run and (not fence or (run.group(0) == fence and line.strip() == fence)):
            fence = "" if fence else run.group(0)
        elif not fence and re.match(rf"#{{1,{level}}} ", line):
            return "\n".join(lines[:index])
    return text[start:]


def test_round_zero_prompt_has_no_prior_context() -> None:
    prompt = render_expert_prompt(context(member("Muffin", "Platform Architect"), round=0)).as_markdown()
    assert IDENTITY + "Muffin 🧁, Platform Architect in an alignment dialogue" in prompt
    for absent in (BRIEF, READ_CONTEXT, "| T", FOCUS, GROUNDING):
        assert absent not in prompt
    assert render_context_brief(context(round=0, newcomer=True, tensions_table=table(3))) == ""


def test_prompt_file_shows_system_then_user() -> None:
    rendered = render_expert_prompt(context())
    text = rendered.as_markdown()
    assert text.startswith("# System\n\n" + rendered.system)
    assert "\n\n# User\n\n" + rendered.user in text
    assert rendered.system.startswith(INTRO) and "Galette" not in rendered.system
    assert rendered.user.startswith(QUESTION_HEADING)
    assert QUESTION in rendered.user


def test_sections_follow_protocol_order() -> None:
    ctx = context(focus="Resolve T0001", grounding={"notes.md": "Keep the invoice format."})
    text = render_expert_prompt(ctx).as_markdown()
    order = [
        INTRO,
        DUTIES,
        QUESTION_HEADING,
        GROUNDING,
        READ_CONTEXT,
        BRIEF,
        SEAT,
        "\n" + IDENTITY + "Galette",
        FOCUS,
        OUTPUT,
        STRUCTURE,
        CLOSING,
    ]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    # The focus line sits right after the identity line.
    seat = section(text, SEAT).splitlines()
    assert seat[2].startswith(IDENTITY + "Galette") and seat[3:5] == ["", "**Your Focus**: Resolve T0001"]


def test_newcomer_gets_a_capped_brief() -> None:
    ctx = context()
    brief = render_context_brief(ctx)
    prompt = render_expert_prompt(ctx).user
    assert brief and brief in prompt
    rows = [line for line in section(brief, "### Key Tensions").splitlines() if line.startswith("| T")]
    assert len(rows) == BRIEF_TENSIONS
    assert "... and 3 more tensions" in brief
    summary = section(brief, "### Round 0 Summary")
    cut = ctx.previous_summary.strip()[:BRIEF_SUMMARY_CHARS] + "..."
    assert cut in summary
    assert ctx.previous_summary.strip()[: BRIEF_SUMMARY_CHARS + 1] not in summary
    lines = [line for line in section(brief, "### Round 0 Panel").splitlines() if line.startswith("- ")]
    assert lines == [f"- 🧁 {m.name}: {m.role}" for m in previous_panel()[:BRIEF_PANEL_LINES]]
    assert "### Your Task" in brief


def test_brief_summary_is_cut_in_characters_not_bytes() -> None:
    summary = "é" * 600
    brief = render_context_brief(context(previous_summary=summary))
    assert "é" * BRIEF_SUMMARY_CHARS + "..." in brief
    assert "é" * (BRIEF_SUMMARY_CHARS + 1) not in brief


def test_short_inputs_are_not_marked_as_cut() -> None:
    brief = render_context_brief(context(tensions_table=table(3), previous_summary="Short summary."))
    assert "more tensions" not in brief
    assert "Short summary.\n" in brief and "Short summary...." not in brief


def test_brief_drops_sections_without_input() -> None:
    brief = render_context_brief(context(tensions_table="", previous_panel=(), previous_summary="Only this."))
    assert "### Key Tensions" not in brief and "### Round 0 Panel" not in brief
    assert "### Round 0 Summary" in brief
    assert render_context_brief(context(tensions_table="", previous_panel=(), previous_summary="")) == ""


def test_retained_expert_gets_no_brief_but_the_read_context() -> None:
    retained = member("Muffin", ROLES[0], "retained")
    assert not is_newcomer(retained, 1)
    prompt = render_expert_prompt(context(retained)).user
    assert BRIEF not in prompt and "more tensions" not in prompt
    assert READ_CONTEXT in prompt


@pytest.mark.parametrize("source", ["pool", "created"])
def test_pool_created_and_omitted_sources_get_the_brief(source: str) -> None:
    assert is_newcomer(member(source=source), 1)
    assert BRIEF in render_expert_prompt(context(member(source=source))).user
    omitted = PanelSeat("Tartlet", "Data Migration Specialist", "Adjacent", relevance=0.7)  # no source recorded
    assert is_newcomer(omitted, 2)
    assert not is_newcomer(omitted, 0)


@pytest.mark.parametrize("source", ["retained", "pool"])
def test_every_later_round_carries_tensions_and_all_peer_answers(source: str) -> None:
    ctx = context(member("Muffin", ROLES[0], source), round=2)
    block = section(render_expert_prompt(ctx).user, READ_CONTEXT)
    for row in table(8).splitlines():
        assert row in block
    for name, text in peers().items():
        assert text.strip() in block
        assert f"#### 🧁 {name} ({ROLES[NAMES.index(name)]})" in block
    assert "your own" not in block  # the expert's own answer is listed like any other
    assert "round 1" in block.splitlines()[0]


def test_peer_answers_with_fences_stay_inside_their_block() -> None:
    tricky = "[PERSPECTIVE P01: code]\n```python\nprint('x')\n```\n\n---\n"
    block = section(render_expert_prompt(context(peer_answers={"Cupcake": tricky})).user, READ_CONTEXT)
    assert "````text\n" + tricky.strip() + "\n````" in block


def test_focus_line_only_when_set() -> None:
    assert FOCUS not in render_expert_prompt(context()).user
    with_focus = render_expert_prompt(context(focus="Signal CONVERGE or name your blockers")).user
    assert "**Your Focus**: Signal CONVERGE or name your blockers" in with_focus


def test_identity_and_focus_lines_are_readable_by_infer_panel(tmp_path: Path) -> None:
    round_dir = tmp_path / "round-1"
    round_dir.mkdir()
    ctx = context(member("Galette", "Data Migration Specialist"), focus="Resolve T0001")
    (round_dir / "galette.prompt.md").write_text(render_expert_prompt(ctx).as_markdown(), encoding="utf-8")
    (round_dir / "galette.md").write_text("[PERSPECTIVE P01: x]\ny\n---\n", encoding="utf-8")
    (only,) = infer_panel(round_dir, 1).members
    assert (only.name, only.role, only.focus) == ("Galette", "Data Migration Specialist", "Resolve T0001")


def test_grounding_is_inlined_and_capped() -> None:
    small = "Invoices are monthly."
    large = "€" * GROUNDING_CAP  # 3 bytes a character: three times the cap
    prompt = render_expert_prompt(context(grounding={"small.md": small, "large.md": large})).user
    grounding = section(prompt, GROUNDING)
    assert "### small.md" in grounding and small in grounding
    large_part = section(grounding, "### large.md")
    kept = max(re.findall("€+", large_part), key=len)
    assert len(kept.encode("utf-8")) <= GROUNDING_CAP
    assert len(kept.encode("utf-8")) > GROUNDING_CAP - 3
    assert f"{len(kept.encode('utf-8'))} of {3 * GROUNDING_CAP} bytes" in large_part
    assert "bytes" not in section(grounding, "### small.md")


def test_templates_state_the_convergence_signal() -> None:
    assert "[MOVE:CONVERGE]" in (PROMPTS / "expert.md").read_text(encoding="utf-8")
    for ctx in (context(round=0), context()):
        assert "[MOVE:CONVERGE]" in render_expert_prompt(ctx).user
    assert "[MOVE:CONVERGE]" in render_repair_prompt(context(), "no markers").user


def test_answer_structure_asks_for_what_the_parser_reads() -> None:
    structure = section(render_expert_prompt(context()).user, STRUCTURE)
    parsed = parse_answer(structure)
    kinds = {m.kind for m in parsed.markers}
    assert kinds >= {
        "perspective",
        "tension",
        "refinement",
        "concession",
        "resolved",
        "converge",
        "ref",
        "move",
        "dissent",
    }
    assert parsed.converge and not parsed.unknown
    for marker in parsed.markers:
        if marker.kind in ("refinement", "concession", "resolved"):
            assert marker.targets and all(t.is_global and t.kind == "T" for t in marker.targets)
    multi = next(m for m in parsed.of("resolved") if len(m.targets) == 2)
    assert [t.raw for t in multi.targets] == ["T0003", "T0005"]
    concession = next(m for m in parsed.of("concession") if m.addressee)
    assert concession.addressee == "cupcake"


def test_repair_prompt_shows_the_problem_and_the_answer() -> None:
    ctx = context()
    bad = "I think we should just ship it."
    repair = render_repair_prompt(ctx, bad)
    assert repair.system == render_expert_prompt(ctx).system
    assert "could not read the answer you just gave: it contains no marker Concord can parse." in repair.user
    assert "```text\n" + bad + "\n```" in repair.user
    assert STRUCTURE in repair.user and CLOSING in repair.user and READ_CONTEXT in repair.user
    empty = render_repair_prompt(ctx, "  ")
    assert "### The answer as you sent it" not in empty.user


def test_judge_prompt_lists_every_answer_and_the_json_shape() -> None:
    answers = {"Muffin": "[PERSPECTIVE P01: a]\nb\n---", "Cupcake": "[TENSION T01: c]\nd\n---"}
    rendered = render_judge_prompt(QUESTION, 0, answers, tensions_table=table(2), panel=previous_panel(2))
    assert '"experts": [{"name": "Muffin", "W": 0' in rendered.system
    assert "### 🧁 Muffin (Platform Architect)" in rendered.user
    assert "### 🧁 Cupcake (Security Lead)" in rendered.user
    assert all(text in rendered.user for text in answers.values())
    assert "| T0002 |" in rendered.user and QUESTION in rendered.user
    assert "$" not in rendered.system + rendered.user


def test_every_template_section_is_plain_text() -> None:
    for path in (entry for entry in PROMPTS.iterdir() if entry.name.endswith(".md")):
        if path.name == "README.md":
            continue
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<!-- section: "), path.name
        assert "{{" not in text and "{%" not in text, path.name  # string.Template only, no Jinja


@pytest.mark.corpus
def test_jira_final_tensions_give_five_rows_and_six_more() -> None:
    jira = corpus_dialogue("jira")
    tensions = (jira / "tensions.md").read_text(encoding="utf-8")
    recorded_rows = [line.rstrip() for line in tensions.splitlines() if line.startswith("| T")]
    assert len(recorded_rows) == 11
    brief = render_context_brief(context(tensions_table=tensions, previous_summary="", previous_panel=()))
    shown = [line for line in brief.splitlines() if line.startswith("| T")]
    assert shown == recorded_rows[:5]
    assert "... and 6 more tensions" in brief


@pytest.mark.corpus
def test_jira_round_zero_summary_is_cut_like_the_recorded_brief() -> None:
    jira = corpus_dialogue("jira")
    summary = (jira / "round-0.summary.md").read_text(encoding="utf-8")
    recorded = (jira / "round-1" / "muffin.prompt.md").read_text(encoding="utf-8")
    brief = render_context_brief(context(tensions_table="", previous_panel=(), previous_summary=summary))
    cut = summary.strip()[:BRIEF_SUMMARY_CHARS]
    assert cut + "..." in brief
    assert cut in recorded  # the recorded brief showed the same 500 characters


def test_last_rounds_answers_share_the_prompt_budget() -> None:
    assert _answer_share({"a": "x" * 10, "b": "y" * 20}) == 20
    small, big = "s" * 1000, "b" * PEER_ANSWERS_CAP
    share = _answer_share({"small": small, "one": big, "two": big})
    assert share == (PEER_ANSWERS_CAP - 1000) // 2


def note(id: str, round: int, body: str = "", *, kind: str = "perspective", author: str = "Muffin") -> EntityNote:
    """An entity as a prompt lists it."""
    return EntityNote(id, kind, round, "open", (author,), f"label of {id}", body, f"round-{round}/{author.lower()}.md")


def test_moderator_notes_are_shared_and_omitted_when_empty() -> None:
    notes = ("Keep the budget under 10k a month.", "  ", "Assume EU data residency.")
    user = render_expert_prompt(context(moderator_notes=notes)).user
    block = section(user, MODERATOR)
    assert "- Keep the budget under 10k a month.\n- Assume EU data residency." in block
    assert user.index(MODERATOR) < user.index(READ_CONTEXT) < user.index(SEAT)
    assert MODERATOR not in render_expert_prompt(context()).user
    assert MODERATOR not in render_expert_prompt(context(moderator_notes=(" ",))).user
    assert MODERATOR in render_repair_prompt(context(moderator_notes=notes), "x").user


def test_entities_carry_ids_authors_and_bodies_last_round_in_full() -> None:
    entities = [note("P0101", 1, "A body from round one."), note("P0002", 0, "e" * (EARLIER_BODY_CAP * 2))]
    block = section(render_expert_prompt(context(round=2, entities=entities)).user, "### Perspectives")
    last = section(block, "#### Raised in round 1")
    assert "- **P0101** (perspective, open, by Muffin): label of P0101\n  A body from round one." in last
    earlier = section(block, "#### Still in play from earlier rounds")
    assert "**P0002**" in earlier and "e" * EARLIER_BODY_CAP in earlier and "e" * (EARLIER_BODY_CAP + 1) not in earlier
    assert "the whole text is in round-0/muffin.md" in earlier


def test_entities_over_budget_drop_earlier_bodies_then_entries() -> None:
    last = [note(f"P01{i:02d}", 1, f"last body {i} " + "b" * 500) for i in range(1, 4)]
    ctx = context(round=2, entities=[*last, note("P0001", 0, "old body " + "o" * 300)])
    full = _entities(ctx)
    assert "old body" in full and "last body 3" in full
    trimmed = _entities(ctx, cap=len(full.encode("utf-8")) - 1)
    assert "P0001" in trimmed and "old body" not in trimmed and "last body 3" in trimmed
    bare = _entities(ctx, cap=len(trimmed.encode("utf-8")) - 1)
    assert "P0103" in bare and "P0001" in bare and "last body" not in bare
    many = [note(f"P{r:02d}{i:02d}", r, "b" * LAST_BODY_CAP) for r in range(1, 10) for i in range(1, 99)]
    text = _entities(context(round=2, entities=many))
    assert len(text.encode("utf-8")) <= ENTITIES_CAP
    assert re.search(r"\.\.\. and \d+ more left out", text)


def test_synthesis_names_agreed_and_contested_ids() -> None:
    synthesis = Synthesis(
        round=1,
        resolved=(Standing("T0001", "speed versus safety", "resolved"),),
        supported=(Standing("P0003", "staged rollout", "open", 2, ("P0102",)),),
        open=(Standing("T0102", "cost versus upkeep", "addressed"),),
        opposed=(Standing("P0004", "one big migration", "open", 1, ("P0105",)),),
    )
    block = section(render_expert_prompt(context(round=2, synthesis=synthesis)).user, "### Where the panel stands")
    agreed, _, contested = block.partition("**Still contested**")
    assert "- T0001, resolved: speed versus safety" in agreed
    assert "- P0003, backed 2 time(s) (by P0102): staged rollout" in agreed
    assert "- T0102, addressed: cost versus upkeep" in contested
    assert "- P0004, opposed 1 time(s) (by P0105): one big migration" in contested
    assert "Nothing is settled" in render_expert_prompt(context(synthesis=Synthesis(round=0))).user


def test_own_earlier_ids_and_anonymity_sit_in_the_experts_own_part() -> None:
    user = render_expert_prompt(context(own_ids=("P0003", "T0101"), anonymous=True, alias="Expert C")).user
    seat = user[user.index(SEAT) :]
    assert "**Your earlier markers**: P0003, T0101." in seat
    assert "this dialogue is anonymous" in seat and "appear as Expert C" in seat
    assert "Your earlier markers" not in render_expert_prompt(context()).user
    assert "anonymous" not in render_expert_prompt(context(alias="Expert C")).user


def test_every_expert_of_a_round_shares_system_and_everything_before_their_seat() -> None:
    shared = {
        "grounding": {"notes.md": "Invoices are monthly."},
        "moderator_notes": ("Assume EU data residency.",),
        "entities": [note("P0001", 0, "Round zero body.")],
        "synthesis": Synthesis(round=0, open=(Standing("T0001", "speed versus safety", "open"),)),
    }
    experts = [
        member("Muffin", ROLES[0], "retained"),
        member("Galette", "Migration Specialist", "pool"),
        member("Scone", ROLES[2], "created"),
    ]
    prompts = [
        render_expert_prompt(context(e, focus="Resolve T0001" if e.name == "Scone" else None, **shared))
        for e in experts
    ]
    assert len({p.system for p in prompts}) == 1
    # The expert's own part opens with the newcomer brief, or with the seat for a retained expert.
    prefixes = {
        p.user[: p.user.index(BRIEF if is_newcomer(e, 1) else SEAT)] for p, e in zip(prompts, experts, strict=True)
    }
    assert len(prefixes) == 1
    (prefix,) = prefixes
    for material in ("Invoices are monthly.", "Assume EU data residency.", "Round zero body.", "T0001", QUESTION):
        assert material in prefix
    for text in peers().values():
        assert text.strip() in prefix
    for e in experts:
        assert e.name not in prompts[0].system and f"round-1/{e.slug}.md" not in prefix


def test_grounding_lists_names_and_shares_a_total_cap() -> None:
    files = {f"doc{i}.md": "z" * GROUNDING_CAP for i in range(8)}
    block = section(render_expert_prompt(context(grounding=files)).user, GROUNDING)
    assert ", ".join(f"`doc{i}.md`" for i in range(8)) in block
    kept = [len(run) for run in re.findall("z{2,}", block)]
    assert sum(kept) <= GROUNDING_TOTAL_CAP and max(kept) == GROUNDING_TOTAL_CAP // 8
    assert "The whole file is grounding/doc0.md in the dialogue folder." in block
