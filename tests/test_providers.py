"""Tests for the providers: anthropic through the real SDK against the fake server, replay, sim."""

from __future__ import annotations

import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from concord.orchestrator.engine.providers import (
    AgentFailed,
    AnthropicProvider,
    Call,
    ReplayMissing,
    ReplayProvider,
    SimProvider,
    Usage,
    make_provider,
)
from concord.orchestrator.engine.sim import simulate_answer
from concord.orchestrator.judging.markers import parse_answer
from concord.store.errors import BadInput
from tests.conftest import corpus_dialogue
from tests.fake_anthropic import FakeAnthropic, Reply, fake_server_process

API_KEY = "sk-ant-test-DO-NOT-LEAK-4f9c2a"
SYSTEM = "You are Muffin 🧁, Platform Architect in an alignment dialogue: a panel."
USER = "## The question before the panel\n\nHow should billing roll out?\n\nThis is round 0."
CALL = Call(SYSTEM, USER, "muffin", 0, "claude-test-model", max_tokens=512)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    """A fake Messages API in a background thread."""
    with FakeAnthropic(seed=5) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    """The anthropic provider pointed at the fake server, with fast SDK retries."""
    client = AnthropicProvider(api_key=API_KEY, base_url=fake.base_url, max_retries=3, timeout=2.0)
    try:
        yield client
    finally:
        await client.aclose()


def _statuses(fake: FakeAnthropic) -> list[int | None]:
    return [entry["status"] for entry in fake.requests]


def _leaks(exc: BaseException) -> bool:
    """Tell whether the API key appears anywhere in an exception, its chain or its traceback."""
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.args)
    return API_KEY in text


async def test_normal_answer_is_the_sim_text_with_the_reported_usage(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    answer = await provider.complete(CALL)
    assert answer.text == simulate_answer(seed=5, expert="muffin", round=0, prompt=f"{SYSTEM}\n\n{USER}")
    assert parse_answer(answer.text).has_content
    (entry,) = fake.requests
    assert answer.usage == Usage(entry["input_tokens"], entry["output_tokens"])
    assert answer.usage.output_tokens > 0 and answer.model == "claude-test-model"
    assert (entry["expert"], entry["round"], entry["repair"], entry["status"]) == ("muffin", 0, False, 200)
    assert not answer.simulated and answer.latency > 0


async def test_sdk_retries_429_529_500_then_succeeds(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script_expert("muffin", "429:0.2", "529", "500")
    started = time.monotonic()
    answer = await provider.complete(CALL)
    assert time.monotonic() - started >= 0.2  # retry-after was honoured
    assert _statuses(fake) == [429, 529, 500, 200]
    assert answer.usage == Usage(fake.requests[-1]["input_tokens"], fake.requests[-1]["output_tokens"])


async def test_giving_up_after_the_sdk_retries_is_agent_failed(fake: FakeAnthropic) -> None:
    client = AnthropicProvider(api_key=API_KEY, base_url=fake.base_url, max_retries=1, timeout=2.0)
    fake.script_expert("muffin", "529", "529", "normal")
    with pytest.raises(AgentFailed, match="HTTP 529") as caught:
        await client.complete(CALL)
    await client.aclose()
    assert _statuses(fake) == [529, 529]
    assert "muffin round 0" in str(caught.value)
    assert not _leaks(caught.value)


async def test_timeout_is_agent_failed_after_the_sdk_retries(fake: FakeAnthropic) -> None:
    client = AnthropicProvider(api_key=API_KEY, base_url=fake.base_url, max_retries=1, timeout=0.3)
    fake.script_expert("muffin", "hang:5", "hang:5")
    started = time.monotonic()
    with pytest.raises(AgentFailed, match="timed out") as caught:
        await client.complete(CALL)
    await client.aclose()
    assert time.monotonic() - started < 4
    assert [e["reply"] for e in fake.requests] == ["hang", "hang"]
    assert not _leaks(caught.value)


async def test_a_dropped_connection_is_retried(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script_expert("muffin", "drop")
    answer = await provider.complete(CALL)
    assert [e["reply"] for e in fake.requests] == ["drop", "normal"]
    assert parse_answer(answer.text).has_content


async def test_slow_answers_wait_the_scripted_latency(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script_request(1, Reply("slow", 0.3))
    started = time.monotonic()
    answer = await provider.complete(CALL)
    assert time.monotonic() - started >= 0.3 and answer.latency >= 0.3


async def test_malformed_text_comes_back_as_is(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script_expert("muffin", "malformed", round=0)
    answer = await provider.complete(CALL)
    parsed = parse_answer(answer.text)
    assert not parsed.has_content and not parsed.markers
    assert answer.usage.output_tokens == fake.requests[0]["output_tokens"]


async def test_repair_and_round_are_sent_as_headers(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    await provider.complete(Call(SYSTEM, USER, "cupcake", 2, "m", repair=True))
    entry = fake.requests[0]
    assert (entry["expert"], entry["round"], entry["repair"]) == ("cupcake", 2, True)


async def test_connection_refused_is_agent_failed_without_the_key() -> None:
    client = AnthropicProvider(api_key=API_KEY, base_url="http://127.0.0.1:9", max_retries=0, timeout=1.0)
    with pytest.raises(AgentFailed, match="connection failed") as caught:
        await client.complete(CALL)
    await client.aclose()
    assert not _leaks(caught.value)


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(BadInput, match="set ANTHROPIC_API_KEY"):
        AnthropicProvider()
    with pytest.raises(BadInput, match="set ANTHROPIC_API_KEY"):
        make_provider("anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    assert make_provider("anthropic").name == "anthropic"


def test_fake_server_refuses_what_the_api_refuses(fake: FakeAnthropic) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    url = fake.base_url + "/v1/messages"
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"x-api-key": "k"}).status_code == 200
    sampled = httpx.post(url, json={**body, "temperature": 0.5}, headers={"authorization": "Bearer k"})
    assert sampled.status_code == 400 and sampled.json()["error"]["type"] == "invalid_request_error"
    assert [e["status"] for e in fake.requests] == [401, 200, 400]


def test_fake_server_can_be_scripted_over_http(fake: FakeAnthropic) -> None:
    assert httpx.post(fake.base_url + "/_fake/script", json={"request": 1, "reply": "500:0"}).json() == {"ok": True}
    assert httpx.post(fake.base_url + "/_fake/script", json={"bad": 1}).status_code == 400
    reply = httpx.post(
        fake.base_url + "/v1/messages", headers={"x-api-key": "k"}, json={"model": "m", "max_tokens": 5, "messages": []}
    )
    assert reply.status_code == 500 and reply.headers["retry-after"] == "0"
    assert httpx.get(fake.base_url + "/_fake/requests").json()[0]["reply"] == "500"


async def test_fake_server_as_a_process_keeps_its_log(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with fake_server_process(log=log, seed=5, script=["muffin@0=429:0.01", "#3=malformed"]) as server:
        client = AnthropicProvider(api_key=API_KEY, base_url=server.base_url, max_retries=2, timeout=5.0)
        first = await client.complete(CALL)
        second = await client.complete(CALL)
        await client.aclose()
        assert [e["status"] for e in server.requests()] == [429, 200, 200]
    assert server.process.poll() is not None
    entries = server.requests()  # still readable after the server stopped
    assert [e["reply"] for e in entries] == ["429", "normal", "malformed"]
    assert first.usage == Usage(entries[1]["input_tokens"], entries[1]["output_tokens"])
    assert not parse_answer(second.text).has_content


# --- replay ----------------------------------------------------------------------------------


@pytest.mark.corpus
async def test_replay_answers_and_panels_from_the_d58_directory() -> None:
    d58 = corpus_dialogue("rfc-0058")
    replay = make_provider("replay", directory=d58)
    assert isinstance(replay, ReplayProvider) and not replay.simulated
    assert replay.rounds() == [0, 1, 2, 3]
    sizes = [len(replay.panel(n).members) for n in replay.rounds()]
    assert sizes == [10, 8, 6, 6]
    assert replay.panel(1).counts[:2] == (6, 2)
    answer = await replay.complete(Call("s", "p", "croissant", 0, "m"))
    assert answer.text == (d58 / "round-0" / "croissant.md").read_text(encoding="utf-8")
    assert answer.usage == Usage() and not answer.simulated
    with pytest.raises(AgentFailed, match="galette"):
        await replay.complete(Call("s", "p", "Galette", 0, "m"))
    with pytest.raises(AgentFailed, match="repair"):
        await replay.complete(Call("s", "p", "croissant", 0, "m", repair=True))
    with pytest.raises(AgentFailed, match="round 9"):
        await replay.complete(Call("s", "p", "croissant", 9, "m"))


def test_replay_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ReplayMissing, match="no recorded dialogue"):
        ReplayProvider(tmp_path / "missing")


# --- sim -------------------------------------------------------------------------------------


async def test_sim_provider_is_deterministic_and_labelled() -> None:
    first = await SimProvider(11).complete(CALL)
    again = await SimProvider(11).complete(CALL)
    other = await SimProvider(12).complete(CALL)
    assert first.text == again.text != other.text
    assert first.simulated and first.model == "concord-sim" and first.usage.output_tokens > 0
    assert make_provider("sim", seed=11).simulated


async def test_sim_answers_match_the_fake_server_for_the_same_seed(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    assert (await provider.complete(CALL)).text == (await SimProvider(5).complete(CALL)).text


async def test_sim_latency_is_applied() -> None:
    started = time.monotonic()
    await SimProvider(latency=0.2).complete(CALL)
    assert time.monotonic() - started >= 0.2


async def test_eight_sim_experts_signal_converge_in_round_two() -> None:
    sim = SimProvider(4)
    table = "| T0001 | Speed versus safety | open | Muffin, R0 |\n| T0002 | Cost | addressed | Scone, R0 |"
    names = ["Muffin", "Cupcake", "Scone", "Eclair", "Donut", "Brioche", "Croissant", "Macaron"]
    for name in names:
        system = f"You are {name} 🧁, Panel Expert in an alignment dialogue."
        answer = await sim.complete(Call(system, f"This is round 2.\n\n{table}", name.lower(), 2, "m"))
        parsed = parse_answer(answer.text)
        assert parsed.converge and not parsed.of("perspective")
        assert {t.raw for m in parsed.of("resolved") for t in m.targets} == {"T0001", "T0002"}


def test_unknown_provider_name() -> None:
    with pytest.raises(BadInput, match="anthropic, sim or replay"):
        make_provider("openai")


async def test_replay_reads_an_undecodable_answer_with_replacement_characters(tmp_path: Path) -> None:
    (tmp_path / "round-0").mkdir()
    (tmp_path / "round-0" / "muffin.md").write_bytes(b"[PERSPECTIVE P01: caf\xe9]\nbody\n---\n")
    answer = await ReplayProvider(tmp_path).complete(Call("s", "p", "Muffin", 0, "m"))
    assert answer.text == "[PERSPECTIVE P01: caf\ufffd]\nbody\n---\n"
