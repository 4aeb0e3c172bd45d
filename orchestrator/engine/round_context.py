"""The material one expert reads in a round, gathered from the snapshot and the dialogue's judge files."""

from __future__ import annotations

from pathlib import Path

from concord.orchestrator.blue.layout import read_text
from concord.orchestrator.engine.prompts import PromptContext
from concord.orchestrator.judging.llm_judge import JUDGE
from concord.store.model import PanelSeat
from concord.store.snapshot import Snapshot


def prompt_context(snap: Snapshot, directory: Path, number: int, member: PanelSeat) -> PromptContext:
    """What `member` reads in round `number`: the question, and from round 1 the tensions, summary, panel and answers."""
    if number == 0:
        return PromptContext(
            question=snap.dialogue.question, round=0, expert=member, newcomer=False, focus=member.focus
        )
    previous = snap.rounds[number - 1]
    previous_answers = [t for t in snap.texts if t.kind == "answer" and t.round == number - 1 and t.expert != JUDGE]
    peers = {t.expert: t.text for t in previous_answers if not t.repair}
    peers.update({t.expert: t.text for t in previous_answers if t.repair})
    return PromptContext(
        question=snap.dialogue.question,
        round=number,
        expert=member,
        newcomer=member.source != "retained",
        focus=member.focus,
        tensions_table=read_if_present(directory / "tensions.md"),
        previous_summary=previous.summary or read_if_present(directory / f"round-{number - 1}.summary.md"),
        previous_panel=previous.panel,
        peer_answers={name.capitalize(): text for name, text in sorted(peers.items())},
    )


def read_if_present(path: Path) -> str:
    """A judge file's text, empty when it is not written yet."""
    return read_text(path) if path.exists() else ""
