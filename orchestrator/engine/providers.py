"""Agent providers behind one interface: the Anthropic Messages API, a recorded dialogue, the sim panel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import anthropic
from anthropic import Omit, omit, transform_schema
from anthropic.types import OutputConfigParam
from pydantic import BaseModel

from concord.orchestrator.blue.layout import read_dialogue_dir
from concord.orchestrator.engine.sim import estimate_tokens, simulate_answer
from concord.orchestrator.panel.panels import Panel, infer_panel, load_panel
from concord.orchestrator.panel.pools import Pool, load_pool, slug
from concord.store.errors import BadInput, ConcordError

SIM_MODEL = "concord-sim"
REPLAY_MODEL = "replay"
_ERROR_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Answer:
    """What an expert answered, with its cost and provenance."""

    text: str
    usage: Usage
    model: str
    latency: float
    simulated: bool = False


class AgentFailed(ConcordError):
    """The provider gave up on this call (after the SDK's own retries): the expert is recorded absent."""


class ReplayMissing(BadInput):
    """The directory to replay is missing, or holds no recorded dialogue with answers: refused before a run."""


@dataclass(frozen=True)
class Call:
    """One request to an expert: the prompt parts, who and which round, and sampling settings."""

    system: str
    prompt: str
    expert: str
    round: int
    model: str
    max_tokens: int = 2048
    temperature: float = 0.7
    repair: bool = False
    #: A pydantic model the reply must follow as structured output (the Messages `output_config.format`).
    output_format: type[BaseModel] | None = None


class Provider(Protocol):
    """Anything that turns a Call into an Answer."""

    name: str
    simulated: bool

    async def complete(self, call: Call) -> Answer:
        """Answer one call, or raise AgentFailed (ReplayMissing for replay)."""
        ...

    async def aclose(self) -> None:
        """Release connections the provider holds."""
        ...


class AnthropicProvider:
    """The Anthropic Messages API through the official SDK, which owns HTTP retries and timeouts."""

    name = "anthropic"
    simulated = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout: float = 120.0,
    ) -> None:
        """`api_key` and `base_url` left None are read by the SDK from ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL."""
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )
        if not self._client.api_key:
            raise BadInput("the anthropic provider needs an API key: set ANTHROPIC_API_KEY")
        self._key = self._client.api_key

    async def complete(self, call: Call) -> Answer:
        """Send one Messages request; SDK failures after its retries become AgentFailed.

        `call.temperature` is not sent: SDK 2.x has no sampling parameters and API version
        2026-10-21, which it speaks, answers 400 to any of them. A `call.output_format` is sent as the
        JSON schema the SDK derives from it (`transform_schema`); the reply text is returned as is and the
        caller validates it, so an answer that fails validation is still stored and paid for once
        (`messages.parse` would raise inside the SDK and lose it).
        """
        started = time.monotonic()
        output_config: OutputConfigParam | Omit = omit
        if call.output_format is not None:
            output_config = {"format": {"type": "json_schema", "schema": transform_schema(call.output_format)}}
        try:
            response = await self._client.messages.create(
                model=call.model,
                max_tokens=call.max_tokens,
                system=call.system,
                messages=[{"role": "user", "content": call.prompt}],
                output_config=output_config,
                extra_headers={
                    "x-concord-expert": call.expert,
                    "x-concord-round": str(call.round),
                    "x-concord-repair": "1" if call.repair else "0",
                },
            )
        except anthropic.APIError as exc:
            # `from None`: the SDK error carries the request, whose headers hold the key.
            raise AgentFailed(self._describe(exc, call)) from None
        text = "".join(block.text for block in response.content if block.type == "text")
        usage = Usage(response.usage.input_tokens, response.usage.output_tokens)
        return Answer(text, usage, response.model, time.monotonic() - started)

    def _describe(self, exc: anthropic.APIError, call: Call) -> str:
        """Summarise an SDK failure in one short line that never contains the API key."""
        who = f"{call.expert} round {call.round}"
        if isinstance(exc, anthropic.APITimeoutError):
            detail = "request timed out"
        elif isinstance(exc, anthropic.APIConnectionError):
            detail = "connection failed"
        elif isinstance(exc, anthropic.APIStatusError):
            detail = f"HTTP {exc.status_code}: {_error_message(exc.body) or type(exc).__name__}"
        else:
            detail = type(exc).__name__
        return f"anthropic call for {who} failed: {detail[:_ERROR_DETAIL_CHARS]}".replace(self._key, "***")

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        await self._client.close()


def _error_message(body: object) -> str:
    """Return the message of an API error body ({"error": {"message": …}}), if it has one."""
    error: Any = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


class ReplayProvider:
    """Answers from a recorded blue-layout dialogue directory (round-N/<expert>.md), never live.

    The replay follows the recording: a recorded repair file answers the repair prompt, and an
    expert the recording holds no answer (or repair) for is absent, as it was in the recording.
    """

    name = "replay"
    simulated = False

    def __init__(self, directory: Path) -> None:
        """Read the recording; ReplayMissing (nothing written yet) when it is not a replayable dialogue."""
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ReplayMissing(f"no recorded dialogue directory at {self.directory}")
        files = read_dialogue_dir(self.directory)
        if not files.rounds:
            raise ReplayMissing(f"{self.directory} is not a recorded dialogue: it has no round-N directories")
        self._rounds = {r.number: r for r in files.rounds if r.answers}
        if not self._rounds:
            raise ReplayMissing(
                f"{self.directory} records no expert answers (round-N/<expert>.md): there is nothing to replay"
            )
        answered = sorted(self._rounds)
        gap = next((n for n, recorded in enumerate(answered) if n != recorded), None)
        if gap is not None:
            raise ReplayMissing(f"{self.directory} records no answers in round-{gap}: replay needs rounds 0 to N")
        pool_file = self.directory / "expert-pool.json"
        pool = load_pool(pool_file) if pool_file.is_file() else None
        # Every panel is read now, so a bad panel.json is refused before the run writes anything.
        self._panels: dict[int, Panel] = {}
        for number in answered:
            panel = _recorded_panel(self.directory / f"round-{number}", number, pool)
            self._panels[number] = _with_earlier_roles(panel, self._panels.get(number - 1))

    def rounds(self) -> list[int]:
        """Return the recorded round numbers that hold answers, ascending (0 to N, never empty)."""
        return sorted(self._rounds)

    def panel(self, round: int) -> Panel:
        """Return a recorded round's panel: its panel.json, else inferred from the answer files."""
        if round not in self._panels:
            raise ReplayMissing(f"{self.directory} records no round {round} to replay")
        return self._panels[round]

    async def complete(self, call: Call) -> Answer:
        """Return the recorded answer (repairs: <expert>.repair.md); AgentFailed (absent) when not recorded."""
        expert = slug(call.expert)
        recorded = self._rounds.get(call.round)
        answers = {} if recorded is None else (recorded.repaired if call.repair else recorded.answers)
        if expert not in answers:
            kind = "repair answer" if call.repair else "answer"
            raise AgentFailed(f"the recording has no {kind} for {expert} in round {call.round}")
        return Answer(answers[expert], Usage(), REPLAY_MODEL, 0.0)

    async def aclose(self) -> None:
        """Nothing to release."""


def _recorded_panel(round_dir: Path, round: int, pool: Pool | None) -> Panel:
    """A recorded round's panel: its panel.json, else inferred from the answer files."""
    panel_file = round_dir / "panel.json"
    if panel_file.is_file():
        return load_panel(panel_file, round, pool=pool)
    return infer_panel(round_dir, round, pool)


def _with_earlier_roles(panel: Panel, earlier: Panel | None) -> Panel:
    """Give a seat whose round states no role (no prompt file recorded) the role, tier and relevance it had before.

    Recordings keep prompt files for early rounds only; without this, the replay would write
    panel.json files with empty roles, which a resumed run cannot read back.
    """
    before = {m.name: m for m in earlier.members} if earlier else {}
    members = tuple(
        replace(m, role=before[m.name].role, tier=before[m.name].tier, relevance=before[m.name].relevance)
        if not m.role and m.name in before
        else m
        for m in panel.members
    )
    return replace(panel, members=members)


class SimProvider:
    """The seeded offline panel of orchestrator.sim; every answer says it is simulated."""

    name = "sim"
    simulated = True

    def __init__(
        self,
        seed: int = 0,
        *,
        latency: float = 0.0,
        unparsable: Collection[tuple[str, int]] = (),
        unrepairable: Collection[tuple[str, int]] = (),
    ) -> None:
        """`unparsable` (expert, round) pairs answer without markers once, then repair fine;
        `unrepairable` pairs answer without markers to the repair prompt too."""
        self.seed = seed
        self.latency = latency
        self._unparsable = {(slug(name), round) for name, round in unparsable}
        self._unrepairable = {(slug(name), round) for name, round in unrepairable}

    async def complete(self, call: Call) -> Answer:
        """Write the expert's simulated answer after the configured latency."""
        started = time.monotonic()
        if self.latency:
            await asyncio.sleep(self.latency)
        key = (slug(call.expert), call.round)
        broken = key in self._unrepairable or (key in self._unparsable and not call.repair)
        prompt = f"{call.system}\n\n{call.prompt}"
        text = simulate_answer(seed=self.seed, expert=call.expert, round=call.round, prompt=prompt, unparsable=broken)
        usage = Usage(estimate_tokens(prompt), estimate_tokens(text))
        return Answer(text, usage, SIM_MODEL, time.monotonic() - started, simulated=True)

    async def aclose(self) -> None:
        """Nothing to release."""


def make_provider(name: str, **options: Any) -> Provider:
    """Build a provider by name ("anthropic", "sim" or "replay") with its constructor options."""
    if name == "anthropic":
        return AnthropicProvider(**options)
    if name == "sim":
        return SimProvider(**options)
    if name == "replay":
        return ReplayProvider(**options)
    raise BadInput(f"unknown provider {name!r}: choose anthropic, sim or replay")
