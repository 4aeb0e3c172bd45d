"""A run killed with SIGKILL mid-round is finished by `concord resume` without re-buying answers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from concord.store.config import Settings
from concord.store.factory import open_stores
from tests.fake_anthropic import fake_server_process
from tests.services import concord, environment

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "orchestrator" / "demo-pool.json"
QUESTION = "How should a small team store deliberation records?"


def run_args(out: Path) -> list[str]:
    return [
        "run",
        "--question",
        QUESTION,
        "--pool",
        str(POOL),
        "--provider",
        "anthropic",
        "--panel-size",
        "6",
        "--seed",
        "11",
        "--concurrency",
        "2",
        "--max-rounds",
        "5",
        "--out",
        str(out),
        "--quiet",
        "--json",
    ]


def answers_on_disk(out: Path) -> set[tuple[str, int, bool]]:
    found = set()
    for path in out.glob("*/round-*/*.md"):
        if path.name.endswith(".prompt.md"):
            continue
        stem = path.name.removesuffix(".md")
        found.add((stem.removesuffix(".repair"), int(path.parent.name.split("-")[1]), stem.endswith(".repair")))
    return found


async def dialogue_state(home: Path) -> tuple[str, list[tuple[int, int, int, list[int]]], int, bool]:
    stores = await open_stores(Settings(home=home))
    try:
        ids = [
            d.id for status in ("open", "converged") for d in (await stores.analytics.list_dialogues(status)).dialogues
        ]
        assert len(ids) == 1
        snap = await stores.dialogues.load_partition(ids[0])
        report = await stores.dialogues.verify_audit(ids[0], files_root=Path(snap.dialogue.output_dir))
        rounds = [(r.number, r.velocity, r.signals, r.totals.to_list()) for r in snap.rounds.values()]
        keys = [(e.kind, e.local_id) for e in snap.entities.values()]
        assert len(keys) == len(set(keys)), "no duplicate entities"
        return snap.dialogue.status, rounds, snap.dialogue.total_alignment, report.ok
    finally:
        await stores.close()


def test_sigkill_mid_round_then_resume(tmp_path: Path) -> None:
    clean_home, crash_home = tmp_path / "clean", tmp_path / "crash"
    with fake_server_process(log=tmp_path / "clean.jsonl", latency=0.05, seed=4) as fake:
        done = subprocess.run(
            concord(*run_args(tmp_path / "clean-out")),
            env=environment(clean_home, fake.base_url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
    expected = asyncio.run(dialogue_state(clean_home))
    assert expected[0] == "converged"

    out = tmp_path / "crash-out"
    with fake_server_process(log=tmp_path / "crash.jsonl", latency=0.4, seed=4) as fake:
        env = environment(crash_home, fake.base_url)
        process = subprocess.Popen(
            concord(*run_args(out)), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            round1 = {a for a in answers_on_disk(out) if a[1] == 1}
            if 2 <= len(round1) < 6:
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = time.time()
        written = answers_on_disk(out)
        assert any(a[1] == 1 for a in written), "killed in the middle of round 1"

        resumed_id = asyncio.run(dialogue_state_id(crash_home))
        resumed = subprocess.run(
            concord("resume", resumed_id, "--quiet", "--json"),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert resumed.returncode == 0, resumed.stderr
        after = [r for r in fake.requests() if r["time"] > killed_at]
    again = {(r["expert"], r["round"], bool(r["repair"])) for r in after}
    assert not again & written, f"answers already on disk were requested again: {sorted(again & written)}"
    got = asyncio.run(dialogue_state(crash_home))
    assert got[3], "audit chain and files verify after resume"
    assert got[:3] == expected[:3], "totals equal an uninterrupted run with the same seed"


async def dialogue_state_id(home: Path) -> str:
    stores = await open_stores(Settings(home=home))
    try:
        page = await stores.analytics.list_dialogues("open")
        return page.dialogues[0].id
    finally:
        await stores.close()
