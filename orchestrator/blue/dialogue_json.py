"""dialogue.json: the whole dialogue as data, written by the judge files and read back by an import.

An import of an exported directory takes from it what no answer holds (title, question, aliases,
summaries, recorded figures, verdicts); a dialogue.json in another format is ignored, one in ours
that lacks what the import reads is refused as bad input.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from concord.orchestrator.blue.layout import DialogueDirError, DialogueFiles
from concord.orchestrator.blue.round_figures import figures_of
from concord.store.model import Round
from concord.store.snapshot import Snapshot

DIALOGUE_FORMAT = "concord.dialogue/1"


def dialogue_json(snap: Snapshot) -> dict[str, Any]:
    """The whole dialogue as data (what an import of this directory reads back besides the answers)."""
    d = snap.dialogue
    return {
        "format": DIALOGUE_FORMAT,
        "dialogue": {
            "id": d.id,
            "title": d.title,
            "question": d.question,
            "status": d.status,
            "origin": d.origin,
            "created_at": d.created_at,
            "converged_at": d.converged_at,
            "total_rounds": d.total_rounds,
            "total_alignment": d.total_alignment,
            "background": d.background,
        },
        "experts": [asdict(e) for e in snap.experts.values()],
        "rounds": [_round_json(snap, r) for r in snap.rounds.values()],
        "entities": [{"kind": e.kind, **asdict(e)} for e in sorted(snap.entities.values(), key=lambda e: e.id)],
        "refs": [asdict(r) for r in snap.refs],
        "events": [asdict(e) for e in snap.events],
        "moves": [asdict(m) for m in snap.moves],
        "verdicts": [asdict(v) for v in snap.verdicts],
        "recorded_files": sorted(f.path for f in snap.files),
    }


def dialogue_json_text(snap: Snapshot) -> str:
    """dialogue.json's text: indented JSON ending with a newline."""
    return json.dumps(dialogue_json(snap), indent=2, ensure_ascii=False, default=str) + "\n"


def _round_json(snap: Snapshot, rnd: Round) -> dict[str, Any]:
    return {
        "round": rnd.number,
        "panel": [asdict(s) for s in rnd.panel],
        "answered": rnd.answered,
        "absent": rnd.absent,
        "signals": sorted(s.expert for s in snap.signals if s.round == rnd.number),
        "scores": {name: s.to_list() for name, s in sorted(rnd.scores.items())},
        "figures": figures_of(rnd).to_json(),
        "summary": rnd.summary,
        "recorded": rnd.recorded,
        "notes": rnd.notes,
    }


def read_dialogue_json(files: DialogueFiles) -> dict[str, Any] | None:
    """dialogue.json when it is Concord's own format, else None."""
    if files.dialogue_json is None:
        return None
    try:
        data = json.loads(files.dialogue_json)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("format") != DIALOGUE_FORMAT:
        return None
    problem = _shape_problem(data)
    if problem is not None:
        raise DialogueDirError(f"{files.path / 'dialogue.json'} is not a valid {DIALOGUE_FORMAT} file: {problem}")
    return data


def _shape_problem(data: dict[str, Any]) -> str | None:
    """What makes a dialogue.json in our format unusable (the fields the import reads), or None."""
    dialogue = data.get("dialogue")
    if not isinstance(dialogue, dict) or not all(isinstance(dialogue.get(k), str) for k in ("title", "question")):
        return "'dialogue' must be an object with a string 'title' and 'question'"
    kept = data.get("recorded_files", [])
    if not isinstance(kept, list) or not all(isinstance(p, str) for p in kept):
        return "'recorded_files' must be a list of relative paths"
    for key in ("rounds", "entities", "verdicts"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            return f"'{key}' must be a list of objects"
    for entity in data.get("entities", []):
        aliases = entity.get("aliases", [])
        if (
            not isinstance(entity.get("local_id", ""), str)
            or not isinstance(aliases, list)
            or not all(isinstance(a, str) for a in aliases)
        ):
            return "each of 'entities' needs a string 'local_id' and a list of string 'aliases'"
    for verdict in data.get("verdicts", []):
        if not all(isinstance(verdict.get(k), str) for k in ("id", "verdict_type", "recommendation")) or not (
            isinstance(verdict.get("round"), int) and not isinstance(verdict.get("round"), bool)
        ):
            return "each of 'verdicts' needs a string 'id', 'verdict_type' and 'recommendation' and a whole 'round'"
    return None


def round_of(ours: dict[str, Any], number: int) -> dict[str, Any]:
    """One round's entry of a dialogue.json, empty when it has none."""
    return next((r for r in ours.get("rounds", []) if r.get("round") == number), {})
