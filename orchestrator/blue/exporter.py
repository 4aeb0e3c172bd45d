"""`concord export ID DIR`: a stored dialogue written back as a blue-layout directory.

Written: expert-pool.json, background.md (when stored), round-N/panel.json, every recorded prompt
and answer with its exact text, and the judge files (scoreboard.md, tensions.md,
round-N.summary.md, verdict.md, dialogue.json). Then every file an import kept from a recording
(`recorded_files`) is written over them byte for byte: an exported recording keeps its own
tensions.md, scoreboard.md, panel.json, CONVERGENCE.md…, and Concord's regenerated versions appear
only where the recording had none. dialogue.json is always Concord's. `concord import` of the
result gives the same snapshot: the answers are judged again, and what no answer holds (title,
aliases, summaries, recorded figures, verdicts, which files were recorded) is read back from
dialogue.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concord.orchestrator.blue.atomic import write_atomic
from concord.orchestrator.blue.judge_files import write_judge_files, write_verdict_file
from concord.orchestrator.blue.layout import BACKGROUND_FILE, POOL_FILE, answer_file, panel_file, prompt_file
from concord.orchestrator.blue.recorded_files import write_recorded
from concord.orchestrator.panel.panels import Panel
from concord.store.dialogue_store import DialogueStore
from concord.store.factory import Stores
from concord.store.model import Round


@dataclass
class ExportResult:
    """Where a dialogue was exported and which files (relative paths) were written."""

    dialogue_id: str
    directory: Path
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """`{dialogue_id, directory, files: [...]}`."""
        return {"dialogue_id": self.dialogue_id, "directory": str(self.directory), "files": list(self.files)}


def format_export(result: ExportResult) -> str:
    """One line per export."""
    return f"dialogue {result.dialogue_id}: wrote {len(result.files)} files to {result.directory}"


async def export_dialogue(target: DialogueStore | Stores, dialogue_id: str, out_dir: Path) -> ExportResult:
    """Write one dialogue (one partition load) into `out_dir` in the blue layout."""
    store = target.dialogues if isinstance(target, Stores) else target
    snap = await store.load_partition(dialogue_id)
    out_dir = Path(out_dir)
    files: dict[str, str] = {}
    if snap.dialogue.pool is not None:
        files[POOL_FILE] = json.dumps(snap.dialogue.pool, indent=2, ensure_ascii=False) + "\n"
    background = (snap.dialogue.background or {}).get("text")
    if isinstance(background, str):
        files[BACKGROUND_FILE] = background
    for rnd in snap.rounds.values():
        if rnd.panel:
            files[panel_file(rnd.number)] = json.dumps(_panel(rnd).to_json(), indent=2, ensure_ascii=False) + "\n"
    for text in snap.texts:
        name = (prompt_file if text.kind == "prompt" else answer_file)(text.round, text.expert, text.repair)
        files[name] = text.text
    for name, content in files.items():
        write_atomic(out_dir / name, content)
    written = [str(p.relative_to(out_dir)) for p in write_judge_files(out_dir, snap)]
    final = next((v for v in snap.verdicts if v.verdict_type == "final"), None)
    if final is not None:
        written.append(str(write_verdict_file(out_dir, snap, final).relative_to(out_dir)))
    kept = write_recorded(out_dir, snap.files)
    return ExportResult(dialogue_id, out_dir, sorted(set(files) | set(written) | set(kept)))


def _panel(rnd: Round) -> Panel:
    return Panel(rnd.number, tuple(rnd.panel))
