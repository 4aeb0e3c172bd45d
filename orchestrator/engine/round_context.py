"""The material one expert reads in a round, gathered from the snapshot and the dialogue's judge files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from concord.orchestrator.blue.layout import read_text
from concord.orchestrator.engine.anonymity import label_letters, mask
from concord.orchestrator.engine.entity_notes import entity_notes, own_ids
from concord.orchestrator.engine.prompts import PromptContext, anonymous_name
from concord.orchestrator.judging.llm_judge import JUDGE
from concord.orchestrator.judging.synthesis import synthesise
from concord.store.model import PanelSeat
from concord.store.snapshot import Snapshot

_NONE: Mapping[str, str] = MappingProxyType({})


def prompt_context(
    snap: Snapshot,
    directory: Path,
    number: int,
    member: PanelSeat,
    *,
    grounding: Mapping[str, str] = _NONE,
    anonymous: bool = False,
) -> PromptContext:
    """What `member` reads in round `number`: the question, grounding and moderator notes, and from round 1 the entities so far,
    the synthesis, the tensions, the previous panel and its answers; in an anonymous dialogue every expert is
    named by a label (Expert A, …) that is the same for every recipient of the round."""
    names = {slug: anonymous_name(letter) for slug, letter in label_letters(snap, number).items()} if anonymous else {}
    # Texts are masked by name and by role, so "as Applied Cryptographer" does not give an expert away either.
    masks = {**{e.role.lower(): names[slug] for slug, e in snap.experts.items() if e.role and slug in names}, **names}
    base = PromptContext(
        question=snap.dialogue.question,
        round=number,
        expert=member,
        newcomer=False,
        focus=member.focus,
        grounding=grounding,
        moderator_notes=[n.text for n in sorted(snap.notes, key=lambda n: (n.round, n.seq)) if n.round <= number],
        anonymous=anonymous,
        alias=names.get(member.slug, ""),
    )
    if number == 0:
        return base
    previous = snap.rounds[number - 1]
    previous_answers = [t for t in snap.texts if t.kind == "answer" and t.round == number - 1 and t.expert != JUDGE]
    peers = {t.expert: t.text for t in previous_answers if not t.repair}
    peers.update({t.expert: t.text for t in previous_answers if t.repair})

    def shown(slug: str) -> str:
        return names.get(slug, slug.capitalize()) if anonymous else slug.capitalize()

    return replace(
        base,
        newcomer=member.source != "retained",
        tensions_table=mask(read_if_present(directory / "tensions.md"), masks),
        previous_summary=mask(previous.summary or read_if_present(directory / f"round-{number - 1}.summary.md"), masks),
        previous_panel=() if anonymous else previous.panel,
        peer_answers={shown(slug): mask(text, masks) for slug, text in sorted(peers.items())},
        entities=[
            replace(n, label=mask(n.label, masks), body=mask(n.body, masks))
            for n in entity_notes(snap, number, shown, anonymous=anonymous)
        ],
        synthesis=synthesise(snap, number - 1).relabelled(lambda label: mask(label, masks)),
        own_ids=own_ids(snap, number, member.slug),
    )


def read_if_present(path: Path) -> str:
    """A judge file's text, empty when it is not written yet."""
    return read_text(path) if path.exists() else ""
