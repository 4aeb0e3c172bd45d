"""One exchange with one seat: its prompt written before the call, its answer stored, reused on resume, paid once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from concord.orchestrator.blue.atomic import write_atomic
from concord.orchestrator.blue.layout import read_text
from concord.orchestrator.engine.prompts import NotAPromptFile, RenderedPrompt
from concord.orchestrator.engine.providers import AgentFailed, Answer, Call, Provider
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import BadInput, ItemTooLarge
from concord.store.model import PanelSeat, TextRecord


@dataclass(frozen=True)
class Sampling:
    """The model one seat is asked through, and how."""

    model: str
    max_tokens: int
    temperature: float


class ForeignFile(BadInput):
    """A prompt or answer file in the dialogue's directory that is not this dialogue's own."""


async def _bind_file(path: Path, text: str, what: str) -> None:
    """Write `text` to `path` if it is missing; refuse a file there that differs from it."""
    if not path.exists():
        await asyncio.to_thread(write_atomic, path, text)
    elif await asyncio.to_thread(read_text, path) != text:
        raise ForeignFile(f"{path} is not this dialogue's: it differs from {what}; move the file away and resume")


class Budget:
    """Tokens spent by a dialogue against its optional cap."""

    def __init__(self, cap: int | None, spent: int) -> None:
        self.cap, self.spent, self.exhausted = cap, spent, False

    def add(self, tokens: int) -> None:
        """Count tokens a call used."""
        self.spent += tokens

    def spent_all(self) -> bool:
        """True once the cap is reached."""
        return self.cap is not None and self.spent >= self.cap


class Exchanges:
    """The prompts and answers of a dialogue's seats, on disk and in the store."""

    def __init__(self, store: DialogueStore, publish: Callable[..., Any]) -> None:
        self.store = store
        self.publish = publish

    async def exchange(
        self,
        did: str,
        directory: Path,
        number: int,
        member: PanelSeat,
        prompt: RenderedPrompt,
        budget: Budget,
        stored_texts: list[TextRecord],
        *,
        repair: bool,
        provider: Provider,
        sampling: Sampling,
        output_format: type[BaseModel] | None = None,
    ) -> tuple[str | None, int]:
        """Write the prompt, then reuse this dialogue's stored/written answer or call the provider once.

        A file already on disk counts only when it is this dialogue's: a prompt or answer file must equal
        the record stored for this seat (a prompt with no record yet, the prompt rendered for it now); an
        answer file with no record yet (it arrived while the store was unreachable) is adopted only beside
        this seat's stored prompt. Anything else is refused with ForeignFile, never adopted or overwritten.
        A stored prompt is the one that counts, so a resumed round sends and audits what was prepared before.
        `output_format` asks the provider for structured output following that model (the caller validates it).
        Returns the answer text (None when the call failed or the budget is spent) and its tokens.
        """
        stem = member.slug + (".repair" if repair else "")
        prompt_rel, answer_rel = f"round-{number}/{stem}.prompt.md", f"round-{number}/{stem}.md"
        mine = {t.kind: t for t in stored_texts if t.expert == member.slug and t.repair == repair}
        stored_prompt = mine.get("prompt")
        prompt_text = prompt.as_markdown() if stored_prompt is None else stored_prompt.text
        await _bind_file(
            directory / prompt_rel,
            prompt_text,
            "the prompt stored for it" if stored_prompt else "the prompt prepared for it",
        )
        try:
            prompt = RenderedPrompt.from_markdown(prompt_text)
        except NotAPromptFile as exc:
            raise NotAPromptFile(f"{directory / prompt_rel}: {exc}") from None
        prompt_record = TextRecord("prompt", number, member.slug, prompt_text, repair, path=prompt_rel)
        stored = mine.get("answer")
        if stored is not None:
            await self.store.record_text(did, prompt_record)
            await _bind_file(directory / answer_rel, stored.text, "the answer stored for it")
            return stored.text, stored.input_tokens + stored.output_tokens
        if (directory / answer_rel).exists():
            if stored_prompt is None:
                raise ForeignFile(
                    f"{directory / answer_rel} is not this dialogue's: no prompt was stored for {stem} "
                    f"in round {number}; move the file away and resume"
                )
            text = read_text(directory / answer_rel)
            await self.store.record_text(did, prompt_record)
            kept = await self.keep_answer(
                did, member, TextRecord("answer", number, member.slug, text, repair, path=answer_rel)
            )
            return (text if kept else None), 0
        if budget.exhausted or budget.spent_all():
            budget.exhausted = True
            await self.store.record_text(did, prompt_record)
            return None, 0
        self.publish(did, "prompt_sent", number, member.slug, repair=repair)
        call = Call(
            prompt.system,
            prompt.user,
            member.slug,
            number,
            sampling.model,
            sampling.max_tokens,
            sampling.temperature,
            repair,
            output_format,
        )
        # The prompt file is on disk before the call; its store record is written while the call runs.
        outcomes: tuple[object, Answer | BaseException] = await asyncio.gather(
            self.store.record_text(did, prompt_record),
            provider.complete(call),
            return_exceptions=True,
        )
        recorded, outcome = outcomes
        if isinstance(recorded, BaseException):
            raise recorded
        if isinstance(outcome, AgentFailed):
            self.publish(did, "expert_absent", number, member.slug, reason=str(outcome))
            return None, 0
        if isinstance(outcome, BaseException):
            raise outcome
        answer = outcome
        budget.add(answer.usage.input_tokens + answer.usage.output_tokens)
        try:
            await asyncio.to_thread(write_atomic, directory / answer_rel, answer.text)
        finally:
            # Stored even when the file cannot be written: a paid answer is never lost, and resume rewrites the file.
            kept = await self.keep_answer(
                did,
                member,
                TextRecord(
                    "answer",
                    number,
                    member.slug,
                    answer.text,
                    repair,
                    path=answer_rel,
                    model=answer.model,
                    input_tokens=answer.usage.input_tokens,
                    output_tokens=answer.usage.output_tokens,
                ),
            )
        return (answer.text if kept else None), answer.usage.input_tokens + answer.usage.output_tokens

    async def keep_answer(self, did: str, member: PanelSeat, record: TextRecord) -> bool:
        """Store an answer; False (the expert is absent, the file stays on disk) when it is too large to store."""
        try:
            await self.store.record_text(did, record)
        except ItemTooLarge as exc:
            self.publish(
                did,
                "expert_absent",
                record.round,
                member.slug,
                reason=f"answer of {len(record.text.encode())} bytes not stored ({exc}); kept in {record.path} only",
            )
            return False
        return True
