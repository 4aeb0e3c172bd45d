"""The files of a recording that import keeps sealed in the store, so export reproduces them byte for byte.

Kept: every file under the dialogue directory except dialogue.json (export always writes Concord's
own there, which a re-import reads; a blue dialogue.json would be lost, and none is recorded) and the prompt and answer files already stored as prompt/answer texts with the same
bytes. Recorded judge files (tensions.md, scoreboard.md, summaries, verdict.md, CONVERGENCE.md,
context-brief.md), panel.json with all its keys, the pool and anything else come back unchanged.
A file that is not UTF-8 is kept as base64. One file is one sealed item: a file over the store's
limit is refused before anything is written (`RecordedFileTooLarge`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path

from concord.orchestrator.blue.atomic import write_atomic_bytes
from concord.orchestrator.blue.layout import DIALOGUE_FILE, DialogueDirError, DialogueFiles, answer_file, prompt_file
from concord.store.model import RecordedFile
from concord.store.writes import MAX_RECORDED_FILE_BYTES

#: Base64 grows a file by a third; this keeps any kept file's sealed item under the store's limit.
MAX_FILE_BYTES = MAX_RECORDED_FILE_BYTES * 2 // 3


class RecordedFileTooLarge(DialogueDirError):
    """A recording's file too large to keep as one sealed item."""


def files_to_keep(files: DialogueFiles, only: Iterable[str] | None = None) -> list[RecordedFile]:
    """The recording's files to keep (all but dialogue.json and texts stored as such), or just the paths `only`."""
    wanted = set(only) if only is not None else None
    covered = _stored_as_texts(files)
    kept = []
    for path in sorted(p for p in files.path.rglob("*") if p.is_file()):
        name = path.relative_to(files.path).as_posix()
        if name == DIALOGUE_FILE or (wanted is not None and name not in wanted):
            continue
        data = path.read_bytes()
        if covered.get(name) == data:
            continue
        if len(data) > MAX_FILE_BYTES:
            raise RecordedFileTooLarge(
                f"{path}: {len(data)} bytes; import keeps recorded files of at most {MAX_FILE_BYTES} bytes"
            )
        kept.append(_record(name, data))
    return kept


def content_of(recorded: RecordedFile) -> bytes:
    """A kept file's exact bytes."""
    if recorded.encoding == "base64":
        return base64.b64decode(recorded.content)
    return recorded.content.encode()


def latest(recorded: Iterable[RecordedFile]) -> list[RecordedFile]:
    """The newest kept version of each path (a recording imported in progress and again later has several)."""
    newest: dict[str, RecordedFile] = {}
    for item in sorted(recorded, key=lambda f: (f.created_at, f.sha256)):
        newest[item.path] = item
    return [newest[path] for path in sorted(newest)]


def write_recorded(out_dir: Path, recorded: Iterable[RecordedFile]) -> list[str]:
    """Write the newest version of each kept file under `out_dir` (atomically, over anything regenerated
    there); their relative paths."""
    written = []
    for item in latest(recorded):
        target = out_dir / item.path
        if not target.resolve().is_relative_to(out_dir.resolve()):
            raise DialogueDirError(f"recorded file path {item.path!r} leaves the export directory")
        write_atomic_bytes(target, content_of(item))
        written.append(item.path)
    return sorted(written)


def _record(name: str, data: bytes) -> RecordedFile:
    try:
        return RecordedFile(name, data.decode("utf-8"))
    except UnicodeDecodeError:
        return RecordedFile(name, base64.b64encode(data).decode("ascii"), encoding="base64")


def _stored_as_texts(files: DialogueFiles) -> dict[str, bytes]:
    """Relative path -> bytes of every prompt and answer import stores as a text record."""
    covered = {}
    for rnd in files.rounds:
        for texts, repair, name in (
            (rnd.prompts, False, prompt_file),
            (rnd.repair_prompts, True, prompt_file),
            (rnd.answers, False, answer_file),
            (rnd.repaired, True, answer_file),
        ):
            for slug, text in texts.items():
                covered[name(rnd.number, slug, repair)] = text.encode()
    return covered
