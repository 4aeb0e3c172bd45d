"""Owner-only state: what a run creates is 0700/0600 whatever the caller's umask, and loosened modes are named."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from concord.store.config import Settings
from concord.store.factory import open_stores
from concord.store.private_files import private_dir
from tests.services import ROOT, run_cli

POOL = ROOT / "orchestrator" / "demo-pool.json"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block (and the processes it starts) under another umask."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    """The permission bits of a path."""
    return stat.S_IMODE(path.lstat().st_mode)


def modes_under(*roots: Path) -> dict[Path, int]:
    """Every folder and file under the roots (the roots included) with its mode."""
    found = {root: mode_of(root) for root in roots}
    for root in roots:
        for path in root.rglob("*"):
            found[path] = mode_of(path)
    return found


def test_a_sim_run_under_umask_0_creates_only_owner_only_folders_and_files(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    with umask(0):  # the child inherits it: only Concord's own umask can make its files private
        run = run_cli(
            home, "run", "--question", "Who may read this?", "--pool", str(POOL), "--out", str(out), "--quiet"
        )
    assert run.returncode == 0, run.stderr
    modes = modes_under(home, out)
    folders = {p: m for p, m in modes.items() if p.is_dir()}
    files = {p: m for p, m in modes.items() if p.is_file()}
    rounds = [p for p in folders if p.name.startswith("round-")]
    prompts = [p for p in files if p.name.endswith(".prompt.md")]
    assert rounds and prompts and home / "progress" in folders and home / "concord.db" in files
    assert home / "umk.key" in files, "the run's first write created the key file"
    assert {p: m for p, m in folders.items() if m != 0o700} == {}
    assert {p: m for p, m in files.items() if m != 0o600} == {}


async def test_sqlite_wal_and_shm_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "a" / "home")
    with umask(0):
        async with await open_stores(settings) as stores:
            await stores.dialogues.create_dialogue("Modes", "Which mode has the write-ahead log?")
            sqlite_files = [settings.database.with_name(settings.database.name + s) for s in ("", "-wal", "-shm")]
            modes = {path.name: mode_of(path) for path in sqlite_files}
    assert modes == {"concord.db": 0o600, "concord.db-wal": 0o600, "concord.db-shm": 0o600}
    assert mode_of(settings.home) == mode_of(settings.home.parent) == 0o700, "home and the parent it needed"


def test_private_dir_makes_every_missing_parent_0700_and_leaves_existing_folders_alone(tmp_path: Path) -> None:
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    with umask(0o777):  # even a umask that would leave the owner nothing
        made = private_dir(existing / "a" / "b")
    assert made.is_dir()
    assert (mode_of(existing), mode_of(existing / "a"), mode_of(made)) == (0o755, 0o700, 0o700)


def test_loosened_home_key_file_and_database_are_named_on_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = run_cli(home, "keys", "init")
    assert made.returncode == 0, made.stderr
    listed = run_cli(home, "list")
    assert listed.returncode == 0 and "warning" not in listed.stderr, listed.stderr
    home.chmod(0o755)
    (home / "concord.db").chmod(0o644)
    warned = run_cli(home, "list", "--json")
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.splitlines() == [
        f"concord: warning: {home} is accessible by group or others (mode 0755); run `chmod 700 {home}`",
        f"concord: warning: {home / 'concord.db'} is accessible by group or others (mode 0644); "
        f"run `chmod 600 {home / 'concord.db'}`",
    ]
    (home / "umk.key").chmod(0o640)
    key = home / "umk.key"
    loose_key = run_cli(home, "list")
    assert f"concord: warning: {key} is accessible by group or others (mode 0640); run `chmod 600 {key}`" in (
        loose_key.stderr.splitlines()
    )
