"""The rules judge: one round of expert answers in, one RoundBatch out, deterministically.

Entities. `entity_plan` says which markers become entities and under which local ids. A REFINEMENT
points at what it refines: `address` for a tension, `refine` for a perspective, `depend` for anything
else. A marker with neither label nor body makes no entity and is reported.

References. Marker targets resolve through `IdRegistry` (protocol §3.2 order: global id or a
recorded judge's alias, namespaced id, the author's own earlier local id). `[RE:TYPE id]` adds a ref
from the nearest entity written before it in the same answer. A RESOLVED adds a `resolve` ref from
the author's first entity of the round (its anchor) when there is one. Anything that does not
resolve, or that would break a ref rule, is a warning on the entity concerned and on the round;
it never fails the round. CONCESSION (and its variants ACKNOWLEDGED, ACCEPT, CONCEDE-WITH-SCOPE) and
`[MOVE:…]` markers are stored as moves; a DEFER is a note on the round and leaves its tension open.

Then the round's acts on earlier tensions go through `tension_lifecycle`, its perspectives are
marked new or not by `new_perspectives`, every answering expert is scored by `scoring.SCORING`,
and `round_summary` writes the round's account. Velocity = open tensions (open, addressed,
reopened) + new perspectives; converge % = answering experts who signalled converge / experts seated
(an absent expert has not signalled).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from concord.orchestrator.judging.entity_plan import ENTITY_KIND, PlannedEntity, plan_entities
from concord.orchestrator.judging.markers import Marker, parse_answer
from concord.orchestrator.judging.new_perspectives import mark_new_perspectives
from concord.orchestrator.judging.references import IdRegistry, resolve_all
from concord.orchestrator.judging.round_summary import summarise_round
from concord.orchestrator.judging.scoring import Tally, cites_a_specific
from concord.orchestrator.judging.tension_lifecycle import Act, apply_acts
from concord.orchestrator.judging.written_ids import ids_in_prose
from concord.store.ids import is_display_id, kind_of, parse_local_id
from concord.store.model import (
    UNRESOLVED_TENSION,
    EntityDraft,
    Expert,
    Move,
    PanelSeat,
    RefDraft,
    RoundBatch,
    Score,
)
from concord.store.rules import ref_target_problem
from concord.store.snapshot import Snapshot


@dataclass
class ExpertAnswer:
    """One expert's answer for the round; `text` None means absent (nothing is invented for it)."""

    expert: str
    text: str | None


@dataclass
class JudgedRound:
    """The judge's verdict on one round: the batch to register plus its headline figures."""

    batch: RoundBatch
    velocity: int
    converge_percent: float
    warnings: list[str]
    per_expert: dict[str, Score]


def build_registry(snapshot: Snapshot) -> IdRegistry:
    """Every entity of the snapshot under its global id, author's local id and aliases."""
    registry = IdRegistry()
    for entity in sorted(snapshot.entities.values(), key=lambda e: (e.round, e.id)):
        parsed = parse_local_id(entity.local_id) if entity.local_id else None
        author = parsed[0] if parsed else (entity.contributors[0] if entity.contributors else "")
        registry.add(entity.id, author=author, round=entity.round, local_id=entity.local_id, aliases=entity.aliases)
    return registry


def judge_round(
    snapshot: Snapshot,
    round: int,
    panel: Sequence[PanelSeat],
    answers: Sequence[ExpertAnswer],
    *,
    aliases: Mapping[str, str] | None = None,
) -> JudgedRound:
    """Judge one round against the snapshot of the rounds before it.

    `aliases` maps a recorded judge's id (`T01`, `MACARON-T01`) to the local id of an entity drafted
    in this round (stored on it) or to the global id of an earlier entity (used for this round).
    """
    work = _Round(snapshot, round, panel, aliases or {})
    for answer in answers:
        work.read(answer)
    return work.finish()


class _Round:
    """The state of judging one round."""

    def __init__(self, snapshot: Snapshot, round: int, panel: Sequence[PanelSeat], aliases: Mapping[str, str]) -> None:
        self.snapshot = snapshot
        self.round = round
        self.panel = list(panel)
        self.seats = {seat.slug: seat for seat in panel}
        self.registry = build_registry(snapshot)
        self.aliases = dict(aliases)
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.drafts: list[EntityDraft] = []
        self.refined: set[str] = set()
        self.acts: list[Act] = []
        self.moves: list[Move] = []
        self.signals: list[str] = []
        self.answered: list[str] = []
        self.tallies: dict[str, Tally] = {}
        self.mentions: dict[str, list[str]] = {}
        names = sorted(set(snapshot.experts) | set(self.seats))
        self.names = re.compile(r"\b(" + "|".join(n.capitalize() for n in names) + r")\b") if names else None
        for alias, target in self.aliases.items():
            if is_display_id(target) and target in self.registry:
                self._alias(target, alias)

    def _alias(self, global_id: str, alias: str) -> None:
        try:
            self.registry.add_alias(global_id, alias)
        except ValueError as exc:
            self.warnings.append(f"alias {alias!r} ignored: {exc}")

    def warn(self, message: str, draft: EntityDraft | None = None) -> None:
        """Record a warning on the round and, when given, on the entity it concerns."""
        self.warnings.append(message)
        if draft is not None:
            draft.warnings.append(message)

    # --- one answer -------------------------------------------------------------------

    def read(self, answer: ExpertAnswer) -> None:
        """Turn one expert's answer into drafts, refs, acts on tensions, moves and a tally."""
        author = answer.expert.lower()
        if answer.text is None:
            return
        if author not in self.seats:
            self.warn(f"{author} answered in round {self.round} but is not on its panel; the answer is not judged")
            return
        if author in self.answered:
            self.warn(f"{author} answered twice in round {self.round}; only the first answer is judged")
            return
        self.answered.append(author)
        parsed = parse_answer(answer.text)
        tally = self.tallies[author] = Tally()
        planned = {p.index: p for p in plan_entities(author, self.round, parsed)}
        drafts = {index: self._draft(author, p) for index, p in planned.items()}
        anchor = next((drafts[i] for i, p in planned.items() if parsed.markers[i].kind == "perspective"), None)
        anchor = anchor or next(iter(drafts.values()), None)
        latest: EntityDraft | None = None
        for index, marker in enumerate(parsed.markers):
            if index in drafts:
                latest = drafts[index]
                self._entity_marker(author, marker, latest, tally)
            elif marker.kind in ENTITY_KIND:
                self._empty(author, marker, anchor, tally)
            elif marker.kind == "resolved":
                self._resolved(author, marker, anchor, tally)
            elif marker.kind == "concession" or (marker.kind == "move" and marker.name == "concede"):
                self._concession(author, marker, anchor, tally)
            elif marker.kind == "ref":
                self._ref_marker(author, marker, latest or anchor, tally)
            elif marker.kind == "move":
                ids = self._resolve(author, marker, anchor, tally)
                self._move(author, marker.name, ids, marker.label)
            elif marker.kind == "defer":
                ids = self._resolve(author, marker, anchor, tally)
                self.notes.append(
                    f"{author} defers {', '.join(ids) or 'a point'} on line {marker.line} (it stays open)"
                    + (f": {marker.label}" if marker.label else "")
                )
            elif marker.kind == "unknown":
                self.warn(
                    f"unknown marker {marker.raw} on line {marker.line} of {author}'s answer in round {self.round}"
                )
            elif marker.kind in ("stance", "dissent", "minority_verdict"):
                self.notes.append(f"{author} {marker.kind} on line {marker.line}: {marker.label}".rstrip(": "))
        if parsed.converge:
            self.signals.append(author)
        if self.names is not None:
            tally.named = {name.lower() for name in self.names.findall(answer.text)} - {author}

    def _draft(self, author: str, planned: PlannedEntity) -> EntityDraft:
        draft = EntityDraft(planned.kind, planned.local_id, planned.label, planned.content, contributors=[author])
        draft.aliases = sorted(alias for alias, target in self.aliases.items() if target == planned.local_id)
        self.drafts.append(draft)
        return draft

    def _entity_marker(self, author: str, marker: Marker, draft: EntityDraft, tally: Tally) -> None:
        if cites_a_specific(draft.content) and draft.kind not in ("evidence", "claim"):
            tally.grounded += 1
        if marker.kind == "refinement":
            tally.refinements += 1
            self.refined.add(draft.local_id)
            for target in self._resolve(author, marker, draft, tally):
                ref_type = _refinement_ref(draft.kind, kind_of(target))
                draft.references.append(RefDraft(ref_type, target))
                if ref_type == "address":
                    self.acts.append(Act(target, author, "address", marker.line, draft.local_id))
            return
        if draft.kind in ("perspective", "recommendation"):
            tally.perspectives += 1
        elif draft.kind == "evidence":
            tally.evidence += 1
        elif draft.kind == "claim":
            tally.claims += 1
        if draft.kind == "perspective":
            self.mentions[draft.local_id] = self._mentioned(author, draft.label)

    def _empty(self, author: str, marker: Marker, anchor: EntityDraft | None, tally: Tally) -> None:
        """A marker with no text makes no entity; a bare refinement still addresses the tensions it names."""
        self.warn(f"{author}'s {marker.kind} marker on line {marker.line} has no text; no entity made", anchor)
        if marker.kind == "refinement":
            for tension in self._tensions_only(author, marker, self._resolve(author, marker, anchor, tally), anchor):
                self.acts.append(Act(tension, author, "address", marker.line, anchor.local_id if anchor else None))

    def _resolved(self, author: str, marker: Marker, anchor: EntityDraft | None, tally: Tally) -> None:
        targets = self._resolve(author, marker, anchor, tally)
        tensions = self._tensions_only(author, marker, targets, anchor)
        if not marker.targets:
            self.warn(f"{author}'s RESOLVED on line {marker.line} names no tension; no status changed", anchor)
        if tensions:
            tally.resolutions += 1
        for tension in tensions:
            self.acts.append(Act(tension, author, "resolve", marker.line, anchor.local_id if anchor else None))
            if anchor is not None:
                anchor.references.append(RefDraft("resolve", tension))

    def _concession(self, author: str, marker: Marker, anchor: EntityDraft | None, tally: Tally) -> None:
        tally.concessions += 1
        targets = self._resolve(author, marker, anchor, tally)
        for target in targets:
            if kind_of(target) == "tension":
                self.acts.append(Act(target, author, "concede", marker.line, anchor.local_id if anchor else None))
        self._move(author, "concede", targets, marker.label)

    def _ref_marker(self, author: str, marker: Marker, source: EntityDraft | None, tally: Tally) -> None:
        ref_type = marker.name
        targets = self._resolve(author, marker, source, tally)
        if source is None:
            self.warn(f"{author}'s [RE:{ref_type.upper()}] on line {marker.line} comes before any entity; no ref made")
            return
        act = {"resolve": "resolve", "address": "address", "reopen": "reopen", "oppose": "dispute"}.get(ref_type)
        acted = False
        for target in targets:
            problem = ref_target_problem(ref_type, source.kind, kind_of(target))
            if problem:
                self.warn(
                    f"{author}'s [RE:{ref_type.upper()} {target}] on line {marker.line} is not kept: {problem}", source
                )
                continue
            source.references.append(RefDraft(ref_type, target))
            if act and kind_of(target) == "tension":
                self.acts.append(Act(target, author, act, marker.line, source.local_id))
                acted = True
        if acted and act == "resolve":
            tally.resolutions += 1

    def _move(self, author: str, move_type: str, targets: list[str], context: str) -> None:
        seq = 1 + sum(1 for m in self.moves if m.expert == author)
        self.moves.append(Move(self.round, author, seq, move_type, list(targets), context))

    def _resolve(self, author: str, marker: Marker, draft: EntityDraft | None, tally: Tally) -> list[str]:
        ids, problems = resolve_all(marker, author=author, round=self.round, registry=self.registry)
        for problem in problems:
            self.warn(problem, draft)
        tally.others.update(i for i in ids if self._author_of(i) not in (author, None))
        return ids

    def _tensions_only(self, author: str, marker: Marker, ids: list[str], draft: EntityDraft | None) -> list[str]:
        tensions = [i for i in ids if kind_of(i) == "tension"]
        for other in sorted(set(ids) - set(tensions)):
            self.warn(f"{author}'s {marker.kind} on line {marker.line} names {other}, which is not a tension", draft)
        return tensions

    def _mentioned(self, author: str, label: str) -> list[str]:
        """Earlier entities a label names by id (prose mentions that resolve; the rest is ignored)."""
        found = []
        for ref in ids_in_prose(label):
            target = self.registry.resolve(ref, author=author, round=self.round)
            if target and target not in found:
                found.append(target)
        return found

    def _author_of(self, entity_id: str) -> str | None:
        entity = self.snapshot.entities.get(entity_id)
        return entity.contributors[0] if entity and entity.contributors else None

    # --- the round --------------------------------------------------------------------

    def finish(self) -> JudgedRound:
        """Apply the lifecycle, count new perspectives, score, and assemble the batch."""
        changes, statuses = apply_acts(
            {t.id: t.status for t in self.snapshot.of_kind("tension")},
            self.acts,
            round=self.round,
            answered=self.answered,
            signals=self.signals,
            seated={seat.slug for seat in self.panel},
            author_of=self._author_of,
        )
        new = mark_new_perspectives(
            self.snapshot, self.round, self.drafts, refinements=self.refined, mentions=self.mentions
        )
        open_tensions = sum(s in UNRESOLVED_TENSION for s in statuses.values())
        open_tensions += sum(1 for d in self.drafts if d.kind == "tension")
        signals = [s for s in self.signals if s in self.answered]
        percent = 100.0 * len(signals) / len(self.panel) if self.panel else 0.0
        scores = {expert: self.tallies[expert].score() for expert in self.answered}
        absent = [seat.slug for seat in self.panel if seat.slug not in self.answered]
        batch = RoundBatch(
            round=self.round,
            entities=self.drafts,
            status_changes=changes,
            experts=[_expert(seat, self.round) for seat in self.panel if seat.slug not in self.snapshot.experts],
            panel=list(self.panel),
            scores=scores,
            signals=signals,
            answered=list(self.answered),
            absent=absent,
            moves=self.moves,
            open_tensions=open_tensions,
            new_perspectives=new,
            notes=self.warnings + self.notes,
        )
        velocity = open_tensions + new
        batch.summary = summarise_round(batch, changes, velocity, percent)
        return JudgedRound(batch, velocity, percent, list(self.warnings), scores)


def _refinement_ref(source_kind: str, target_kind: str) -> str:
    if target_kind == "tension":
        return "address"
    return "refine" if target_kind == source_kind else "depend"


def _expert(seat: PanelSeat, round: int) -> Expert:
    return Expert(seat.slug, seat.role, seat.tier, seat.source, seat.relevance, round, focus=seat.focus)
