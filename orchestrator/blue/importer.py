"""`concord import DIR`: a recorded blue dialogue directory into the store, judged by the rules judge.

The dialogue id comes from the directory name alone (`layout.imported_dialogue_id`), so importing
the same directory again finds the dialogue and only registers rounds that are not stored yet
(none, for a finished import: a no-op). Per round: the prompts and answers as write-once texts,
then one `register_round` with the rules judge's batch (entities, refs, statuses, signals, scores),
the recorded judge's summary and figures beside it. The recorded judge's tension ids become
aliases (`orchestrator.aliases`), and its own rulings on them (`recorded_rulings`: tensions.md,
the briefs in round prompts, verdict.md) are added to the round they name as status changes, the
round's open tensions recounted. A recorded verdict is registered after the last round; when the
rules judge's own gate disagrees it is forced, so the verdict carries the gate's blockers.

Every file of the directory that no prompt/answer text already holds byte for byte is kept sealed
in the store (`recorded_files`), so `concord export` gives the recording back unchanged.

A directory written by `concord export` also holds dialogue.json; its title, question, aliases,
summaries, recorded figures and verdicts are read from there, so a re-import is identical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concord.orchestrator.blue.aliases import AliasMatch, Candidate, match_aliases, read_recorded_tensions
from concord.orchestrator.blue.dialogue_json import read_dialogue_json, round_of
from concord.orchestrator.blue.layout import (
    DialogueFiles,
    RoundFiles,
    answer_file,
    imported_dialogue_id,
    prompt_file,
    read_dialogue_dir,
    title_of,
)
from concord.orchestrator.blue.recorded_files import files_to_keep
from concord.orchestrator.blue.recorded_rulings import Ruling, read_rulings, rulings_by_round
from concord.orchestrator.blue.round_figures import RoundFigures, parse_round_scoreboard, parse_scoreboard
from concord.orchestrator.judging.entity_plan import plan_entities
from concord.orchestrator.judging.markers import ParsedAnswer, parse_answer
from concord.orchestrator.judging.rules_judge import ExpertAnswer, judge_round
from concord.orchestrator.panel.panels import Panel, PanelError, infer_panel, load_panel
from concord.orchestrator.panel.pools import Pool, PoolError, parse_pool
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import AlreadyExists
from concord.store.factory import Stores
from concord.store.model import UNRESOLVED_TENSION, RoundBatch, StatusChange, TextRecord, Verdict
from concord.store.rules import gate, transition_allowed
from concord.store.snapshot import Snapshot


@dataclass
class RoundReport:
    """What one imported round held: markers parsed and the rules judge's figures."""

    round: int
    panel: int
    answered: int
    perspectives: int
    tensions: int
    signals: int
    velocity: int
    converge_percent: float

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return dict(vars(self))


@dataclass
class ImportResult:
    """The outcome of one import: `imported`, `resumed` (some rounds were stored) or `unchanged`."""

    dialogue_id: str
    status: str
    rounds: list[RoundReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    aliases: list[AliasMatch] = field(default_factory=list)
    verdict: Verdict | None = None

    def to_json(self) -> dict[str, Any]:
        """`{dialogue_id, status, rounds: [...], warnings: [...]}`."""
        return {
            "dialogue_id": self.dialogue_id,
            "status": self.status,
            "rounds": [r.to_json() for r in self.rounds],
            "warnings": list(self.warnings),
        }


def format_import(result: ImportResult) -> str:
    """A human account of an import: rounds, aliases, verdict and warnings."""
    lines = [f"dialogue {result.dialogue_id}: {result.status}", ""]
    lines.append("round  panel  answered  persp  tens  signals  velocity  converge")
    lines += [
        f"{r.round:>5}  {r.panel:>5}  {r.answered:>8}  {r.perspectives:>5}  {r.tensions:>4}  {r.signals:>7}  "
        f"{r.velocity:>8}  {r.converge_percent:>7.0f}%"
        for r in result.rounds
    ]
    if result.aliases:
        lines += ["", "recorded ids kept as aliases:"]
        lines += [f"  {m.alias:<16} -> {m.local_id:<16} ({m.method}, {m.score:.2f})" for m in result.aliases]
    if result.verdict is not None:
        forced = f" - forced: {result.verdict.warning}" if result.verdict.forced else ""
        lines += ["", f"verdict {result.verdict.id} (round {result.verdict.round}){forced}"]
    if result.warnings:
        lines += ["", f"warnings ({len(result.warnings)}):"] + [f"  - {w}" for w in result.warnings]
    return "\n".join(lines)


async def import_dialogue(
    target: DialogueStore | Stores, path: Path, *, dialogue_id: str | None = None
) -> ImportResult:
    """Import a blue-layout dialogue directory; a repeated import of a finished one changes nothing."""
    store = target.dialogues if isinstance(target, Stores) else target
    files = read_dialogue_dir(Path(path))
    ours = read_dialogue_json(files)
    warnings: list[str] = []
    pool_data, pool = _pool(files, warnings)
    rounds = _contiguous(files.rounds, warnings)
    panels = {r.number: _panel(r, pool, warnings) for r in rounds}
    parsed = {r.number: {slug: parse_answer(text) for slug, text in _answers(r).items()} for r in rounds}
    aliases, matches = _aliases(files, ours, rounds, parsed, warnings)
    rulings = _rulings(files, rounds, parsed, aliases)
    recorded = _recorded_figures(files, ours, rounds)
    if not files.has_answers:
        warnings.append(
            "missing: no expert answers in any round-N/ directory; only the pool, panels and recorded "
            "figures are imported"
        )
    title, question = _title_and_question(files, ours, pool)
    did = dialogue_id or imported_dialogue_id(Path(path).resolve().name)
    keep = files_to_keep(files, ours.get("recorded_files", []) if ours is not None else None)
    status = "imported"
    try:
        await store.create_dialogue(
            title, question, dialogue_id=did, origin="import", pool=pool_data, background=_background(files, ours)
        )
    except AlreadyExists:
        status = "unchanged"
    if await store.record_files(did, keep) and status == "unchanged":
        status = "resumed"
    snap = await store.load_partition(did)
    for rnd in rounds:
        if rnd.number < snap.dialogue.total_rounds:
            continue
        status = "resumed" if status == "unchanged" else status
        snap = await _import_round(
            store, snap, rnd, panels[rnd.number], aliases, ours, files, recorded, rulings.get(rnd.number, [])
        )
    had_verdict = bool(snap.verdicts)
    verdict = await _verdict(store, snap, files, ours, warnings)
    if status == "unchanged" and verdict is not None and not had_verdict:
        status = "resumed"
    reports = [_report(snap, r.number, panels[r.number], parsed[r.number]) for r in rounds if r.number in snap.rounds]
    for number in sorted(snap.rounds):
        warnings += [f"round {number}: {note}" for note in snap.rounds[number].notes]
    return ImportResult(did, status, reports, warnings, matches, verdict)


async def _import_round(
    store: DialogueStore,
    snap: Snapshot,
    rnd: RoundFiles,
    panel: Panel | None,
    aliases: dict[str, str],
    ours: dict[str, Any] | None,
    files: DialogueFiles,
    recorded: dict[int, RoundFigures],
    rulings: list[tuple[str, Ruling]],
) -> Snapshot:
    """Record one round's texts, judge it, and register it; return the fresh snapshot."""
    did = snap.dialogue.id
    await store.record_texts(
        did,
        [
            TextRecord(
                kind,
                rnd.number,
                slug,
                text,
                repair,
                path=(prompt_file if kind == "prompt" else answer_file)(rnd.number, slug, repair),
            )
            for kind, texts, repair in (
                ("prompt", rnd.prompts, False),
                ("prompt", rnd.repair_prompts, True),
                ("answer", rnd.answers, False),
                ("answer", rnd.repaired, True),
            )
            for slug, text in sorted(texts.items())
        ],
    )
    seats = list(panel.members) if panel else []
    answers = _answers(rnd)
    judged = judge_round(
        snap,
        rnd.number,
        seats,
        [ExpertAnswer(s.slug, answers.get(s.slug)) for s in seats],
        aliases=aliases,
    )
    batch = judged.batch
    _apply_rulings(snap, batch, rulings)
    if ours is not None:
        kept = round_of(ours, rnd.number)
        batch.summary, batch.recorded = kept.get("summary", batch.summary), kept.get("recorded")
    else:
        figures = recorded.get(rnd.number)
        batch.summary = files.summaries.get(rnd.number, batch.summary)
        batch.recorded = figures.to_json() if figures else None
    if not seats:
        batch.notes.append(f"missing: no panel for round {rnd.number} (no panel.json and no answers)")
    elif not answers:
        batch.notes.append(
            f"missing: no answers for round {rnd.number}; all {len(seats)} panel members recorded absent"
        )
    await store.register_round(did, batch)
    return await store.load_partition(did)


def _answers(rnd: RoundFiles) -> dict[str, str]:
    """Each expert's answer; a repaired answer replaces the original, as in a live run."""
    return {**rnd.answers, **rnd.repaired}


def _contiguous(rounds: list[RoundFiles], warnings: list[str]) -> list[RoundFiles]:
    """Rounds 0..k without gaps; anything after a gap cannot be registered and is reported."""
    kept = []
    for expected, rnd in enumerate(rounds):
        if rnd.number != expected:
            warnings.append(f"missing: round {expected}; rounds from {rnd.number} on are not imported")
            break
        kept.append(rnd)
    return kept


def _pool(files: DialogueFiles, warnings: list[str]) -> tuple[dict[str, Any] | None, Pool | None]:
    if files.pool is None:
        warnings.append("missing: expert-pool.json")
        return None, None
    try:
        data = json.loads(files.pool)
        return data, parse_pool(data)
    except (json.JSONDecodeError, PoolError) as exc:
        warnings.append(f"expert-pool.json is not a valid pool ({exc}); panels use defaults for tier and relevance")
        return None, None


def _panel(rnd: RoundFiles, pool: Pool | None, warnings: list[str]) -> Panel | None:
    """The round's panel from panel.json, else inferred from its answer files; None when neither exists."""
    if rnd.panel is not None:
        try:
            panel = load_panel(rnd.panel, rnd.number, pool=pool)
        except PanelError as exc:
            warnings.append(f"round {rnd.number}: {exc}; inferring the panel from the answer files")
        else:
            for slug in sorted(set(_answers(rnd)) - {m.slug for m in panel.members}):
                warnings.append(
                    f"round {rnd.number}: {slug} answered but is not on panel.json; the answer is not judged"
                )
            return panel
    return infer_panel(rnd.path, rnd.number, pool) if _answers(rnd) else None


def _aliases(
    files: DialogueFiles,
    ours: dict[str, Any] | None,
    rounds: list[RoundFiles],
    parsed: dict[int, dict[str, ParsedAnswer]],
    warnings: list[str],
) -> tuple[dict[str, str], list[AliasMatch]]:
    """alias -> local id, from dialogue.json when present, else by matching the recorded tensions.md."""
    if ours is not None:
        kept = {
            alias: e["local_id"]
            for e in ours.get("entities", [])
            if e.get("local_id")
            for alias in e.get("aliases", [])
        }
        return kept, [AliasMatch(alias, local, "dialogue.json", 1.0) for alias, local in sorted(kept.items())]
    if files.tensions is None:
        return {}, []
    candidates = _candidates(rounds, parsed)
    first_used: dict[str, int] = {}
    for rnd in rounds:
        for answer in parsed[rnd.number].values():
            for ref in (t for m in answer.markers for t in m.targets if t.expert is None and not t.is_global):
                first_used.setdefault(f"{ref.kind}{ref.number:02d}", rnd.number)
    matches, unmatched = match_aliases(read_recorded_tensions(files.tensions), candidates, first_used)
    warnings += [
        f"recorded tension {t.id} ({t.label}) in tensions.md matches no tension in the answers" for t in unmatched
    ]
    return {m.alias: m.local_id for m in matches}, matches


def _candidates(rounds: list[RoundFiles], parsed: dict[int, dict[str, ParsedAnswer]]) -> list[Candidate]:
    """Every tension entity the answers will make, with its author, round and label."""
    candidates = []
    for rnd in rounds:
        for slug, answer in sorted(parsed[rnd.number].items()):
            for planned in plan_entities(slug, rnd.number, answer):
                if planned.kind == "tension":
                    number = int(planned.local_id[-2:])
                    candidates.append(Candidate(planned.local_id, slug, rnd.number, number, planned.label))
    return candidates


def _rulings(
    files: DialogueFiles,
    rounds: list[RoundFiles],
    parsed: dict[int, dict[str, ParsedAnswer]],
    aliases: dict[str, str],
) -> dict[int, list[tuple[str, Ruling]]]:
    """The recording's own rulings on its tensions (`recorded_rulings`), per round, by local id."""
    if not rounds:
        return {}
    briefs = {r.number: [r.prompts[s] for s in sorted(r.prompts)] for r in rounds}
    found = read_rulings(files.tensions, files.verdict, briefs, rounds[-1].number)
    recorded = read_recorded_tensions(files.tensions) if files.tensions else []
    return rulings_by_round(found, {t.id: t.label for t in recorded}, aliases, _candidates(rounds, parsed))


def _apply_rulings(snap: Snapshot, batch: RoundBatch, rulings: list[tuple[str, Ruling]]) -> None:
    """Add the recorded judge's status changes for this round to the batch and recount its open tensions."""
    gids = {e.local_id: e.id for e in snap.of_kind("tension") if e.local_id}
    statuses = {t.id: t.status for t in snap.of_kind("tension")}
    statuses |= {d.local_id: "open" for d in batch.entities if d.kind == "tension"}
    for change in batch.status_changes:
        if change.id in statuses:
            statuses[change.id] = change.status
    applied = []
    for local_id, ruling in rulings:
        key = gids.get(local_id, local_id)
        current = statuses.get(key)
        if current is None or current == ruling.status or not transition_allowed("tension", current, ruling.status):
            continue
        batch.status_changes.append(StatusChange(key, ruling.status, [], None, ruling.reason))
        statuses[key] = ruling.status
        applied.append(f"{key} {ruling.status} ({ruling.id})")
    if applied:
        batch.notes.append("recorded judge's rulings: " + ", ".join(applied))
        batch.open_tensions = sum(s in UNRESOLVED_TENSION for s in statuses.values())


def _recorded_figures(
    files: DialogueFiles, ours: dict[str, Any] | None, rounds: list[RoundFiles]
) -> dict[int, RoundFigures]:
    """The recorded judge's per-round figures: scoreboard.md, else the older round-N/scoreboard.md files."""
    if ours is not None:
        return {}
    figures = {f.round: f for f in parse_scoreboard(files.scoreboard)} if files.scoreboard else {}
    for rnd in rounds:
        if rnd.number not in figures and rnd.scoreboard:
            found = parse_round_scoreboard(rnd.scoreboard, rnd.number)
            if found is not None:
                figures[rnd.number] = found
    return figures


def _title_and_question(files: DialogueFiles, ours: dict[str, Any] | None, pool: Pool | None) -> tuple[str, str]:
    if ours is not None:
        return ours["dialogue"]["title"], ours["dialogue"]["question"]
    title = title_of(files.path.resolve().name, _headings(files))
    return title, (pool.question if pool and pool.question else title)


def _headings(files: DialogueFiles) -> list[str]:
    """The first `# ` heading of each recorded judge file, the dialogue-wide ones first."""
    texts = [files.scoreboard, files.verdict, files.background, *(files.summaries[n] for n in sorted(files.summaries))]
    texts += [r.scoreboard for r in files.rounds]
    found = []
    for text in texts:
        line = next((ln for ln in (text or "").splitlines() if ln.startswith("# ")), None)
        if line is not None:
            found.append(line.removeprefix("# "))
    return found


def _background(files: DialogueFiles, ours: dict[str, Any] | None) -> dict[str, Any] | None:
    if ours is not None:
        return ours["dialogue"].get("background")
    return {"text": files.background} if files.background is not None else None


async def _verdict(
    store: DialogueStore, snap: Snapshot, files: DialogueFiles, ours: dict[str, Any] | None, warnings: list[str]
) -> Verdict | None:
    """Register the recorded verdict once (forced, with blockers, when the rules judge's gate disagrees)."""
    if snap.verdicts:
        return next((v for v in snap.verdicts if v.verdict_type == "final"), snap.verdicts[0])
    wanted = _recorded_verdicts(files, ours, snap)
    if not wanted:
        if snap.rounds:
            warnings.append("missing: no verdict.md; no verdict registered (the recorded outcome stays in the figures)")
        return None
    ok = gate(snap.last_round)[0] if snap.last_round else False
    stored = []
    for verdict in wanted:
        stored.append(
            await store.register_verdict(snap.dialogue.id, verdict, force=verdict.verdict_type == "final" and not ok)
        )
    final = next((v for v in stored if v.verdict_type == "final"), stored[0])
    if final.forced:
        warnings.append(f"recorded verdict kept but the rules judge disagrees: {final.warning}")
    return final


def _recorded_verdicts(files: DialogueFiles, ours: dict[str, Any] | None, snap: Snapshot) -> list[Verdict]:
    if ours is not None and ours.get("verdicts"):
        fields = Verdict.__dataclass_fields__
        return [
            Verdict(**{k: v for k, v in data.items() if k in fields and k not in ("forced", "warning", "created_at")})
            for data in ours["verdicts"]
        ]
    if files.verdict is None or snap.last_round is None:
        return []
    return [
        Verdict(
            id="final",
            verdict_type="final",
            round=snap.last_round.number,
            recommendation=verdict_line(files.verdict),
            description=files.verdict,
        )
    ]


def verdict_line(text: str) -> str:
    """The recorded verdict's answer in one line: the text under its Answer/Recommendation heading."""
    lines = text.splitlines()
    start = next(
        (
            i
            for i, ln in enumerate(lines)
            if ln.startswith("## ") and ln[3:].strip().lower().startswith(("answer", "recommendation"))
        ),
        None,
    )
    body = []
    for line in lines[start + 1 :] if start is not None else []:
        if line.startswith("## "):
            break
        cleaned = line.strip().lstrip("#").strip()
        if cleaned and not (cleaned.startswith("**") and cleaned.endswith("?**")):
            body.append(cleaned)
        if len(body) == 2:
            break
    heading = next((ln.lstrip("#").strip() for ln in lines if ln.startswith("#")), "Recorded verdict")
    return " ".join(body)[:300] or heading


def _report(snap: Snapshot, number: int, panel: Panel | None, parsed: dict[str, ParsedAnswer]) -> RoundReport:
    rnd = snap.rounds[number]
    markers = [m for answer in parsed.values() for m in answer.markers]
    return RoundReport(
        round=number,
        panel=len(panel.members) if panel else 0,
        answered=rnd.answered,
        perspectives=sum(m.kind == "perspective" for m in markers),
        tensions=sum(m.kind == "tension" for m in markers),
        signals=sum(a.converge for a in parsed.values()),
        velocity=rnd.velocity,
        converge_percent=rnd.converge_percent,
    )
