"""Tests for the seeded sim panel: labelled output, valid markers, cited ids, convergence under the rules judge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from concord.orchestrator.engine.prompts import PromptContext, is_newcomer, render_expert_prompt
from concord.orchestrator.engine.providers import Call, SimProvider
from concord.orchestrator.engine.sim import notice, read_identity, read_round, read_tensions, simulate_answer
from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.judging.rules_judge import ExpertAnswer, judge_round
from concord.store.backends.sqlite import SQLiteBackend
from concord.store.crypto.keys import LocalKeyProvider
from concord.store.dialogue_store import DialogueStore
from concord.store.model import PanelSeat
from concord.store.rules import gate
from concord.store.snapshot import Snapshot

NAMES = ["Muffin", "Cupcake", "Scone", "Eclair", "Donut", "Brioche", "Croissant", "Macaron"]
ROLES = [
    "Platform Architect",
    "Security Lead",
    "Data Engineer",
    "Product Manager",
    "SRE",
    "Finance Analyst",
    "QA Lead",
    "UX Researcher",
]
QUESTION = "How should the team roll out its new billing service?"
TABLE = """| ID | Label | Status | Raised | Resolved | Resolution |
|---|---|---|---|---|---|
| T0001 | Speed versus safety | open | Muffin, R0 | | |
| T0002 | Build versus adopt | addressed | Cupcake, R0 | | |
| T0003 | Privacy versus observability | resolved | Scone, R0 | R1, Scone | kept both |
| T0004 | Cost versus upkeep | reopened | Muffin, R0 | | |
"""


def prompt(name: str, role: str, round: int, tensions: str = "") -> str:
    """A prompt in the shape the sim reads: identity line, round line, tensions rows."""
    return f"You are {name} 🧁, {role} in an alignment dialogue.\n\nThis is round {round}.\n\n{tensions}"


def answer(name: str, round: int, tensions: str = "", seed: int = 0) -> str:
    """The sim's answer for one expert."""
    return simulate_answer(seed=seed, expert=name.lower(), round=round, prompt=prompt(name, "SRE", round, tensions))


def test_answers_are_labelled_simulated_and_still_parse() -> None:
    text = answer("Muffin", 0)
    assert text.splitlines()[0] == notice(0)
    parsed = parse_answer(text)
    assert parsed.has_content and parsed.ends_with_rule and not parsed.unknown


@pytest.mark.parametrize("seed", range(6))
def test_round_zero_gives_perspectives_and_one_tension(seed: int) -> None:
    parsed = parse_answer(answer("Cupcake", 0, seed=seed))
    assert 1 <= len(parsed.of("perspective")) <= 2
    assert len(parsed.of("tension")) == 1
    assert all(m.label and m.body for m in parsed.of("perspective") + parsed.of("tension"))
    assert not parsed.converge


def test_same_inputs_same_text_and_inputs_matter() -> None:
    base = answer("Scone", 1, TABLE)
    assert base == answer("Scone", 1, TABLE)
    others = {
        answer("Scone", 1, TABLE, seed=1),
        answer("Eclair", 1, TABLE),
        answer("Scone", 2, TABLE),
        simulate_answer(seed=0, expert="scone", round=1, prompt=prompt("Scone", "SRE", 1, TABLE) + "more"),
    }
    assert base not in others


def test_reads_identity_round_and_tension_rows() -> None:
    text = prompt("Galette", "Data Migration Specialist", 3, TABLE)
    assert read_identity(text) == ("Galette", "Data Migration Specialist")
    assert read_round(text) == 3
    rows = read_tensions(text + "\n" + TABLE)  # a repeated table (brief + full table) counts once
    assert [(r.id, r.status, r.author, r.is_open) for r in rows] == [
        ("T0001", "open", "Muffin", True),
        ("T0002", "addressed", "Cupcake", True),
        ("T0003", "resolved", "Scone", False),
        ("T0004", "reopened", "Muffin", True),
    ]


def test_reads_other_table_layouts() -> None:
    jira_like = "| T0101 | **Sync direction** — who edits | **Resolved R1** | keep git |\n| T0102 | Tokens | Open | Brioche, Donut |"
    bare = "| T0201 | No status column | Strudel |"
    rows = read_tensions(jira_like + "\n" + bare)
    assert [(r.id, r.status, r.author) for r in rows] == [
        ("T0101", "resolved", None),
        ("T0102", "open", "Brioche"),
        ("T0201", "open", "Strudel"),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_round_one_resolves_own_tensions_and_cites_table_ids(seed: int) -> None:
    parsed = parse_answer(answer("Muffin", 1, TABLE, seed))
    resolved = {t.raw for m in parsed.of("resolved") for t in m.targets}
    assert {"T0001", "T0004"} <= resolved  # Muffin's own open tensions
    assert "T0003" not in resolved  # already resolved
    engaged = parsed.of("refinement") + parsed.of("concession")
    assert len(engaged) == 1 and engaged[0].targets[0].raw in {"T0001", "T0002", "T0003", "T0004"}
    assert not parsed.of("tension") and not parsed.converge
    assert len(parsed.of("perspective")) <= 1


@pytest.mark.parametrize("name", NAMES)
def test_later_rounds_resolve_every_open_tension_and_converge(name: str) -> None:
    parsed = parse_answer(answer(name, 2, TABLE))
    resolved = {t.raw for m in parsed.of("resolved") for t in m.targets}
    assert resolved == {"T0001", "T0002", "T0004"}
    assert not parsed.of("perspective") and not parsed.of("tension")
    assert parsed.of("refinement") or parsed.of("concession")
    assert parsed.converge and parsed.ends_with_rule


def test_concessions_name_the_author() -> None:
    texts = [answer("Eclair", 1, TABLE, seed) for seed in range(20)]
    concessions = [m for text in texts for m in parse_answer(text).of("concession")]
    assert concessions, "some seed should concede"
    for marker in concessions:
        author = {"T0001": "muffin", "T0002": "cupcake", "T0003": "scone", "T0004": "muffin"}[marker.targets[0].raw]
        assert marker.addressee == author


async def test_unparsable_knob_breaks_one_expert_once() -> None:
    sim = SimProvider(3, unparsable=[("Muffin", 1)], unrepairable=[("cupcake", 1)])
    text = prompt("Muffin", "SRE", 1, TABLE)

    async def parsed(expert: str, round: int, repair: bool = False) -> bool:
        reply = await sim.complete(Call("", text, expert, round, "sim", repair=repair))
        assert reply.simulated and reply.text.startswith(notice(3))
        return parse_answer(reply.text).has_content

    assert not await parsed("muffin", 1)
    assert await parsed("muffin", 1, repair=True)
    assert await parsed("muffin", 2)
    assert not await parsed("cupcake", 1) and not await parsed("cupcake", 1, repair=True)
    assert await parsed("scone", 1)


def _tensions_table(snapshot: Snapshot) -> str:
    """A tensions.md in the recommended layout (rows start with `| T`)."""
    lines = ["| ID | Label | Status | Raised | Resolved | Resolution |", "|---|---|---|---|---|---|"]
    for t in sorted(snapshot.of_kind("tension"), key=lambda t: t.id):
        raised = ", ".join(c.capitalize() for c in t.contributors)
        lines.append(f"| {t.id} | {t.label} | {t.status} | {raised}, R{t.round} | | |")
    return "\n".join(lines) + "\n"


@pytest.fixture
async def dialogue_store(tmp_path: Path) -> AsyncIterator[DialogueStore]:
    """A DialogueStore over a fresh SQLite file."""
    key_file = tmp_path / "umk.key"
    LocalKeyProvider.create_key_file(key_file)
    backend = await SQLiteBackend(tmp_path / "concord.db").open()
    try:
        yield DialogueStore(backend, LocalKeyProvider(key_file), tenant="local", principal="tester")
    finally:
        await backend.close()


@pytest.mark.parametrize("seed", [0, 7])
async def test_eight_sims_converge_under_the_rules_judge(dialogue_store: DialogueStore, seed: int) -> None:
    dialogue_id = await dialogue_store.create_dialogue("Billing rollout", QUESTION)
    sim = SimProvider(seed)
    previous: dict[str, str] = {}
    for number in range(4):
        snapshot = await dialogue_store.load_partition(dialogue_id)
        source = "pool" if number == 0 else "retained"
        members = [PanelSeat(NAMES[i], ROLES[i], "Core", source, 0.9) for i in range(8)]
        answers = []
        for m in members:
            ctx = PromptContext(
                QUESTION,
                number,
                m,
                is_newcomer(m, number),
                tensions_table=_tensions_table(snapshot) if number else "",
                previous_summary=snapshot.rounds[number - 1].summary if number else "",
                previous_panel=members if number else (),
                peer_answers=previous,
            )
            rendered = render_expert_prompt(ctx)
            reply = await sim.complete(Call(rendered.system, rendered.user, m.slug, number, "sim"))
            answers.append(ExpertAnswer(m.slug, reply.text))
        await dialogue_store.register_round(dialogue_id, judge_round(snapshot, number, members, answers).batch)
        converged, blockers, state = gate((await dialogue_store.load_partition(dialogue_id)).last_round)
        if converged:
            break
        previous = {a.expert.capitalize(): a.text or "" for a in answers}
    assert converged, blockers
    assert 2 <= state["round"] <= 3
    assert state["velocity"] == 0 and state["converge_percent"] == 100.0 and state["answered"] == 8
