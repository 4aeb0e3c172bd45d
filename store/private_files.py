"""Owner-only state: the umask Concord runs under, folders made 0700 whatever the umask, and loosened modes found."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

#: Everything created under it is 0700 (folders) or 0600 (files), SQLite's own files included.
PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make what this process creates from now on owner-only; returns the umask it replaces."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """`path`, created 0700 with any missing parent (each 0700 too, whatever the umask); existing folders untouched."""
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs to set
        os.chmod(folder, 0o700)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (so a program that opens it later inherits the mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    os.chmod(path, 0o600)


def loosened(paths: Iterable[Path]) -> list[str]:
    """One line for each existing path that the group or others may access, saying how to close it."""
    lines = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            private = 0o700 if path.is_dir() else 0o600
            lines.append(f"{path} is accessible by group or others (mode {mode:04o}); run `chmod {private:o} {path}`")
    return lines
