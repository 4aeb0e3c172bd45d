"""A fake Anthropic Messages API on 127.0.0.1: scriptable replies and a request log, for tests and benches.

It answers `POST /v1/messages` well enough for the real SDK. Normal answers come from the sim
generator fed with the request's prompt, so a dialogue run through it converges. Each request
can instead be scripted (by expert name, optionally per round, or by its position in the
sequence of requests) to answer slowly, with 429 + retry-after, 529, 500, to hang past the
client's timeout, to return text with no markers, or to drop the connection mid-answer.
A request for structured output (`output_config.format`, a JSON schema) to Concord's verdict
prompt is answered with a verdict in that schema citing the prompt's own entity ids; scripted
`phantom`, it cites an id no dialogue holds. Any other format type is refused with 400.

In the test process::

    with FakeAnthropic(latency=0.0) as fake:          # serves in a background thread
        fake.script_expert("muffin", "429:0.01", "normal")
        provider = AnthropicProvider(api_key="test", base_url=fake.base_url)
        ...
        fake.requests                                 # the request log

As its own process (it outlives a killed client; its log file stays readable)::

    python -m tests.fake_anthropic --port 0 --log requests.jsonl --latency 1 \
        --script muffin=429,normal --script '#3=hang'

It prints `listening on http://127.0.0.1:PORT` once ready; `fake_server_process()` wraps this.
While running, `GET /_fake/requests` returns the log and `POST /_fake/script` takes
`{"expert": "muffin", "round": 1, "replies": ["500"]}` or `{"request": 7, "reply": "drop"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from concord.orchestrator.engine.sim import (
    estimate_tokens,
    read_identity,
    read_round,
    simulate_answer,
    simulate_judgement,
)

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("normal", "slow", "429", "529", "500", "hang", "malformed", "drop", "phantom")
#: An id the fake's `phantom` verdicts cite: well formed, held by no dialogue of the tests.
PHANTOM_ID = "P9999"
_ENTITY_ROW = re.compile(r"^\| ([PRECT]\d{4}) \| (\w+) \| (\w+) \| [^|]* \| \d+ \| ([^|]*) \|", re.MULTILINE)
SLOW_SECONDS = 1.0
RETRY_AFTER_SECONDS = 0.01
HANG_SECONDS = 3600.0
SAMPLING_PARAMETERS = frozenset({"temperature", "top_p", "top_k"})
LEGACY_API_VERSION = "2023-06-01"
_ERRORS = {
    "429": (429, "rate_limit_error", "fake rate limit: slow down"),
    "529": (529, "overloaded_error", "fake overload: try again shortly"),
    "500": (500, "api_error", "fake internal error"),
}
_MALFORMED = (
    "Thanks for the material. I agree with much of it and have a few thoughts, which I will "
    "share informally this time rather than in the requested structure."
)


@dataclass(frozen=True)
class Reply:
    """How the server answers one request; `seconds` is the latency (slow), retry-after (errors) or hang time."""

    kind: str = "normal"
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown reply {self.kind!r}: choose one of {', '.join(KINDS)}")

    @classmethod
    def parse(cls, text: str) -> Reply:
        """Read `kind` or `kind:seconds`, e.g. `429:0.05`, `slow:1`, `hang`."""
        kind, _, seconds = text.strip().partition(":")
        return cls(kind, float(seconds) if seconds else None)


def _as_reply(reply: Reply | str) -> Reply:
    """Accept a Reply or its text form."""
    return reply if isinstance(reply, Reply) else Reply.parse(reply)


class Script:
    """Which reply each request gets: by request number, else by (expert, round), else by expert, else the default."""

    def __init__(self, default: Reply | str = "normal") -> None:
        self.default = _as_reply(default)
        self._lock = threading.Lock()
        self._by_request: dict[int, Reply] = {}
        self._queues: dict[tuple[str, int | None], deque[Reply]] = {}

    def by_request(self, number: int, reply: Reply | str) -> None:
        """Answer the `number`-th request (counting from 1) with `reply`."""
        with self._lock:
            self._by_request[number] = _as_reply(reply)

    def by_expert(self, expert: str, *replies: Reply | str, round: int | None = None) -> None:
        """Queue replies for an expert's next requests (in one round, or any); later ones are normal."""
        with self._lock:
            queue = self._queues.setdefault((expert.casefold(), round), deque())
            queue.extend(_as_reply(r) for r in replies)

    def choose(self, number: int, expert: str, round: int) -> Reply:
        """Take the reply for one request, consuming it from its queue."""
        with self._lock:
            if number in self._by_request:
                return self._by_request.pop(number)
            for key in ((expert.casefold(), round), (expert.casefold(), None)):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            return self.default


class _Dropped(Response):
    """A response that announces its full length, sends half the body, then stops: a dropped connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})


def _text(content: object) -> str:
    """Flatten a Messages `system` or message `content` (a string or text blocks) to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


class FakeAnthropic:
    """The fake Messages API: a Starlette app with a script and a request log, servable in a thread."""

    def __init__(
        self, *, seed: int = 0, latency: float = 0.0, log_file: Path | None = None, default: Reply | str = "normal"
    ) -> None:
        self.seed = seed
        self.latency = latency
        self.log_file = Path(log_file) if log_file else None
        self.script = Script(default)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._count = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/_fake/requests", self._log_view, methods=["GET"]),
                Route("/_fake/script", self._script_edit, methods=["POST"]),
            ]
        )

    def script_expert(self, expert: str, *replies: Reply | str, round: int | None = None) -> None:
        """Queue replies for an expert's next requests (see Script.by_expert)."""
        self.script.by_expert(expert, *replies, round=round)

    def script_request(self, number: int, reply: Reply | str) -> None:
        """Script the `number`-th request overall (see Script.by_request)."""
        self.script.by_request(number, reply)

    def _record(self, entry: dict[str, Any]) -> None:
        """Append one request to the in-memory log and the JSONL file."""
        with self._lock:
            self.requests.append(entry)
            if self.log_file:
                with self.log_file.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry) + "\n")

    async def _messages(self, request: Request) -> Response:
        """Serve one Messages request as scripted."""
        with self._lock:
            self._count += 1
            number = self._count
        received = time.time()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "the body must be a JSON object")
        system = _text(body.get("system", ""))
        user = "\n\n".join(_text(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict))
        prompt = f"{system}\n\n{user}"
        identity = read_identity(prompt)
        expert = request.headers.get("x-concord-expert") or (identity[0] if identity else "unknown")
        round_header = request.headers.get("x-concord-round")
        round = int(round_header) if round_header and round_header.isdigit() else read_round(prompt) or 0
        model = str(body.get("model", "fake-model"))
        entry: dict[str, Any] = {
            "n": number,
            "time": received,
            "expert": expert,
            "round": round,
            "repair": request.headers.get("x-concord-repair") == "1",
            "model": model,
        }
        refusal = _refusal(request, body)
        if refusal is not None:
            self._record(
                {**entry, "reply": "refused", "status": refusal.status_code, "input_tokens": 0, "output_tokens": 0}
            )
            return refusal
        reply = self.script.choose(number, expert, round)
        if reply.kind in _ERRORS:
            status, kind, message = _ERRORS[reply.kind]
            self._record({**entry, "reply": reply.kind, "status": status, "input_tokens": 0, "output_tokens": 0})
            after = RETRY_AFTER_SECONDS if reply.seconds is None else reply.seconds
            return _error(status, kind, message, {"retry-after": f"{after:g}"})
        try:
            schema = _output_schema(body)
            structured = None if schema is None else _structured(schema, prompt, phantom=reply.kind == "phantom")
        except ValueError as exc:
            self._record({**entry, "reply": "refused", "status": 400, "input_tokens": 0, "output_tokens": 0})
            return _error(400, "invalid_request_error", f"output_config.format: {exc}")
        if reply.kind == "malformed":
            text = _MALFORMED
        elif structured is not None:
            text = structured
        elif expert == "judge":
            text = simulate_judgement(self.seed, prompt)
        else:
            text = simulate_answer(seed=self.seed, expert=expert, round=round, prompt=prompt)
        usage = {"input_tokens": estimate_tokens(prompt), "output_tokens": estimate_tokens(text)}
        status = None if reply.kind in ("hang", "drop") else 200
        self._record({**entry, "reply": reply.kind, "status": status, "structured": schema is not None, **usage})
        if reply.kind == "hang":
            await _hang(request, HANG_SECONDS if reply.seconds is None else reply.seconds)
        else:
            default_delay = SLOW_SECONDS if reply.kind == "slow" else self.latency
            # The latency counts from the request's arrival: composing the answer is part of it.
            delay = default_delay if reply.seconds is None else reply.seconds
            await asyncio.sleep(max(0.0, delay - (time.time() - received)))
        message = {
            "id": f"msg_fake_{number:06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if reply.kind == "drop":
            return _Dropped(json.dumps(message), media_type="application/json")
        return JSONResponse(message, headers={"request-id": f"req_fake_{number:06d}"})

    async def _log_view(self, request: Request) -> Response:
        """Return the request log."""
        with self._lock:
            return JSONResponse(list(self.requests))

    async def _script_edit(self, request: Request) -> Response:
        """Add script entries while the server runs."""
        try:
            body = await request.json()
            if "request" in body:
                self.script.by_request(int(body["request"]), body["reply"])
            else:
                self.script.by_expert(str(body["expert"]), *body["replies"], round=body.get("round"))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 in a background thread; return the base URL once it accepts requests."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Anthropic server did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.base_url

    def stop(self) -> None:
        """Stop the background server and wait for its thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeAnthropic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks its answer to follow (Messages `output_config.format`), if any."""
    config = body.get("output_config")
    form = config.get("format") if isinstance(config, dict) else None
    if not isinstance(form, dict):
        return None
    if form.get("type") != "json_schema" or not isinstance(form.get("schema"), dict):
        raise ValueError(f"format type {form.get('type')!r} is not supported; send json_schema with a schema")
    return form["schema"]


def _structured(schema: dict[str, Any], prompt: str, *, phantom: bool) -> str:
    """A verdict in the requested schema, written from the entity table of a verdict prompt.

    Like the real API's structured output, the reply has every property the schema requires and no
    other; `phantom` cites an id that is in no dialogue (PHANTOM_ID) instead of the prompt's own.
    """
    rows = [(m[1], m[2], m[3], m[4].strip()) for m in _ENTITY_ROW.finditer(prompt)]
    positions = [r for r in rows if r[1] in ("recommendation", "perspective")]
    if not positions:
        raise ValueError("this fake answers structured output only for Concord's verdict prompt")
    cite = (lambda _id: PHANTOM_ID) if phantom else (lambda entity_id: entity_id)
    verdict = {
        "recommendation": f"{positions[0][3]}. The panel stands behind it after weighing the tensions below.",
        "reasons": [{"text": f"The panel built on {label}.", "cites": [cite(i)]} for i, _, _, label in positions[:2]],
        "tensions": [
            {
                "id": i,
                "how": f"{'Resolved' if status == 'resolved' else 'Still ' + status} as the record shows.",
                "cites": [],
            }
            for i, kind, status, _ in rows
            if kind == "tension"
        ],
        "dissent": [],
        "risks": [
            f"{i} is still {status}." for i, kind, status, _ in rows if kind == "tension" and status != "resolved"
        ],
    }
    required = schema.get("required", [])
    missing = [key for key in required if key not in verdict]
    if schema.get("type") != "object" or missing:
        raise ValueError(f"this fake cannot fill the schema's required {', '.join(missing) or 'object'}")
    return json.dumps({key: verdict[key] for key in schema.get("properties", verdict) if key in verdict})


async def _hang(request: Request, seconds: float) -> None:
    """Hold the request open for `seconds`, or until the client gives up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.05)


def _refusal(request: Request, body: dict[str, Any]) -> JSONResponse | None:
    """Refuse what the real API refuses: no credentials, or sampling parameters under API 2026-10-21."""
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not (request.headers.get("x-api-key") or bearer):
        return _error(401, "authentication_error", "an API key is required (x-api-key or Authorization: Bearer)")
    sampling = sorted(SAMPLING_PARAMETERS & body.keys())
    if sampling and request.headers.get("anthropic-version") != LEGACY_API_VERSION:
        return _error(400, "invalid_request_error", f"{sampling[0]}: Extra inputs are not permitted")
    return None


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An Anthropic-shaped error response."""
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def read_log(path: Path) -> list[dict[str, Any]]:
    """Read a request log written with --log (one JSON object a line)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class FakeProcess:
    """A fake server running as its own process."""

    process: subprocess.Popen[str]
    base_url: str
    log: Path

    def requests(self) -> list[dict[str, Any]]:
        """The request log so far."""
        return read_log(self.log)


@contextmanager
def fake_server_process(
    *, log: Path, latency: float = 0.0, seed: int = 0, script: Sequence[str] = (), default: str = "normal"
) -> Iterator[FakeProcess]:
    """Run `python -m tests.fake_anthropic` on a free port until the block ends, then stop it by its pid."""
    command = [
        sys.executable,
        "-m",
        "tests.fake_anthropic",
        "--port",
        "0",
        "--log",
        str(log),
        "--latency",
        str(latency),
        "--seed",
        str(seed),
        "--default",
        default,
    ]
    for entry in script:
        command += ["--script", entry]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake Anthropic server failed to start: {line!r}")
        yield FakeProcess(process, line.removeprefix("listening on "), Path(log))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _apply_script(fake: FakeAnthropic, entry: str) -> None:
    """Apply one --script entry: `#N=reply`, `expert=reply,reply` or `expert@round=reply,…`."""
    target, _, replies = entry.partition("=")
    if not replies:
        raise ValueError(f"--script {entry!r}: expected TARGET=REPLY[,REPLY…]")
    if target.startswith("#"):
        fake.script_request(int(target[1:]), replies)
        return
    expert, _, round = target.partition("@")
    fake.script_expert(expert, *replies.split(","), round=int(round) if round else None)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake server in the foreground until terminated."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_anthropic", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log", type=Path, help="append one JSON line per request to this file")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each normal answer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sim answers")
    parser.add_argument("--default", default="normal", help="reply for unscripted requests, e.g. malformed")
    parser.add_argument(
        "--script",
        action="append",
        default=[],
        help="#N=REPLY, EXPERT=REPLY[,REPLY…] or EXPERT@ROUND=REPLY[,…]; REPLY is "
        + "|".join(KINDS)
        + " with an optional :SECONDS",
    )
    args = parser.parse_args(argv)
    fake = FakeAnthropic(seed=args.seed, latency=args.latency, log_file=args.log, default=args.default)
    for entry in args.script:
        _apply_script(fake, entry)
    print(f"listening on {fake.start(args.port)}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
