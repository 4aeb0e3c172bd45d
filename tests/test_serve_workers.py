"""`serve` hands its Settings to every worker process explicitly: no worker reads, and serve never writes, os.environ."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from concord.orchestrator.progress.bus import ProgressBus
from concord.orchestrator.progress.peers import PeerLink
from concord.orchestrator.serving.server import WorkerApp
from concord.orchestrator.serving.starter import make_starter
from concord.resolvers.tokens import add_token
from concord.store.config import Settings
from tests.services import HOST, environment, free_port

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120


def test_a_worker_app_pickles_whole_with_its_starter(tmp_path: Path) -> None:
    app = WorkerApp(Settings(home=tmp_path, tenant="acme", anthropic_api_key="sk-x"), dev=True, starter=make_starter)
    assert pickle.loads(pickle.dumps(app)) == app


def test_two_workers_serve_the_settings_they_were_handed_not_the_environment(tmp_path: Path) -> None:
    handed, decoy = tmp_path / "handed", tmp_path / "decoy"
    settings = Settings(home=handed, tenant="workers")
    add_token(settings.tokens_file, "workers", ["read"], "probe")
    port = free_port()
    script = tmp_path / "serve_two.py"  # a file with a main guard: spawned workers import the main module again
    script.write_text(
        textwrap.dedent(f"""
            import json, os
            from pathlib import Path
            from concord.orchestrator.serving.server import WorkerApp, serve
            from concord.store.config import Settings

            if __name__ == "__main__":
                before = dict(os.environ)
                app = WorkerApp(Settings(home=Path({str(handed)!r}), tenant="workers"))
                serve(app, host="{HOST}", port={port}, workers=2)
                print(json.dumps({{"environ_unchanged": dict(os.environ) == before}}))
        """)
    )
    channel = PeerLink(ProgressBus(), settings).directory
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env=environment(decoy, "http://127.0.0.1:9"),  # CONCORD_HOME points elsewhere
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not (ready(port) and len(list(channel.glob("*.sock"))) == 2):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "two workers did not start"
            time.sleep(0.1)
        worker_pids = {int(path.name.split("-")[0]) for path in channel.glob("*.sock")}
        assert len(worker_pids) == 2 and process.pid not in worker_pids
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # its workers too, not only the supervisor
            process.wait()
    assert process.returncode == 0, err
    assert out.splitlines()[-1] == json.dumps({"environ_unchanged": True}), err  # after the access log
    assert list(channel.iterdir()) == [], "each worker closed its link on the way out"
    assert settings.database.exists() and not decoy.exists()


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
