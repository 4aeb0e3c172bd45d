"""Grounding documents: text files named on the command line, copied into the dialogue folder and read from there."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from concord.orchestrator.blue.atomic import write_atomic
from concord.store.errors import BadInput
from concord.store.grounding import GROUNDING_DIR


class BadGrounding(BadInput):
    """A grounding path that is missing, unreadable, not a text file, or whose name another one already takes."""


def collect_grounding(paths: Iterable[str]) -> dict[str, str]:
    """Name -> text of every file under `paths`: a file by its own name, a directory's files (recursively,
    hidden ones skipped) as `<directory name>/<relative path>`, in sorted order; BadGrounding for anything else."""
    files: dict[str, str] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise BadGrounding(f"--ground {given}: no such file or directory")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
            if not found:
                raise BadGrounding(f"--ground {given}: the directory holds no files")
            named = [(f"{path.resolve().name}/{p.relative_to(path).as_posix()}", p) for p in found]
        else:
            named = [(path.name, path)]
        for name, file in named:
            if name in files:
                raise BadGrounding(f"--ground {given}: a second file named {name}; rename one of them")
            files[name] = _text(file)
    return files


def copy_grounding(directory: Path, files: Mapping[str, str]) -> None:
    """Write each grounding file to `<directory>/grounding/<name>` (atomically), so the dialogue needs no other copy."""
    for name, text in files.items():
        write_atomic(directory / GROUNDING_DIR / name, text)


def load_grounding(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """The grounding files a dialogue recorded, read from its folder; OSError naming one that is gone."""
    return {name: (directory / GROUNDING_DIR / name).read_text(encoding="utf-8") for name in names}


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _text(path: Path) -> str:
    """A file's text; BadGrounding when it cannot be read or is not UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadGrounding(f"--ground {path}: cannot read it ({os.strerror(exc.errno or 0) or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if (data and not text) or "\x00" in text:
        raise BadGrounding(f"--ground {path}: not a text file (only UTF-8 text can ground a dialogue)")
    return text
