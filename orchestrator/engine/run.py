"""The run loop: panels, prompts, concurrent agent calls, judging, registration, gate, verdict."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from concord.orchestrator.blue.atomic import write_atomic
from concord.orchestrator.blue.judge_files import write_judge_files, write_verdict_file
from concord.orchestrator.blue.layout import dialogue_dir_name
from concord.orchestrator.engine.exchange import Budget, Exchanges, Sampling
from concord.orchestrator.engine.grounding import copy_grounding, load_grounding
from concord.orchestrator.engine.prompts import (
    PromptContext,
    render_expert_prompt,
    render_repair_prompt,
)
from concord.orchestrator.engine.providers import Provider, ReplayProvider
from concord.orchestrator.engine.round_context import prompt_context, read_if_present
from concord.orchestrator.judging.llm_judge import JUDGE, AssessmentError, judge_prompt, parse_assessment
from concord.orchestrator.judging.llm_verdict import VERDICT_WRITER, VerdictDraft, VerdictRejected, accept_draft
from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.judging.rules_judge import ExpertAnswer, JudgedRound, judge_round
from concord.orchestrator.judging.verdict_builder import build_verdict
from concord.orchestrator.judging.verdict_prompt import verdict_prompt
from concord.orchestrator.panel.panels import Panel, load_panel, sample_panel
from concord.orchestrator.panel.pools import Pool, parse_pool
from concord.orchestrator.panel.rotation import next_panel
from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import AlreadyExists, ConflictError, ValidationFailed
from concord.store.ids import new_dialogue_id
from concord.store.model import PanelSeat, Verdict
from concord.store.rules import DEFAULT_QUORUM, check_quorum, gate
from concord.store.snapshot import Snapshot

#: Times a round is judged again when a concurrent status change made its planned transitions stale.
RE_JUDGE_ATTEMPTS = 3
#: Fresh ids tried when one is taken (in the store, or as a directory under the output folder).
ALLOCATE_ATTEMPTS = 3
STOPPED_STATUSES = ("converged", "budget_exceeded", "abandoned", "failed")
#: The seat judge calls are made from: its prompt and answer files are round-N/judge.prompt.md and judge.md.
JUDGE_SEAT = PanelSeat(JUDGE.capitalize(), "judge of the dialogue", "Core", "created", 1.0)
#: The seat the llm verdict is asked from: round-N/verdict.prompt.md and verdict.md of the last round.
VERDICT_SEAT = PanelSeat(VERDICT_WRITER.capitalize(), "writer of the final verdict", "Core", "created", 1.0)


@dataclass(frozen=True)
class RunSettings:
    """How a dialogue runs; stored (encrypted) with the dialogue so `resume` needs no flags."""

    provider: str = "sim"
    judge: str = "rules"
    model: str = "claude-sonnet-4-6"
    max_rounds: int = 10
    panel_size: int | None = None
    seed: int = 0
    concurrency: int = 8
    budget_tokens: int | None = None
    replay_dir: str | None = None
    max_tokens: int = 2048
    temperature: float = 0.7
    models: dict[str, str] = field(default_factory=dict)
    quorum: float = DEFAULT_QUORUM
    pause_after_round: bool = False
    #: Names of the grounding files, copied into the dialogue folder's grounding/ (their HMACs are in the store).
    grounding: tuple[str, ...] = ()
    #: Peers are shown as Expert A, Expert B, … with no names or roles.
    anonymous: bool = False

    def __post_init__(self) -> None:
        """Refuse a quorum outside (0, 1] before anything is written."""
        check_quorum(self.quorum)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the dialogue's settings."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        """Settings stored with a dialogue."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["grounding"] = tuple(known.get("grounding", ()))
        return cls(**known)


@dataclass
class RunResult:
    """Where a run ended."""

    dialogue_id: str
    status: str
    rounds: int
    directory: Path
    verdict: Verdict | None = None
    tokens: int = 0
    simulated: bool = False

    def to_json(self) -> dict[str, Any]:
        """Machine-readable summary."""
        return {
            "dialogue_id": self.dialogue_id,
            "status": self.status,
            "rounds": self.rounds,
            "directory": str(self.directory),
            "verdict": None
            if self.verdict is None
            else {
                "id": self.verdict.id,
                "forced": self.verdict.forced,
                "warning": self.verdict.warning,
            },
            "tokens": self.tokens,
            "simulated": self.simulated,
        }


class Orchestrator:
    """Runs dialogues over the store with one agent provider, publishing progress on a bus."""

    def __init__(
        self,
        store: DialogueStore,
        provider: Provider,
        *,
        bus: ProgressBus | None = None,
        judge_provider: Provider | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.judge_provider = judge_provider
        self.bus = bus or ProgressBus()
        self.exchanges = Exchanges(store, self._publish)

    def _publish(
        self, dialogue_id: str, kind: str, round: int | None = None, expert: str | None = None, **data: Any
    ) -> None:
        self.bus.publish(ProgressEvent(dialogue_id, kind, round, expert, data))

    async def create(
        self,
        question: str,
        pool: Pool,
        settings: RunSettings,
        out_dir: Path,
        *,
        title: str | None = None,
        grounding: Mapping[str, str] = MappingProxyType({}),
    ) -> str:
        """Create the dialogue (id, data key, its own new directory, pool file, grounding); nothing is called yet.

        The id is chosen first so the directory can carry its suffix; the directory is made exclusively,
        so a dialogue never starts in a folder that already exists (another dialogue's, or a stray one).
        The grounding files are copied into the directory and their names and HMACs recorded (audited).
        """
        title = title or question
        settings = replace(settings, grounding=tuple(grounding))
        moment = datetime.now(UTC)
        out = out_dir.resolve()
        missing = [p for p in (out, *out.parents) if not p.exists()]
        for _ in range(ALLOCATE_ATTEMPTS):
            dialogue_id = new_dialogue_id(title)
            directory = out / dialogue_dir_name(title, moment, dialogue_id)
            out.mkdir(parents=True, exist_ok=True)
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            try:
                await self.store.create_dialogue(
                    title,
                    question,
                    dialogue_id=dialogue_id,
                    output_dir=str(directory),
                    pool=pool.to_json(),
                    settings=settings.to_json(),
                    origin="sim" if self.provider.simulated else settings.provider,
                )
            except AlreadyExists:
                directory.rmdir()
                continue
            except BaseException:
                _remove_empty([directory, *missing])
                raise
            break
        else:
            raise ConflictError("could not allocate a fresh dialogue id and directory")
        write_atomic(directory / "expert-pool.json", json.dumps(pool.to_json(), indent=2, ensure_ascii=False) + "\n")
        if grounding:
            copy_grounding(directory, grounding)
            await self.store.record_grounding(dialogue_id, {n: t.encode("utf-8") for n, t in grounding.items()})
        self._publish(dialogue_id, "dialogue_started", directory=str(directory), simulated=self.provider.simulated)
        return dialogue_id

    async def run(self, dialogue_id: str, *, pause_after_round: bool | None = None) -> RunResult:
        """Run (or resume) a dialogue until it converges, hits the round cap, exhausts its budget, or pauses.

        `pause_after_round` overrides the dialogue's own setting for this run (resume --no-pause).
        """
        snap = await self.store.load_partition(dialogue_id)
        settings = RunSettings.from_json(snap.dialogue.settings)
        if pause_after_round is not None:
            settings = replace(settings, pause_after_round=pause_after_round)
        if snap.dialogue.status == "paused":
            await self.store.set_dialogue_status(dialogue_id, "open")
            snap = await self.store.load_partition(dialogue_id)
        directory = Path(snap.dialogue.output_dir or ".")
        pool = parse_pool(snap.dialogue.pool)
        try:
            return await self._loop(snap, settings, directory, pool)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._publish(dialogue_id, "dialogue_stopped", reason="interrupted; resume with `concord resume`")
            raise

    async def _loop(self, snap: Snapshot, settings: RunSettings, directory: Path, pool: Pool) -> RunResult:
        dialogue_id = snap.dialogue.id
        played = 0
        while True:
            if snap.rounds:
                write_judge_files(directory, snap)
            if snap.dialogue.status in STOPPED_STATUSES:
                return self._result(snap, directory)
            verdict = await self._maybe_conclude(snap, settings, directory)
            if verdict is not None:
                snap = await self.store.load_partition(dialogue_id)
                return self._result(snap, directory, verdict)
            if played and settings.pause_after_round:
                await self.store.set_dialogue_status(dialogue_id, "paused")
                last = snap.dialogue.total_rounds - 1
                reason = f"paused after round {last}; `concord note {dialogue_id} TEXT` adds a note, `concord resume` continues"
                self._publish(dialogue_id, "dialogue_stopped", last, reason=reason, paused=True)
                return self._result(await self.store.load_partition(dialogue_id), directory)
            number = snap.dialogue.total_rounds
            panel = await self._panel(snap, settings, directory, pool, number)
            self._publish(dialogue_id, "round_started", number, panel=[m.name for m in panel.members])
            answers, over_budget = await self._collect(snap, settings, directory, panel)
            if over_budget:
                await self.store.set_dialogue_status(dialogue_id, "budget_exceeded")
                self._publish(dialogue_id, "dialogue_stopped", number, reason="token budget exhausted")
                snap = await self.store.load_partition(dialogue_id)
                return self._result(snap, directory)
            judged = await self._judge_and_register(snap, settings, directory, panel, answers)
            snap = await self.store.load_partition(dialogue_id)
            self._publish(
                dialogue_id,
                "round_closed",
                number,
                velocity=judged.velocity,
                converge_percent=judged.converge_percent,
                warnings=len(judged.warnings),
            )
            played += 1

    async def _judge_and_register(
        self,
        snap: Snapshot,
        settings: RunSettings,
        directory: Path,
        panel: Panel,
        answers: list[ExpertAnswer],
    ) -> JudgedRound:
        """Judge the round and register it; if someone changed a tension meanwhile, judge again on fresh state."""
        attempt = 1
        while True:
            judged = judge_round(snap, panel.round, panel.members, answers)
            if settings.judge == "llm":
                await self._llm_scores(snap, settings, directory, panel, answers, judged)
            try:
                await self.store.register_round(snap.dialogue.id, judged.batch)
                return judged
            except ValidationFailed as failed:
                stale = all(p.code == "invalid_status_transition" for p in failed.problems)
                if not stale or attempt == RE_JUDGE_ATTEMPTS:
                    raise
            attempt += 1
            snap = await self.store.load_partition(snap.dialogue.id)

    async def _llm_scores(
        self,
        snap: Snapshot,
        settings: RunSettings,
        directory: Path,
        panel: Panel,
        answers: list[ExpertAnswer],
        judged: JudgedRound,
    ) -> None:
        """Replace the rules judge's per-expert scores by a validated llm assessment, or say why not."""
        answered = {a.expert: a.text for a in answers if a.text is not None}
        if not answered:
            return
        if self.judge_provider is None:
            judged.batch.notes.append("llm judge requested but no judge model is configured; rules scores kept")
            return
        prompt = judge_prompt(
            snap.dialogue.question, panel.round, answered, read_if_present(directory / "tensions.md"), panel.members
        )
        stored = [t for t in snap.texts if t.round == panel.round]
        budget = Budget(
            settings.budget_tokens, sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer")
        )
        text, _ = await self.exchanges.exchange(
            snap.dialogue.id,
            directory,
            panel.round,
            JUDGE_SEAT,
            prompt,
            budget,
            stored,
            repair=False,
            provider=self.judge_provider,
            sampling=_sampling(settings, JUDGE_SEAT.slug),
        )
        if text is None:
            judged.batch.notes.append("the llm judge did not answer; rules scores kept")
            return
        try:
            assessment = parse_assessment(text, list(answered))
        except AssessmentError as exc:
            judged.batch.notes.append(f"the llm judge's reply was rejected ({exc}); rules scores kept")
            return
        judged.batch.scores = dict(assessment.scores)
        judged.batch.notes.append(
            f"scores by the llm judge ({settings.model}); totals summed by Concord. {assessment.summary}"
        )

    def _result(self, snap: Snapshot, directory: Path, verdict: Verdict | None = None) -> RunResult:
        tokens = sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer")
        verdict = verdict or next((v for v in snap.verdicts if v.verdict_type == "final"), None)
        return RunResult(
            snap.dialogue.id,
            snap.dialogue.status,
            len(snap.rounds),
            directory,
            verdict,
            tokens,
            self.provider.simulated,
        )

    async def _maybe_conclude(self, snap: Snapshot, settings: RunSettings, directory: Path) -> Verdict | None:
        """Register the final verdict when the gate passes, or forced at the round cap / end of a replay."""
        last = snap.last_round
        if last is None:
            return None
        converged, blockers, _ = gate(last, settings.quorum)
        at_cap = len(snap.rounds) >= settings.max_rounds
        if isinstance(self.provider, ReplayProvider) and last.number >= max(self.provider.rounds()):
            at_cap = True
        if not converged and not at_cap:
            return None
        verdict = build_verdict(snap, converged=converged)
        if settings.judge == "llm":
            verdict = await self._llm_verdict(snap, settings, directory, verdict, converged, blockers)
        stored = await self.store.register_verdict(snap.dialogue.id, verdict, force=not converged)
        snap = await self.store.load_partition(snap.dialogue.id)
        write_verdict_file(directory, snap, stored)
        self._publish(
            snap.dialogue.id, "verdict", last.number, forced=stored.forced, warning=stored.warning, blockers=blockers
        )
        return stored

    async def _llm_verdict(
        self,
        snap: Snapshot,
        settings: RunSettings,
        directory: Path,
        rules: Verdict,
        converged: bool,
        blockers: list[str],
    ) -> Verdict:
        """The llm judge's verdict as validated structured output, or the rules verdict with a note saying why not."""
        if self.judge_provider is None:
            return _noted(rules, "llm judge requested but no judge model is configured; this is the rules verdict")
        number = rules.round
        status = "converged" if converged else "stopped without converging: " + "; ".join(blockers)
        budget = Budget(
            settings.budget_tokens, sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer")
        )
        sampling = _sampling(settings, VERDICT_SEAT.slug)
        text, _ = await self.exchanges.exchange(
            snap.dialogue.id,
            directory,
            number,
            VERDICT_SEAT,
            verdict_prompt(snap, rules, f"Round {number}, {status}."),
            budget,
            [t for t in snap.texts if t.round == number],
            repair=False,
            provider=self.judge_provider,
            sampling=sampling,
            output_format=VerdictDraft,
        )
        if text is None:
            why = "the token budget is spent" if budget.exhausted else "the llm judge did not answer"
            return _noted(rules, f"{why}; this is the rules verdict")
        try:
            return accept_draft(text, snap, rules, sampling.model)
        except VerdictRejected as exc:
            return _noted(rules, f"the llm judge's verdict was rejected ({exc}); this is the rules verdict")

    async def _panel(self, snap: Snapshot, settings: RunSettings, directory: Path, pool: Pool, number: int) -> Panel:
        """The round's panel: as written before a crash, else sampled (round 0) or rotated."""
        panel_file = directory / f"round-{number}" / "panel.json"
        if panel_file.exists():
            return load_panel(panel_file, number, pool=pool)
        if isinstance(self.provider, ReplayProvider):
            panel = self.provider.panel(number)
        elif number == 0:
            panel = sample_panel(pool, settings.panel_size, seed=settings.seed)
        else:
            previous = Panel(number - 1, tuple(snap.rounds[number - 1].panel))
            used = {s.name for rnd in snap.rounds.values() for s in rnd.panel}
            panel = next_panel(pool, snap, previous, used)
        write_atomic(panel_file, json.dumps(panel.to_json(), indent=2, ensure_ascii=False) + "\n")
        return panel

    async def _collect(
        self, snap: Snapshot, settings: RunSettings, directory: Path, panel: Panel
    ) -> tuple[list[ExpertAnswer], bool]:
        """Every panel member's answer for the round: reused when already complete, else requested."""
        number = panel.round
        budget = Budget(
            settings.budget_tokens, sum(t.input_tokens + t.output_tokens for t in snap.texts if t.kind == "answer")
        )
        semaphore = asyncio.Semaphore(max(1, settings.concurrency))
        grounding = load_grounding(directory, settings.grounding)
        contexts = {
            m.slug: prompt_context(snap, directory, number, m, grounding=grounding, anonymous=settings.anonymous)
            for m in panel.members
        }

        async def one(member: PanelSeat) -> ExpertAnswer:
            async with semaphore:
                return ExpertAnswer(
                    member.slug,
                    await self._answer(snap, settings, directory, number, member, contexts[member.slug], budget),
                )

        answers = await asyncio.gather(*(one(m) for m in panel.members))
        return list(answers), budget.exhausted

    async def _answer(
        self,
        snap: Snapshot,
        settings: RunSettings,
        directory: Path,
        number: int,
        member: PanelSeat,
        ctx: PromptContext,
        budget: Budget,
    ) -> str | None:
        """One expert's usable answer text, with one repair attempt; None when absent."""
        did = snap.dialogue.id
        prompt = render_expert_prompt(ctx)
        stored = [t for t in snap.texts if t.round == number]
        sampling = _sampling(settings, member.slug)
        text, tokens = await self.exchanges.exchange(
            did,
            directory,
            number,
            member,
            prompt,
            budget,
            stored,
            repair=False,
            provider=self.provider,
            sampling=sampling,
        )
        if text is None:
            return None
        if parse_answer(text).is_valid:
            self._publish(did, "expert_answered", number, member.slug, tokens=tokens)
            return text
        repair = render_repair_prompt(ctx, text)
        fixed, more = await self.exchanges.exchange(
            did,
            directory,
            number,
            member,
            repair,
            budget,
            stored,
            repair=True,
            provider=self.provider,
            sampling=sampling,
        )
        if fixed is not None and parse_answer(fixed).is_valid:
            self._publish(did, "expert_repaired", number, member.slug, tokens=tokens + more)
            return fixed
        self._publish(did, "expert_absent", number, member.slug, reason="no parsable marker after one repair")
        return None


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders made for a dialogue that was not created, innermost first, while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _noted(verdict: Verdict, note: str) -> Verdict:
    """The verdict with one more note on how it was drawn."""
    return replace(verdict, notes=[*verdict.notes, note])


def _sampling(settings: RunSettings, slug: str) -> Sampling:
    """The model (a per-seat override, else the dialogue's) and sampling settings a seat is asked with."""
    return Sampling(settings.models.get(slug, settings.model), settings.max_tokens, settings.temperature)
